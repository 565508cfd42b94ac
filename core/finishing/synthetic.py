"""Generated plates with known ground-truth mattes, for tests and benchmarks.

Shapes are antialiased analytically (exact pixel coverage for a hard edge, approximately;
a Gaussian profile for a soft, motion-blur-like edge), composited over a textured
background, and turned into SAM 2-like low-resolution logits: the matte squashed to a
square model grid, area-averaged and scaled into logits.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def disc_alpha(height: int, width: int, cx: float, cy: float, radius: float, soft: float = 0.0) -> np.ndarray:
    """Coverage of a disc (continuous coords, pixel centres at i+0.5); soft = edge sigma in px."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    d = np.hypot(x - cx, y - cy) - radius
    if soft > 0:
        erfc = np.vectorize(math.erfc, otypes=[np.float32])
        return (0.5 * erfc(d / (soft * math.sqrt(2.0)))).astype(np.float32)
    return np.clip(0.5 - d, 0.0, 1.0).astype(np.float32)


def box_alpha(height: int, width: int, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Exact coverage of an axis-aligned rectangle [x0,x1]x[y0,y1] (continuous coords)."""
    xs = np.arange(width, dtype=np.float32)
    ys = np.arange(height, dtype=np.float32)
    cov_x = np.clip(np.minimum(xs + 1, x1) - np.maximum(xs, x0), 0, 1)
    cov_y = np.clip(np.minimum(ys + 1, y1) - np.maximum(ys, y0), 0, 1)
    return (cov_y[:, None] * cov_x[None, :]).astype(np.float32)


def composite(alpha: np.ndarray, fg=(0.85, 0.55, 0.3), bg=(0.15, 0.3, 0.45), texture: float = 0.03,
              seed: int = 0) -> np.ndarray:
    """Plate HxWx3 in [0,1]: fg over a gently graded, slightly noisy background."""
    h, w = alpha.shape
    rng = np.random.default_rng(seed)
    grad = np.linspace(-0.05, 0.05, w, dtype=np.float32)[None, :, None]
    bgimg = np.asarray(bg, np.float32)[None, None] + grad + texture * rng.standard_normal((h, w, 3)).astype(np.float32)
    fgimg = np.asarray(fg, np.float32)[None, None] + texture * rng.standard_normal((h, w, 3)).astype(np.float32)
    a = alpha[..., None]
    return np.clip(a * fgimg + (1 - a) * bgimg, 0, 1).astype(np.float32)


def sam_like_logits(alpha: np.ndarray, size: int = 256, gain: float = 12.0, noise: float = 0.0,
                    seed: int | None = None) -> np.ndarray:
    """Low-res square logits as SAM 2 would give them (aspect not kept), optional noise."""
    low = cv2.resize(alpha, (size, size), interpolation=cv2.INTER_AREA)
    low = cv2.GaussianBlur(low, (0, 0), 0.7)
    logits = gain * (low - 0.5)
    if noise > 0:
        rng = np.random.default_rng(seed)
        logits = logits + noise * rng.standard_normal(logits.shape).astype(np.float32)
    return logits.astype(np.float32)


def edge_band(alpha: np.ndarray, width: int = 6) -> np.ndarray:
    """Pixels within ``width`` px of the ground-truth edge (where refinement matters)."""
    hard = (alpha > 0.5).astype(np.uint8)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    return (cv2.dilate(hard, k) > 0) & (cv2.erode(hard, k) == 0)
