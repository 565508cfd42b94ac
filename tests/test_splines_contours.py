"""Mattes -> Bezier shapes -> rasterised back: IoU >= 0.97 at the default tolerance."""

import cv2
import numpy as np
import pytest
import torch

from samroto.core.finishing import synthetic as S
from samroto.core.splines import DEFAULT_TOLERANCE, matte_to_shapes, rasterize, shot_shape_tracks, shot_shapes

H, W = 270, 480


def _iou(a, b):
    return (a & b).sum() / max(1, (a | b).sum())


def _star():
    m = np.zeros((H, W), np.uint8)
    t = np.linspace(0, 2 * np.pi, 11)[:-1]
    rad = np.where(np.arange(10) % 2, 55.0, 100.0)
    cv2.fillPoly(m, [np.stack([240 + rad * np.cos(t), 135 + rad * np.sin(t)], 1).astype(np.int32)], 1)
    return m.astype(np.float32)


SHAPES = {
    "disc+box": lambda: np.maximum(S.disc_alpha(H, W, 150.3, 130.2, 70.5), S.box_alpha(H, W, 260.2, 40.7, 420.6, 200.1)),
    "star (hard edges)": _star,
    "ring (hole)": lambda: S.disc_alpha(H, W, 240, 135, 100) - S.disc_alpha(H, W, 240, 135, 40),
    "soft ellipse": lambda: cv2.GaussianBlur(
        cv2.ellipse(np.zeros((H, W), np.float32), (240, 135), (150, 60), 20, 0, 360, 1.0, -1), (0, 0), 2.0),
}


@pytest.mark.parametrize("name", list(SHAPES))
def test_round_trip_iou(name):
    matte = SHAPES[name]()
    shapes = matte_to_shapes(matte)
    iou = _iou(rasterize(shapes, (W, H)) > 0, matte >= 0.5)
    print(f"{name}: tolerance {DEFAULT_TOLERANCE}px, points per shape {[len(s) for s in shapes]}, IoU {iou:.4f}")
    assert iou >= 0.97


def test_holes_are_flagged_and_tensors_accepted():
    ring = torch.from_numpy(SHAPES["ring (hole)"]())
    shapes = matte_to_shapes(ring)
    assert sorted(s.hole for s in shapes) == [False, True]
    assert matte_to_shapes(np.zeros((20, 20), np.float32)) == []
    with pytest.raises(ValueError, match="tolerance"):
        matte_to_shapes(ring, tolerance=0)


def _moving(t):
    m = np.zeros((H, W), np.float32)
    cv2.ellipse(m, (int(150 + 12 * t), 135), (int(80 + 3 * t), 50), 10 * t, 0, 360, 1.0, -1)
    return cv2.GaussianBlur(m, (0, 0), 0.8)


def test_shot_has_one_point_count_and_a_stable_start():
    mattes = {1001 + t: _moving(t) for t in range(6)}
    mattes[1010] = np.zeros((H, W), np.float32)               # empty frame: no key
    anim = shot_shapes(mattes, name="hero")
    assert anim.frames == [1001 + t for t in range(6)]
    assert anim.points.shape == anim.left.shape == anim.right.shape == (6, anim.n_points, 2)
    assert anim.size == (W, H)
    ious = [_iou(rasterize([anim.at(i)], (W, H)) > 0, mattes[f] >= 0.5) for i, f in enumerate(anim.frames)]
    print(f"shot: {anim.n_points} points on every frame, IoU min {min(ious):.4f}")
    assert min(ious) >= 0.97
    starts = anim.points[:, 0]
    assert np.linalg.norm(np.diff(starts, axis=0), axis=1).max() < 20   # follows, never jumps round
    # same orientation on every frame (positive signed area in image coords)
    x, y = anim.points[..., 0], anim.points[..., 1]
    area = 0.5 * (x * np.roll(y, -1, 1) - np.roll(x, -1, 1) * y).sum(1)
    assert (area > 0).all()


def test_fixed_point_count_is_honoured():
    anim = shot_shapes({1: _moving(0), 2: _moving(1)}, n_points=24)
    assert anim.n_points == 24
    assert shot_shapes({1: np.zeros((H, W), np.float32)}) is None


def test_one_shape_per_contour_followed_over_the_shot():
    """Two pieces of one object (a body and a hand that leaves it): each is its own animated
    shape; on a frame where the hand has merged back it is keyed as a point (no area)."""
    def frame(t):
        m = np.zeros((H, W), np.float32)
        cv2.circle(m, (90 + 4 * t, 130), 50, 1.0, -1)               # body, drifting right
        if t != 3:
            cv2.circle(m, (250 - 6 * t, 60), 22, 1.0, -1)           # hand, gone on frame 3
        return cv2.GaussianBlur(m, (0, 0), 0.8)

    mattes = {1001 + t: frame(t) for t in range(6)}
    shapes = shot_shape_tracks(mattes, name="hero")
    assert [s.name for s in shapes] == ["hero", "hero_2"]
    body, hand = shapes
    assert body.frames == hand.frames == sorted(mattes)
    for i, f in enumerate(body.frames):
        union = rasterize([body.at(i), hand.at(i)], (W, H)) > 0
        assert _iou(union, mattes[f] >= 0.5) >= 0.97, f
    x, y = hand.points[3, :, 0], hand.points[3, :, 1]
    assert np.ptp(x) == 0 and np.ptp(y) == 0, "the missing piece collapses to a point"
    assert np.linalg.norm(hand.points[4].mean(0) - [250 - 24, 60]) < 3, "the hand stays the hand"


def test_every_frame_is_keyed_and_a_missing_piece_collapses():
    """A piece is keyed on every frame of the shot: before it appears, where its matte is
    empty and after it has gone, collapsed to a point (hosts hold or interpolate keys)."""
    empty = np.zeros((H, W), np.float32)
    mattes = {1000: empty, 1001: _moving(0), 1002: empty, 1003: _moving(2), 1004: empty}
    (shape,) = shot_shape_tracks(mattes, name="hero")
    assert shape.frames == sorted(mattes) and shape.meta == {"object": "hero"}
    for i, f in enumerate(shape.frames):
        spread = np.ptp(shape.points[i], axis=0).max()
        assert (spread == 0) == (f in (1000, 1002, 1004)), f
    for i in (0, 2, 4):   # at the nearest frame's centre (1002: 1001's, the earlier of two)
        assert np.linalg.norm(shape.points[i][0] - shape.points[1 if i < 3 else 3].mean(0)) < 2
