"""Where the generator prompts: a point grid per crop layer, and the crops of each layer.

Same layout as Meta's generator (sam2/utils/amg.py), so the same points and crops are
used: points at the centres of an n x n tiling of [0, 1]^2, row by row (x varies
fastest); layer 0 is the whole image, layer i cuts it into 2^i x 2^i overlapping crops.
"""

from __future__ import annotations

import math
from itertools import product

import numpy as np


def point_grid(n_per_side: int) -> np.ndarray:
    """[n*n, 2] (x, y) fractions of the image, float64."""
    half_step = 1 / (2 * n_per_side)
    along = np.linspace(half_step, 1 - half_step, n_per_side)
    xs = np.tile(along[None, :], (n_per_side, 1))
    ys = np.tile(along[:, None], (1, n_per_side))
    return np.stack([xs, ys], axis=-1).reshape(-1, 2)


def layer_grids(n_per_side: int, n_layers: int, downscale: int) -> list[np.ndarray]:
    """One grid per layer; layer i has n_per_side / downscale^i points a side."""
    return [point_grid(int(n_per_side / (downscale ** i))) for i in range(n_layers + 1)]


def crop_boxes(height: int, width: int, n_layers: int, overlap_ratio: float) -> tuple[list[list[int]], list[int]]:
    """The crops [x0, y0, x1, y1] (pixels, x1/y1 exclusive) of every layer, and each one's layer.

    Layer 0 is the whole image. Layer i >= 1 has 2^i crops a side overlapping by
    overlap_ratio * shorter side * 2 / 2^i pixels; crops are listed column by column.
    """
    boxes, layers = [[0, 0, width, height]], [0]
    short_side = min(height, width)
    for layer in range(1, n_layers + 1):
        per_side = 2 ** layer
        overlap = int(overlap_ratio * short_side * (2 / per_side))
        crop_w = int(math.ceil((overlap * (per_side - 1) + width) / per_side))
        crop_h = int(math.ceil((overlap * (per_side - 1) + height) / per_side))
        x0s = [int((crop_w - overlap) * i) for i in range(per_side)]
        y0s = [int((crop_h - overlap) * i) for i in range(per_side)]
        for x0, y0 in product(x0s, y0s):
            boxes.append([x0, y0, min(x0 + crop_w, width), min(y0 + crop_h, height)])
            layers.append(layer)
    return boxes, layers
