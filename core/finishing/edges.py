"""Grow/shrink, feather and choke, in pixels, in that order (the compositor's controls).

- **grow/shrink** (``grow`` px, negative shrinks): moves the matte's edge — its 0.5
  contour — outwards by exactly that distance, using a sub-pixel signed distance field,
  and re-cuts a clean one-pixel antialiased edge there. A disc of radius R becomes a disc
  of radius R + grow. Fractional values work.
- **feather** (``feather`` px): softens the edge symmetrically about where it is; the
  10%-90% ramp of a straight edge is ``feather`` pixels wide (a Gaussian, sigma =
  feather / 2.563).
- **choke** (``choke`` px, negative spreads): pulls the (feathered) edge inwards by that
  many pixels *without* re-hardening it — a grey erosion with a disc, as a compositor's
  erode on a soft matte does, so the ramp keeps its shape and moves in.

All three run on the CPU (OpenCV distance transforms and filters); tensors go there and back.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ._arrays import as_2d, kind_of, to_numpy

# Gaussian sigma per pixel of feather: the 10%-90% width of a Gaussian edge is 2*1.2816*sigma.
FEATHER_SIGMA_PER_PX = 1.0 / (2.0 * 1.2815516)


def signed_distance(alpha: np.ndarray, max_distance: float | None = None) -> np.ndarray:
    """Sub-pixel signed distance (px) to the 0.5 contour: positive inside, negative outside.

    With ``max_distance``, only pixels that close to the edge are measured (the rest get
    +-(max_distance + 1)) and the work is limited to the edge's bounding box: grow/shrink
    needs no more, and a 4K frame then costs what its edge costs.

    The contour is located where alpha crosses 0.5 between 4-neighbour pixels: from an
    antialiased pixel's coverage next to a saturated one, by linear interpolation between
    two soft ones, at the midpoint between two hard ones. Every pixel
    then finds its nearest edge pixel (OpenCV's labelled distance transform) and measures
    its distance to that pixel's contour point along the contour's normal, which stays
    exact on straight edges and within hundredths of a pixel on curves.
    """
    inside = alpha >= 0.5
    if inside.all() or not inside.any():
        big = float(sum(alpha.shape))
        return np.full(alpha.shape, big if inside.all() else -big, np.float32)
    if max_distance is not None:
        return _banded(alpha, inside, float(max_distance))
    return _sd_core(alpha, inside, None)


def _sd_core(alpha: np.ndarray, inside: np.ndarray, max_distance: float | None) -> np.ndarray:
    if inside.all() or not inside.any():
        big = float(sum(alpha.shape)) if max_distance is None else max_distance + 1.0
        return np.full(alpha.shape, big if inside.all() else -big, np.float32)
    h, w = alpha.shape
    best = np.full((h, w), np.inf, np.float32)
    cx = np.zeros((h, w), np.float32)
    cy = np.zeros((h, w), np.float32)
    for axis in (1, 0):
        a0 = alpha[:, :-1] if axis == 1 else alpha[:-1, :]
        a1 = alpha[:, 1:] if axis == 1 else alpha[1:, :]
        ys, xs = np.nonzero((a0 >= 0.5) != (a1 >= 0.5))
        v0, v1 = a0[ys, xs], a1[ys, xs]
        t = (v0 - 0.5) / (v0 - v1)
        # next to a saturated pixel, linear interpolation is wrong (the ramp is clipped
        # there); an antialiased pixel's own coverage places the edge (unit slope)
        soft0 = (v0 > 0) & (v0 < 1)
        soft1 = (v1 > 0) & (v1 < 1)
        t = np.where(soft0 & ~soft1, np.abs(v0 - 0.5), t)
        t = np.where(soft1 & ~soft0, 1.0 - np.abs(v1 - 0.5), t)
        t = np.clip(t, 0.0, 1.0)
        px = xs + 0.5 + (t if axis == 1 else 0.0)
        py = ys + 0.5 + (t if axis == 0 else 0.0)
        for oy, ox in ((0, 0), (0, 1) if axis == 1 else (1, 0)):
            qy, qx = ys + oy, xs + ox
            d = np.hypot(px - (qx + 0.5), py - (qy + 0.5)).astype(np.float32)
            # several crossings can touch one pixel: keep the nearest (ties: last wins)
            order = np.argsort(-d)
            qy, qx, d = qy[order], qx[order], d[order]
            better = d < best[qy, qx]
            qy, qx = qy[better], qx[better]
            best[qy, qx] = d[better]
            cx[qy, qx] = px[order][better]
            cy[qy, qx] = py[order][better]
    seeds = np.isfinite(best)
    smooth = cv2.GaussianBlur(alpha, (0, 0), 1.0, borderType=cv2.BORDER_REPLICATE)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REPLICATE)
    norm = np.hypot(gx, gy) + 1e-12
    approx, labels = cv2.distanceTransformWithLabels((~seeds).astype(np.uint8), cv2.DIST_L2, 5,
                                                     labelType=cv2.DIST_LABEL_PIXEL)
    band = None if max_distance is None else approx <= max_distance + 2.0
    sy, sx = np.nonzero(seeds)
    lab = labels[sy, sx]
    inside_full = inside
    if band is not None:
        labels = labels[band]
        inside = inside[band]
    lut = np.zeros((4, labels.max() + 1), np.float32)
    lut[:, lab] = cx[sy, sx], cy[sy, sx], gx[sy, sx] / norm[sy, sx], gy[sy, sx] / norm[sy, sx]
    ex, ey, nx, ny = lut[:, labels]
    if band is None:
        yy, xx = np.indices(alpha.shape, dtype=np.float32) + 0.5
    else:
        yy, xx = [v.astype(np.float32) + 0.5 for v in np.nonzero(band)]
    dx, dy = xx - ex, yy - ey
    sd = dx * nx + dy * ny
    # where the normal is unreliable (thin parts, medial axes) fall back to plain distance
    wrong = (sd >= 0) != inside
    sd[wrong] = np.where(inside, 1.0, -1.0)[wrong] * np.hypot(dx, dy)[wrong]
    if band is None:
        return sd.astype(np.float32)
    far = max_distance + 1.0
    out = np.where(inside_full, far, -far).astype(np.float32)
    out[band] = sd
    return out


def _banded(alpha: np.ndarray, inside: np.ndarray, max_distance: float) -> np.ndarray:
    far = max_distance + 1.0
    out = np.where(inside, far, -far).astype(np.float32)
    ins = inside.astype(np.uint8)
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    edge = cv2.dilate(ins, cross) != cv2.erode(ins, cross)
    ys, xs = np.nonzero(edge)
    m = int(np.ceil(max_distance)) + 3
    y0, y1 = max(0, ys.min() - m), min(alpha.shape[0], ys.max() + m + 1)
    x0, x1 = max(0, xs.min() - m), min(alpha.shape[1], xs.max() + m + 1)
    roi = np.ascontiguousarray(alpha[y0:y1, x0:x1])
    out[y0:y1, x0:x1] = _sd_core(roi, inside[y0:y1, x0:x1], max_distance)
    return out


def grow_shrink(alpha: np.ndarray, grow: float) -> np.ndarray:
    """Move the edge out by ``grow`` px (negative: in), with a fresh 1-px antialiased edge."""
    if grow == 0:
        return alpha
    sd = signed_distance(alpha, max_distance=abs(grow) + 1.0)
    return np.clip(sd + grow + 0.5, 0.0, 1.0).astype(np.float32)


def feather(alpha: np.ndarray, px: float) -> np.ndarray:
    """Gaussian softening; a straight edge's 10%-90% ramp becomes ``px`` pixels wide."""
    if px <= 0:
        return alpha
    # an antialiased edge already spans one pixel (a box, variance 1/12): blur the rest
    sigma = math.sqrt(max((px * FEATHER_SIGMA_PER_PX) ** 2 - 1.0 / 12.0, 0.0)) or 1e-3
    return cv2.GaussianBlur(alpha, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REPLICATE)


def _disc(radius: int) -> np.ndarray:
    y, x = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return (x * x + y * y <= radius * radius + 1e-6).astype(np.uint8)


def _morph(alpha: np.ndarray, radius: int, erode: bool) -> np.ndarray:
    if radius <= 0:
        return alpha
    op = cv2.erode if erode else cv2.dilate
    return op(alpha, _disc(radius), borderType=cv2.BORDER_REPLICATE)


def choke(alpha: np.ndarray, px: float) -> np.ndarray:
    """Grey erosion by a disc of ``px`` (negative: dilation); fractions blend two radii."""
    if px == 0:
        return alpha
    erode = px > 0
    r = abs(px)
    lo, hi = math.floor(r), math.ceil(r)
    a_lo = _morph(alpha, lo, erode)
    if hi == lo:
        return a_lo
    t = r - lo
    return ((1 - t) * a_lo + t * _morph(alpha, hi, erode)).astype(np.float32)


def apply_edges(alpha, grow: float = 0.0, feather_px: float = 0.0, choke_px: float = 0.0):
    """grow/shrink, then feather, then choke; numpy or torch in, the same kind out."""
    if feather_px < 0:
        raise ValueError(f"feather must be >= 0 pixels, got {feather_px}")
    if not (grow or feather_px or choke_px):
        return alpha
    kind = kind_of(alpha)
    a = np.ascontiguousarray(as_2d(to_numpy(alpha, "alpha"), "alpha"), dtype=np.float32)
    a = grow_shrink(a, grow)
    a = feather(a, feather_px)
    a = choke(a, choke_px)
    return kind.back(a)
