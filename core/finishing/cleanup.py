"""Matte clean-up: fill small holes, remove small specks, keep the largest piece.

Same meaning as SAM 2's ``fill_hole_area`` (and its sprinkle removal): a *hole* is an
8-connected region of background (alpha <= 0.5, i.e. logits <= 0) whose area is at most
``hole_area`` pixels; a *speck* is an 8-connected region of foreground (alpha > 0.5) of at
most ``speck_area`` pixels. As in Meta's code, a background region touching the frame edge
counts as a hole too when it is small enough. Areas are in pixels of the matte given —
pass full-resolution mattes (or ``source_size``) so the numbers mean source pixels.

Meta labels components with a compiled CUDA extension; here OpenCV's connected components
run on the CPU for every device (a 4K binary mask is 8 MB to move, and labelling takes
milliseconds), so nothing needs compiling and CUDA, MPS and CPU give identical results.
"""

from __future__ import annotations

import cv2
import numpy as np

from ._arrays import as_2d, kind_of, to_numpy

THRESHOLD = 0.5
# Pixels within this distance of a removed/filled region follow it, so no faint ring of
# soft edge is left behind where a speck was.
_FRINGE_PX = 2


def _components(binary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels (0 = not in ``binary``) and the area of each label, 8-connected."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    areas = stats[:, cv2.CC_STAT_AREA].astype(np.int64)
    areas[0] = 0
    return labels, areas


def _grow(mask: np.ndarray, px: int) -> np.ndarray:
    if px <= 0 or not mask.any():
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def _scale_area(area: float, shape: tuple[int, int], source_size: tuple[int, int] | None) -> float:
    """An area in source pixels, expressed in pixels of a matte of ``shape`` (H, W)."""
    if not source_size:
        return area
    src_w, src_h = source_size
    return area * (shape[0] * shape[1]) / float(src_w * src_h)


def small_holes(alpha: np.ndarray, max_area: float) -> np.ndarray:
    """Boolean mask of background regions of at most ``max_area`` pixels."""
    if max_area <= 0:
        return np.zeros(alpha.shape, bool)
    labels, areas = _components(alpha <= THRESHOLD)
    small = (areas <= max_area) & (areas > 0)
    return small[labels]


def small_specks(alpha: np.ndarray, max_area: float) -> np.ndarray:
    """Boolean mask of foreground regions of at most ``max_area`` pixels."""
    if max_area <= 0:
        return np.zeros(alpha.shape, bool)
    labels, areas = _components(alpha > THRESHOLD)
    small = (areas <= max_area) & (areas > 0)
    return small[labels]


def all_but_largest(alpha: np.ndarray) -> np.ndarray:
    """Boolean mask of every foreground region except the largest one."""
    labels, areas = _components(alpha > THRESHOLD)
    if len(areas) <= 2:
        return np.zeros(alpha.shape, bool)
    keep = int(np.argmax(areas))
    return (labels > 0) & (labels != keep)


def clean_matte(alpha, hole_area: float = 0, speck_area: float = 0, keep_largest: bool = False,
                source_size: tuple[int, int] | None = None):
    """Fill holes, remove specks, optionally keep only the largest region.

    ``alpha``: HxW matte in [0, 1] (numpy or torch; the same kind comes back). Areas are
    in pixels of ``alpha``, or of ``source_size`` = (width, height) when given. Holes and
    specks are both found on the input, so one never turns into the other.
    """
    if hole_area < 0 or speck_area < 0:
        raise ValueError(f"hole_area and speck_area must be >= 0 pixels, got {hole_area}, {speck_area}")
    if not (hole_area or speck_area or keep_largest):
        return alpha
    kind = kind_of(alpha)
    a = as_2d(to_numpy(alpha, "alpha"), "alpha").copy()
    holes = small_holes(a, _scale_area(hole_area, a.shape, source_size))
    specks = small_specks(a, _scale_area(speck_area, a.shape, source_size))
    if keep_largest:
        specks |= all_but_largest(np.where(holes, 1.0, a))
    fg = a > THRESHOLD
    if holes.any():
        # the soft rim around a filled hole belongs to the solid matte now
        a[_grow(holes, _FRINGE_PX) & (holes | fg)] = 1.0
    if specks.any():
        a[_grow(specks, _FRINGE_PX) & ~_grow(fg & ~specks, _FRINGE_PX)] = 0.0
        a[specks] = 0.0
    return kind.back(a)


def fill_holes_logits(logits, max_area: float, source_size: tuple[int, int] | None = None):
    """SAM 2's ``fill_holes_in_mask_scores`` on logits: holes get a small positive score.

    Works on low-res logits (any HxW) with ``max_area`` in source pixels when
    ``source_size`` = (width, height) is given.
    """
    kind = kind_of(logits)
    x = as_2d(to_numpy(logits, "logits"), "logits").copy()
    x[small_holes(x > 0, _scale_area(max_area, x.shape, source_size))] = 0.1
    return kind.back(x)


def non_overlapping(alphas: list) -> list:
    """Make objects' mattes exclusive: at each pixel the strongest object keeps its alpha.

    The others are limited to what is left (1 - winner), and if several still add up to
    more than 1 they are scaled down together, so the sum never exceeds 1 and a hard
    matte is never shared (SAM 2's non-overlap constraint, on soft mattes).
    """
    if len(alphas) < 2:
        return list(alphas)
    kinds = [kind_of(a) for a in alphas]
    stack = np.stack([as_2d(to_numpy(a, "alpha"), "alpha") for a in alphas])
    win = np.argmax(stack, axis=0)
    top = np.take_along_axis(stack, win[None], 0)[0]
    others = np.minimum(stack, 1.0 - top)
    idx = np.arange(len(alphas))[:, None, None]
    out = np.where(idx == win[None], stack, others)
    total = out.sum(0)
    over = total > 1.0
    if over.any():
        out[:, over] /= total[over]
    return [k.back(o) for k, o in zip(kinds, out)]
