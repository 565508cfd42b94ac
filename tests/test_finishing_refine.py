"""Guided edge refinement beats SAM 2's bilinear upsampling on plates with known mattes."""

import numpy as np
import pytest
import torch

from samroto.core.finishing import synthetic as S
from samroto.core.finishing.refine import bilinear_alpha, box_mean, refine_alpha


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# A small 16:9 plate with logits scaled like SAM 2's 256x256 square on a real plate:
# 64x64 here is the 1080p upsampling ratio (7.5x4.2), 32x32 the 4K one.
H, W = 270, 480
RATIOS = {"1080p": 64, "4K": 32}


def _scene(soft: float, logit_size: int = 64, seed: int = 0):
    if soft:   # soft, motion-blur-like edges: two discs
        gt = np.maximum(S.disc_alpha(H, W, 170.3, 140.7, 90.2, soft), S.disc_alpha(H, W, 365.0, 135.0, 70.0, soft))
    else:      # sharp edges: a disc and a box
        gt = np.maximum(S.disc_alpha(H, W, 170.3, 140.7, 90.2), S.box_alpha(H, W, 300.4, 50.2, 430.7, 220.6))
    return gt, S.composite(gt, seed=seed), S.sam_like_logits(gt, logit_size)


@pytest.mark.parametrize("ratio", list(RATIOS))
@pytest.mark.parametrize("soft", [0.0, 2.0], ids=["sharp", "soft"])
def test_guided_beats_bilinear_at_edges(soft, ratio):
    gt, plate, logits = _scene(soft, RATIOS[ratio])
    band = S.edge_band(gt, 6)
    mae_bilinear = float(np.abs(bilinear_alpha(logits, (H, W)) - gt)[band].mean())
    mae_guided = float(np.abs(refine_alpha(logits, plate) - gt)[band].mean())
    print(f"edge MAE {'soft' if soft else 'sharp'} @{ratio} ratio: bilinear {mae_bilinear:.4f}, guided {mae_guided:.4f}")
    assert mae_guided < mae_bilinear
    if not soft:
        assert mae_guided < 0.6 * mae_bilinear


def test_strength_zero_is_bilinear_and_result_in_range():
    gt, plate, logits = _scene(0.0)
    np.testing.assert_allclose(refine_alpha(logits, plate, strength=0.0), bilinear_alpha(logits, (H, W)), atol=1e-6)
    q = refine_alpha(logits, plate, radius=6, eps=1e-4)
    assert q.shape == (H, W) and q.dtype == np.float32 and q.min() >= 0 and q.max() <= 1


def test_torch_in_torch_out_and_batches():
    gt, plate, logits = _scene(0.0)
    t = torch.from_numpy(np.stack([logits, -logits]))
    q = refine_alpha(t, torch.from_numpy(plate))
    assert isinstance(q, torch.Tensor) and q.shape == (2, H, W)
    np.testing.assert_allclose(q[0].numpy(), refine_alpha(logits, plate), atol=1e-5)


def test_full_resolution_logits_work_too():
    gt, plate, _ = _scene(0.0)
    q = refine_alpha(12.0 * (gt - 0.5), plate)
    assert np.abs(q - gt).mean() < 0.02


def test_box_mean_matches_brute_force():
    x = torch.rand(1, 17, 23)
    r = 3
    ref = torch.zeros_like(x)
    for i in range(17):
        for j in range(23):
            ref[0, i, j] = x[0, max(0, i - r):i + r + 1, max(0, j - r):j + r + 1].mean()
    torch.testing.assert_close(box_mean(x, r), ref, atol=1e-5, rtol=0)


def test_bad_inputs_say_what_is_wrong():
    _, plate, logits = _scene(0.0)
    with pytest.raises(ValueError, match="strength"):
        refine_alpha(logits, plate, strength=2)
    with pytest.raises(ValueError, match="plate must be HxWx3"):
        refine_alpha(logits, plate[..., None])
    with pytest.raises(ValueError, match="logits must be"):
        refine_alpha(logits[None, None, None], plate)
