"""The Finisher: one entry point configured by finish.* settings, numpy or torch in and out."""

import numpy as np
import pytest
import torch

from samroto.core.finishing import synthetic as S
from samroto.core.finishing.pipeline import FinishSettings, Finisher, finish
from samroto.core.settings import SettingsError, load_settings


pytestmark = pytest.mark.usefixtures("one_torch_thread")


H, W = 135, 240


def _scene():
    gt = S.disc_alpha(H, W, 90, 70, 40)
    gt[60:64, 85:89] = 0.0                                    # a 16 px hole in the object
    return gt, S.composite(gt), S.sam_like_logits(gt, 64)


def test_settings_drive_the_finisher(tmp_path):
    cfg = tmp_path / "settings.yaml"
    cfg.write_text("finish:\n  grow: 2\n  hole_area: 100\n", encoding="utf-8")
    settings = load_settings(path=cfg, environ={"SAMROTO_FINISH_FEATHER": "3"})
    fin = Finisher(settings, device="cpu")
    assert (fin.settings.grow, fin.settings.hole_area, fin.settings.feather) == (2.0, 100.0, 3.0)
    with pytest.raises(SettingsError, match="finish.grow must be float"):
        load_settings(path=cfg, environ={"SAMROTO_FINISH_GROW": "wide"})


def test_full_chain_numpy_and_torch_agree():
    gt, plate, logits = _scene()
    fin = Finisher(None, device="cpu", hole_area=50, grow=1.5, feather=2)
    a = fin.finish(logits, plate)
    t = fin.finish(torch.from_numpy(logits), torch.from_numpy(plate))
    assert isinstance(a, np.ndarray) and a.shape == (H, W) and a.dtype == np.float32
    assert isinstance(t, torch.Tensor) and t.shape == (H, W)
    np.testing.assert_allclose(t.numpy(), a, atol=1e-5)
    # grown by 1.5 px: the matte's area grew accordingly (feather keeps the area)
    base = Finisher(None, device="cpu", hole_area=50).finish(logits, plate)
    assert a.sum() > base.sum() + 2 * np.pi * 40 * 1.2


def test_multi_object_frames_do_not_overlap():
    gt, plate, logits = _scene()
    other = S.sam_like_logits(S.disc_alpha(H, W, 120, 70, 40), 64)
    out = Finisher(None, device="cpu", grow=3).finish_frame({"a": logits, "b": other}, plate, 1001)
    assert set(out) == {"a", "b"}
    assert (out["a"] + out["b"]).max() <= 1.0 + 1e-5


def test_refine_off_is_sam2s_bilinear():
    from samroto.core.finishing.refine import bilinear_alpha
    gt, plate, logits = _scene()
    np.testing.assert_allclose(finish(logits, plate, refine=False), bilinear_alpha(logits, (H, W)), atol=1e-6)


def test_clear_errors():
    gt, plate, logits = _scene()
    with pytest.raises(ValueError, match="unknown finishing setting 'growth'"):
        Finisher(None, growth=1)
    with pytest.raises(ValueError, match="refine_strength"):
        Finisher(None, refine_strength=3)
    with pytest.raises(ValueError, match="logits for object 'x'"):
        Finisher(None, device="cpu").finish_frame({"x": np.zeros((2, 8, 8), np.float32)}, plate)
    assert FinishSettings().temporal_strength == 0.0
