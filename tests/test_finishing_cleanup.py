"""Hole and speck removal match their definition (SAM 2's fill_hole_area), plus non-overlap."""

import numpy as np
import pytest
import torch

from samroto.core.finishing.cleanup import clean_matte, fill_holes_logits, non_overlapping


def _matte():
    a = np.zeros((120, 160), np.float32)
    a[10:110, 10:150] = 1.0          # the object
    a[20:25, 20:30] = 0.0            # hole, 50 px
    a[40:50, 40:60] = 0.0            # hole, 200 px
    a[60, 60] = a[61, 61] = 0.0      # two diagonal pixels: ONE 8-connected hole of 2 px
    a[0:3, 0:3] = 1.0                # speck, 9 px (touches the frame edge)
    a[115:119, 152:157] = 1.0        # speck, 20 px
    a[0:12, 155:160] = 1.0           # region, 60 px
    return a


def test_holes_up_to_the_area_are_filled_and_larger_ones_stay():
    out = clean_matte(_matte(), hole_area=50)
    assert out[20:25, 20:30].min() == 1.0           # 50 px: area <= threshold -> filled
    assert out[60, 60] == 1.0 and out[61, 61] == 1.0
    assert out[40:50, 40:60].max() == 0.0           # 200 px: stays
    np.testing.assert_array_equal(clean_matte(_matte(), hole_area=49)[20:25, 20:30], 0.0)


def test_specks_up_to_the_area_are_removed():
    out = clean_matte(_matte(), speck_area=20)
    assert out[0:3, 0:3].max() == 0.0 and out[115:119, 152:157].max() == 0.0
    assert out[0:12, 155:160].min() == 1.0 and out[10:110, 10:150].mean() > 0.9


def test_background_touching_the_edge_is_a_hole_when_small_like_meta():
    a = np.ones((50, 50), np.float32)
    a[0:2, 0:5] = 0.0                               # 10 px of background in the corner
    assert clean_matte(a, hole_area=10)[0:2, 0:5].min() == 1.0


def test_keep_largest_and_soft_fringe_goes_with_the_speck():
    a = _matte()
    a[3, 0:4] = 0.3                                 # soft fringe below the corner speck
    out = clean_matte(a, keep_largest=True)
    assert out[0:12, 155:160].max() == 0.0 and out[0:4, 0:4].max() == 0.0
    assert out[50, 100] == 1.0


def test_areas_in_source_pixels_on_low_res_logits():
    logits = np.full((64, 64), 5.0, np.float32)
    logits[10:12, 10:12] = -5.0                     # 4 low-res px = 4*(30*30) source px on a 1920x1920 plate
    assert fill_holes_logits(logits, 3000, source_size=(1920, 1920))[10, 10] == -5.0
    assert fill_holes_logits(logits, 4000, source_size=(1920, 1920))[10, 10] == pytest.approx(0.1)


def test_torch_in_torch_out():
    t = torch.from_numpy(_matte())
    out = clean_matte(t, hole_area=50)
    assert isinstance(out, torch.Tensor) and out[22, 25] == 1.0


def test_non_overlap_sums_to_one_and_keeps_the_winner():
    a = np.zeros((10, 10), np.float32); a[:, :6] = 1.0
    b = np.zeros((10, 10), np.float32); b[:, 4:] = 0.8
    c = np.full((10, 10), 0.3, np.float32)
    oa, ob, oc = non_overlapping([a, b, c])
    total = oa + ob + oc
    assert total.max() <= 1.0 + 1e-6
    assert oa[0, 5] == 1.0 and ob[0, 5] == 0.0      # hard winner is never shared
    assert ob[0, 8] == pytest.approx(0.8)           # b wins there, c gets what is left
    assert oc[0, 8] == pytest.approx(0.2)


def test_negative_area_is_refused():
    with pytest.raises(ValueError, match="hole_area"):
        clean_matte(_matte(), hole_area=-1)
