"""Mattes to closed Bezier shapes: per frame, and animated over a shot.

Per frame: the 0.5 contour of the matte is traced (OpenCV), each point is moved to the
sub-pixel edge (where bilinear alpha crosses 0.5 along the contour's normal), the polyline
is simplified (Douglas-Peucker, ``tolerance`` px) and smooth Bezier handles are fitted
through the kept vertices (Catmull-Rom-like directions, a third of each neighbouring
segment long; sharp corners stay cusps).

Over a shot, hosts animate one shape with a fixed number of points, so each frame's
largest contour is resampled by arc length to the same count, with the same orientation
and a start point that follows the previous frame's.

Coordinates: image pixels, x right, y down, origin at the top-left corner of the top-left
pixel (pixel centres at i + 0.5) — the project's convention. Writers convert per host.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

DEFAULT_TOLERANCE = 1.0
# Turning angle (degrees) above which a vertex is a cusp (no handles), so corners stay sharp.
CUSP_ANGLE = 70.0
MIN_AREA = 4.0


@dataclass
class BezierShape:
    """Closed cubic Bezier: anchors and absolute handle positions, each (N, 2)."""
    points: np.ndarray
    left: np.ndarray
    right: np.ndarray
    hole: bool = False

    def __len__(self) -> int:
        return len(self.points)


@dataclass
class AnimatedShape:
    """One shape keyed on several frames, the same point count on every key."""
    name: str
    frames: list[int]
    points: np.ndarray   # (F, N, 2)
    left: np.ndarray     # (F, N, 2)
    right: np.ndarray    # (F, N, 2)
    size: tuple[int, int] = (0, 0)   # (width, height) of the plate
    meta: dict = field(default_factory=dict)

    @property
    def n_points(self) -> int:
        return int(self.points.shape[1])

    def at(self, i: int) -> BezierShape:
        return BezierShape(self.points[i], self.left[i], self.right[i])


def _binary(matte) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(matte.detach().cpu().numpy() if hasattr(matte, "detach") else matte, np.float32)
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise ValueError(f"matte must be HxW, got shape {a.shape}")
    return a, (a >= 0.5).astype(np.uint8)


def _subpixel(contour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Move integer boundary-pixel points to the 0.5 crossing along the outward normal."""
    p = contour.astype(np.float32) + 0.5                     # pixel centres, continuous coords
    if len(p) < 3:
        return p
    t = np.roll(p, -1, 0) - np.roll(p, 1, 0)
    n = np.stack([t[:, 1], -t[:, 0]], 1)
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-9
    a0 = _sample(alpha, p)
    plus, minus = _sample(alpha, p + n), _sample(alpha, p - n)
    flip = plus > minus                                       # outward = towards lower alpha
    n[flip] *= -1
    a1 = np.where(flip, minus, plus)
    frac = np.clip((a0 - 0.5) / np.maximum(a0 - a1, 1e-6), 0.0, 1.0)
    return p + n * frac[:, None]


