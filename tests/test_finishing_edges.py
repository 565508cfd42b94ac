"""Grow/shrink, feather and choke are exact on simple shapes."""

import math

import numpy as np
import pytest
import torch

from samroto.core.finishing import synthetic as S
from samroto.core.finishing.edges import apply_edges, choke, feather, grow_shrink, signed_distance

H = W = 200
CX, CY, R = 100.2, 99.7, 40.3


def _radius(alpha):
    return math.sqrt(float(alpha.sum()) / math.pi)   # alpha is coverage: area = sum


@pytest.mark.parametrize("grow", [-7.5, -3.0, 3.0, 5.25, 10.0])
def test_disc_grows_by_exactly_r(grow):
    out = grow_shrink(S.disc_alpha(H, W, CX, CY, R), grow)
    assert _radius(out) - R == pytest.approx(grow, abs=0.06)
    # and it is the right disc, pixel by pixel (antialiased edge within a fifth of a pixel)
    assert np.abs(out - S.disc_alpha(H, W, CX, CY, R + grow)).max() < 0.2


@pytest.mark.parametrize("grow", [-4.5, 2.0, 7.25])
def test_straight_edge_moves_by_exactly_r(grow):
    edge = S.box_alpha(H, W, -50, -50, 100.3, 400)        # half-plane x < 100.3
    out = grow_shrink(edge, grow)
    np.testing.assert_allclose(out, S.box_alpha(H, W, -50, -50, 100.3 + grow, 400), atol=1e-4)


def test_signed_distance_of_a_disc():
    sd = signed_distance(S.disc_alpha(H, W, CX, CY, R))
    y, x = np.mgrid[0:H, 0:W] + 0.5
    true = R - np.hypot(x - CX, y - CY)
    near = np.abs(true) < 12
    assert np.abs(sd - true)[near].max() < 0.25 and abs((sd - true)[near].mean()) < 0.05


def _crossing(row, level):
    x = np.arange(len(row)) + 0.5
    return float(np.interp(level, row[::-1], x[::-1]))    # row falls from 1 to 0


@pytest.mark.parametrize("px", [4.0, 10.0])
def test_feather_ramp_is_px_wide_and_centred(px):
    row = feather(S.box_alpha(H, W, -50, -50, 100.3, 400), px)[100]
    # the analytic edge: a Gaussian step at 100.3 whose 10%-90% ramp is exactly px wide
    sigma = px / (2 * 1.2815516)
    x = np.arange(W) + 0.5
    expected = np.array([0.5 * math.erfc((v - 100.3) / (sigma * math.sqrt(2))) for v in x])
    assert np.abs(row - expected).max() < 0.005
    assert _crossing(row, 0.5) == pytest.approx(100.3, abs=0.02)


@pytest.mark.parametrize("px", [3.0, 2.5, -2.0])
def test_choke_moves_a_soft_edge_in_by_px_keeping_its_ramp(px):
    soft = feather(S.box_alpha(H, W, -50, -50, 100.3, 400), 6.0)
    row = choke(soft, px)[100]
    assert _crossing(row, 0.5) == pytest.approx(100.3 - px, abs=0.05)
    width = _crossing(soft[100], 0.1) - _crossing(soft[100], 0.9)
    # whole pixels shift the ramp unchanged; fractions blend two shifts (slightly wider)
    tol = 1e-3 if px == int(px) else 0.3
    assert _crossing(row, 0.1) - _crossing(row, 0.9) == pytest.approx(width, abs=tol)


def test_order_is_grow_then_feather_then_choke_and_kind_is_kept():
    disc = S.disc_alpha(H, W, CX, CY, R)
    t = apply_edges(torch.from_numpy(disc), grow=4, feather_px=3, choke_px=1)
    assert isinstance(t, torch.Tensor)
    expected = choke(feather(grow_shrink(disc, 4), 3), 1)
    np.testing.assert_allclose(t.numpy(), expected, atol=1e-6)
    # 0.5 contour of the result: R + 4 - 1 (feather keeps it, to within its curvature shift)
    assert _radius((t.numpy() >= 0.5).astype(np.float32)) == pytest.approx(R + 3, abs=0.35)


def test_empty_and_full_mattes_and_bad_feather():
    assert grow_shrink(np.zeros((20, 20), np.float32), 3).max() == 0
    assert grow_shrink(np.ones((20, 20), np.float32), -3).min() == 1
    with pytest.raises(ValueError, match="feather"):
        apply_edges(np.zeros((5, 5), np.float32), feather_px=-1)
