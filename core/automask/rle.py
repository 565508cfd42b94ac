"""Run-length encoding of masks, in COCO's uncompressed form.

``{"size": [height, width], "counts": [...]}``: runs of the mask read column by column
(Fortran order), starting with a run of zeros (0 long when the first pixel is set). This
is what Meta's generator returns for ``output_mode="uncompressed_rle"`` and what
``pycocotools.mask.frPyObjects`` reads.
"""

from __future__ import annotations

import numpy as np
import torch


def encode(masks: torch.Tensor) -> list[np.ndarray]:
    """Run lengths (int32 numpy, zeros first) of each bool mask of ``masks`` [k, h, w]: a
    generator holds every kept mask this way until the end (a ragged mask of a random-weight
    model has a hundred thousand runs at 1024x1024)."""
    k, h, w = masks.shape
    if k == 0:
        return []
    flat = masks.transpose(1, 2).reshape(k, h * w)
    first = flat[:, 0].cpu().numpy()
    rows, cols = (flat[:, 1:] != flat[:, :-1]).nonzero(as_tuple=True)
    rows, cols = rows.cpu().numpy(), cols.cpu().numpy()
    bounds = np.searchsorted(rows, np.arange(k + 1))  # nonzero() is ordered by row
    runs = []
    for i in range(k):
        edges = np.concatenate([[0], cols[bounds[i]:bounds[i + 1]] + 1, [h * w]])
        counts = np.diff(edges).astype(np.int32)
        runs.append(np.concatenate([np.zeros(1, np.int32), counts]) if first[i] else counts)
    return runs


def area(counts) -> int:
    """Set pixels: the sum of every second run."""
    return int(np.sum(np.asarray(counts)[1::2], dtype=np.int64))


def to_dict(counts, height: int, width: int) -> dict:
    return {"size": [int(height), int(width)], "counts": [int(c) for c in counts]}


def decode(rle: dict) -> np.ndarray:
    """A bool [height, width] mask from an uncompressed RLE dict."""
    height, width = rle["size"]
    counts = np.asarray(rle["counts"], dtype=np.int64)
    values = (np.arange(len(counts)) % 2).astype(bool)
    flat = np.repeat(values, counts)
    if flat.size != height * width:
        raise ValueError(f"RLE counts add up to {flat.size} pixels, not {height}x{width}")
    return flat.reshape(width, height).T


def to_coco(rle: dict) -> dict:
    """Compressed COCO RLE (needs pycocotools): counts as a UTF-8 string."""
    from pycocotools import mask as coco_mask  # optional dependency, checked by the generator

    height, width = rle["size"]
    out = coco_mask.frPyObjects(rle, height, width)
    out["counts"] = out["counts"].decode("utf-8")
    return out