def _sample(alpha: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Bilinear alpha at continuous coords (pixel centres at i + 0.5); outside = 0."""
    mx = (pts[:, 0] - 0.5).astype(np.float32).reshape(-1, 1)
    my = (pts[:, 1] - 0.5).astype(np.float32).reshape(-1, 1)
    return cv2.remap(alpha, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)[:, 0]


def trace(matte, min_area: float = MIN_AREA) -> list[tuple[np.ndarray, bool]]:
    """Dense sub-pixel contours [(points (N,2), is_hole)], outer boundaries and holes."""
    alpha, binary = _binary(matte)
    contours, hierarchy = cv2.findContours(binary, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    out = []
    for i, c in enumerate(contours):
        if cv2.contourArea(c) < min_area and len(c) < 8:
            continue
        hole = hierarchy is not None and hierarchy[0][i][3] >= 0
        out.append((_subpixel(c[:, 0, :], alpha), hole))
    return out


def fit_bezier(poly: np.ndarray, cusp_angle: float = CUSP_ANGLE) -> BezierShape:
    """Smooth closed Bezier through the vertices of a closed polygon."""
    p = np.asarray(poly, np.float64)
    prev, nxt = np.roll(p, 1, 0), np.roll(p, -1, 0)
    d = nxt - prev
    d /= np.linalg.norm(d, axis=1, keepdims=True) + 1e-12
    len_in = np.linalg.norm(p - prev, axis=1)
    len_out = np.linalg.norm(nxt - p, axis=1)
    right = p + d * (len_out / 3.0)[:, None]
    left = p - d * (len_in / 3.0)[:, None]
    u, v = p - prev, nxt - p
    cos = (u * v).sum(1) / (np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1) + 1e-12)
    cusp = np.degrees(np.arccos(np.clip(cos, -1, 1))) > cusp_angle
    left[cusp], right[cusp] = p[cusp], p[cusp]
    return BezierShape(p, left, right)


def simplify(points: np.ndarray, tolerance: float) -> np.ndarray:
    """Indices of the Douglas-Peucker vertices of a closed dense polyline."""
    pts = points.astype(np.float32).reshape(-1, 1, 2)
    approx = cv2.approxPolyDP(pts, float(tolerance), True)[:, 0, :]
    if len(approx) < 3:
        return np.linspace(0, len(points), 4, endpoint=False).astype(int)[:3]
    # map vertices back to dense indices (approxPolyDP keeps original points)
    d = np.linalg.norm(points[None, :, :] - approx[:, None, :], axis=2) if len(points) * len(approx) < 4e6 \
        else None
    idx = d.argmin(1) if d is not None else np.array([int(np.argmin(np.linalg.norm(points - a, axis=1))) for a in approx])
    return np.unique(idx)


def _segment_error(dense: np.ndarray, i0: int, i1: int, seg: np.ndarray) -> tuple[float, int]:
    """Largest distance from dense points i0..i1 (wrapping) to polyline ``seg``; and where."""
    n = len(dense)
    ids = np.arange(i0, i1 + (n if i1 <= i0 else 0) + 1) % n
    q = dense[ids]
    a, b = seg[:-1], seg[1:]
    ab = b - a
    t = np.clip(((q[:, None] - a[None]) * ab[None]).sum(2) / ((ab * ab).sum(1)[None] + 1e-12), 0, 1)
    dist = np.linalg.norm(q[:, None] - (a[None] + t[..., None] * ab[None]), axis=2).min(1)
    k = int(dist.argmax())
    return float(dist[k]), int(ids[k])


def fit_dense(dense: np.ndarray, tolerance: float, max_rounds: int = 6) -> BezierShape:
    """Bezier within ``tolerance`` px of a dense closed contour: Douglas-Peucker vertices,
    smooth handles, straight runs kept straight, and a vertex added wherever a segment
    still strays (a few rounds)."""
    idx = simplify(dense, tolerance)
    for _ in range(max_rounds):
        shape = fit_bezier(dense[idx])
        n = len(idx)
        # straight runs: collinear handles make an exact line segment
        for i in range(n):
            j = (i + 1) % n
            p0, p1 = shape.points[i], shape.points[j]
            err, _ = _segment_error(dense, idx[i], idx[j], np.stack([p0, p1]))
            if err <= tolerance * 0.5:
                shape.right[i] = p0 + (p1 - p0) / 3.0
                shape.left[j] = p1 - (p1 - p0) / 3.0
        add = []
        for i in range(n):
            j = (i + 1) % n
            seg = flatten(BezierShape(shape.points[[i, j]], shape.left[[i, j]], shape.right[[i, j]]), 12)[:13]
            seg = np.vstack([seg[:12], shape.points[j][None]])
            err, k = _segment_error(dense, idx[i], idx[j], seg)
            if err > tolerance:
                add.append(k)
        if not add:
            return shape
        idx = np.unique(np.concatenate([idx, add]))
    return shape


def matte_to_shapes(matte, tolerance: float = DEFAULT_TOLERANCE, min_area: float = MIN_AREA) -> list[BezierShape]:
    """Closed Bezier shapes for one frame's matte; holes come back with ``hole=True``."""
    if tolerance <= 0:
        raise ValueError(f"spline tolerance must be > 0 pixels, got {tolerance}")
    shapes = []
    for pts, hole in trace(matte, min_area):
        shape = fit_dense(pts, tolerance)
        shape.hole = hole
        shapes.append(shape)
    return shapes


def flatten(shape: BezierShape, steps: int = 8) -> np.ndarray:
    """Polyline (M, 2) through the Bezier, ``steps`` samples per segment."""
    p0, c0 = shape.points, shape.right
    p1, c1 = np.roll(shape.points, -1, 0), np.roll(shape.left, -1, 0)
    t = np.linspace(0, 1, steps, endpoint=False)[None, :, None]
    mt = 1 - t
    pts = (mt ** 3 * p0[:, None] + 3 * mt ** 2 * t * c0[:, None] + 3 * mt * t ** 2 * c1[:, None]
           + t ** 3 * p1[:, None])
    return pts.reshape(-1, 2)


def rasterize(shapes: list[BezierShape], size: tuple[int, int], steps: int = 8) -> np.ndarray:
    """uint8 mask (H, W) of the shapes (holes cut out); size = (width, height)."""
    w, h = size
    mask = np.zeros((h, w), np.uint8)
    shift = 4   # sub-pixel vertices for fillPoly
    for holes in (False, True):
        for s in shapes:
            if s.hole != holes:
                continue
            poly = np.round((flatten(s, steps) - 0.5) * (1 << shift)).astype(np.int32)
            cv2.fillPoly(mask, [poly.reshape(-1, 1, 2)], 0 if holes else 1, lineType=cv2.LINE_8, shift=shift)
    return mask


def _signed_area(p: np.ndarray) -> float:
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def resample(points: np.ndarray, n: int, start_near: np.ndarray | None = None) -> np.ndarray:
    """n points equally spaced by arc length on a closed polyline, positive orientation,
    starting at the point nearest ``start_near`` (default: the top-most, then left-most)."""
    p = np.asarray(points, np.float64)
    if _signed_area(p) < 0:
        p = p[::-1]
    if start_near is None:
        i0 = int(np.lexsort((p[:, 0], p[:, 1]))[0])
    else:
        i0 = int(np.argmin(np.linalg.norm(p - start_near, axis=1)))
    p = np.roll(p, -i0, 0)
    closed = np.vstack([p, p[:1]])
    seg = np.linalg.norm(np.diff(closed, axis=0), axis=1)
    s = np.concatenate([[0], np.cumsum(seg)])
    targets = np.linspace(0, s[-1], n, endpoint=False)
    x = np.interp(targets, s, closed[:, 0])
    y = np.interp(targets, s, closed[:, 1])
    return np.stack([x, y], 1)


def _centroid(poly: np.ndarray) -> np.ndarray:
    return poly.mean(axis=0)


def _track_contours(per_frame: dict[int, list[np.ndarray]], max_jump: float) -> list[dict[int, np.ndarray]]:
    """Link each frame's outer contours into tracks (piece k of the object over time):
    greedily, largest first, to the nearest track by last known centroid (a piece that
    vanishes for a few frames and comes back near where it was continues its track)."""
    tracks: list[dict[int, np.ndarray]] = []
    last_seen: list[tuple[int, np.ndarray]] = []  # per track: (frame, centroid)
    for frame in sorted(per_frame):
        taken = set()
        for poly in sorted(per_frame[frame], key=lambda p: -abs(_signed_area(p))):
            c = _centroid(poly)
            best, best_d = None, max_jump
            for k, (f, ck) in enumerate(last_seen):
                if k in taken:
                    continue
                d = float(np.linalg.norm(c - ck))
                if d < best_d:
                    best, best_d = k, d
            if best is None:
                tracks.append({})
                last_seen.append((frame, c))
                best = len(tracks) - 1
            tracks[best][frame] = poly
            last_seen[best] = (frame, c)
            taken.add(best)
    return tracks


def _animate(dense: dict[int, np.ndarray], tolerance: float, n_points: int | None, name: str,
             min_points: int, size: tuple[int, int], all_frames=()) -> AnimatedShape:
    """Key ``dense`` (frame -> contour) with one point count. On ``all_frames`` where the piece
    is missing, the shape is keyed collapsed to a point (no area), so hosts that hold the last
    key never show a piece that has gone."""
    if n_points is None:
        n_points = max(len(fit_dense(p, tolerance)) for p in dense.values())
        # equal spacing needs more points than Douglas-Peucker's adaptive ones
        n_points = max(min_points, int(np.ceil(n_points * 1.5)))
    frames, pts, left, right = [], [], [], []
    start = None
    present = sorted(dense)
    for frame in sorted(set(present) | set(all_frames)):
        if frame in dense:
            res = resample(dense[frame], n_points, start)
            start = res[0]
            b = fit_bezier(res, cusp_angle=180.0)
            keyed = (b.points, b.left, b.right)
        else:
            nearest = min(present, key=lambda f: abs(f - frame))
            dot = np.repeat(_centroid(dense[nearest])[None], n_points, axis=0)
            keyed = (dot, dot, dot)
        frames.append(int(frame))
        pts.append(keyed[0])
        left.append(keyed[1])
        right.append(keyed[2])
    return AnimatedShape(name, frames, np.array(pts), np.array(left), np.array(right), size)


def _outer_contours(mattes: dict) -> tuple[dict[int, list[np.ndarray]], tuple[int, int]]:
    per_frame, size = {}, (0, 0)
    for frame in sorted(mattes):
        alpha, _ = _binary(mattes[frame])
        size = (alpha.shape[1], alpha.shape[0])
        outers = [p for p, hole in trace(alpha) if not hole]
        if outers:
            per_frame[frame] = outers
    return per_frame, size


def shot_shapes(mattes: dict, tolerance: float = DEFAULT_TOLERANCE, n_points: int | None = None,
                name: str = "object", min_points: int = 8) -> AnimatedShape | None:
    """Animate each frame's largest outer contour as one shape with a fixed point count.

    mattes: {frame: HxW matte}. Frames with an empty matte get no key. ``n_points``
    defaults to the most vertices any frame needs at ``tolerance``. None if no frame has
    a shape.
    """
    per_frame, size = _outer_contours(mattes)
    if not per_frame:
        return None
    dense = {f: max(polys, key=lambda p: abs(_signed_area(p))) for f, polys in per_frame.items()}
    return _animate(dense, tolerance, n_points, name, min_points, size)


def shot_shape_tracks(mattes: dict, tolerance: float = DEFAULT_TOLERANCE, name: str = "object",
                      min_points: int = 8, max_jump: float | None = None) -> list[AnimatedShape]:
    """One animated shape per contour of the object (an arm that separates from the body is
    its own shape), largest piece first.

    Pieces are followed from frame to frame by their centroid (nearest within ``max_jump``
    px, default a tenth of the plate's diagonal); a piece that appears starts a new shape.
    Every shape is keyed on every frame of ``mattes``: where its piece is missing (an empty
    matte, a piece not there yet or gone) collapsed to a point, so hosts that hold or
    interpolate keys never show it there.
    Names: ``name`` for the largest piece, ``name_2``, ``name_3``… for the others; each
    shape's ``meta["object"]`` is ``name``.
    """
    per_frame, size = _outer_contours(mattes)
    if not per_frame:
        return []
    jump = max_jump if max_jump is not None else 0.1 * float(np.hypot(*size))
    tracks = _track_contours(per_frame, jump)
    tracks.sort(key=lambda t: -max(abs(_signed_area(p)) for p in t.values()))
    shapes = [_animate(t, tolerance, None, name if k == 0 else f"{name}_{k + 1}", min_points, size,
                       all_frames=sorted(mattes))
              for k, t in enumerate(tracks)]
    for shape in shapes:
        shape.meta["object"] = name
    return shapes
