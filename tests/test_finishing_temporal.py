"""Temporal stabilisation: less jitter on a static object, no lag on a moving one."""

import numpy as np
import pytest
import torch

from samroto.core.finishing import synthetic as S
from samroto.core.finishing.pipeline import Finisher
from samroto.core.finishing.temporal import TemporalStabilizer


pytestmark = pytest.mark.usefixtures("one_torch_thread")


H, W = 144, 256
FRAMES = 10


def _run(strength, speed, noise):
    fin = Finisher(None, device="cpu", temporal_strength=strength)
    outs, gts = [], []
    for t in range(FRAMES):
        gt = S.disc_alpha(H, W, 90 + speed * t, 72, 35)
        plate = S.composite(gt, seed=t)                           # fresh grain every frame
        logits = S.sam_like_logits(gt, 64, noise=noise, seed=100 + t)
        outs.append(fin.finish(logits, plate, frame=1001 + t))
        gts.append(gt)
    return np.array(outs), np.array(gts)


def _jitter(outs, gts):
    band = S.edge_band(gts[0], 5)
    return float(np.abs(np.diff(outs, axis=0))[:, band].mean())


def _centroid_x(a):
    x = np.arange(a.shape[-1]) + 0.5
    return (a.sum(-2) * x).sum(-1) / a.sum((-2, -1))


def test_static_object_with_noisy_logits_jitters_less():
    raw, gts = _run(0.0, 0, noise=3.0)
    smooth, _ = _run(0.8, 0, noise=3.0)
    j_raw, j_smooth = _jitter(raw, gts), _jitter(smooth, gts)
    print(f"edge jitter (mean |alpha_t - alpha_t-1| at edges): off {j_raw:.4f}, strength 0.8 {j_smooth:.4f}")
    assert j_smooth < 0.5 * j_raw


def test_moving_object_does_not_lag():
    raw, gts = _run(0.0, 4.0, noise=0.0)
    smooth, _ = _run(0.8, 4.0, noise=0.0)
    lag = np.abs(_centroid_x(smooth) - _centroid_x(raw)).max()
    print(f"centroid difference smoothed vs off on a disc moving 4 px/frame: {lag:.4f} px")
    assert lag < 0.05
    assert np.abs(smooth - raw).max() < 0.05


def test_state_resets_on_a_jump_or_a_change_of_direction():
    stab = TemporalStabilizer(0.9)
    plate = torch.zeros(8, 8, 3)
    one, zero = torch.ones(8, 8), torch.zeros(8, 8)
    stab(one, plate, 10)
    assert stab(one * 0.8, plate, 11).mean() > 0.8          # continued: smoothed towards 1
    assert torch.equal(stab(zero, plate, 20), zero)           # jump: reset
    stab(one, plate, 21)
    assert torch.equal(stab(zero, plate, 20), zero)           # direction changed: reset


def test_off_by_default_and_bad_strength():
    assert Finisher(None).settings.temporal_strength == 0.0
    with pytest.raises(ValueError, match="temporal"):
        TemporalStabilizer(1.0)
