"""Mask logits to the quantities the generator filters on: stability, and SAM 2's clean-up
of small holes and specks on the low-res logits (``min_mask_region_area``)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from samroto.core.finishing.cleanup import small_holes, small_specks


def upsample(low_res: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Low-res logits [k, h, w] -> float32 logits [k, height, width] (bilinear, as SAM 2 does)."""
    return F.interpolate(low_res[:, None].float(), (height, width), mode="bilinear", align_corners=False)[:, 0]


def stability_scores(logits: torch.Tensor, mask_threshold: float, offset: float) -> torch.Tensor:
    """float32 [k]: pixels above ``mask_threshold + offset`` over pixels above
    ``mask_threshold - offset`` (the first set lies inside the second: their IoU). NaN for a
    mask with no pixel above the lower level, as in Meta's generator."""
    inner = (logits > mask_threshold + offset).sum(dim=(1, 2), dtype=torch.int32)
    outer = (logits > mask_threshold - offset).sum(dim=(1, 2), dtype=torch.int32)
    return inner / outer


def remove_small_regions(low_res: torch.Tensor, max_area: float, mask_threshold: float) -> torch.Tensor:
    """SAM 2's ``max_hole_area`` / ``max_sprinkle_area`` on low-res logits [k, h, w]: 8-connected
    background regions of at most ``max_area`` low-res pixels become foreground (threshold
    + 10), then foreground regions that small become background (threshold - 10). Meta
    labels regions with its compiled CUDA extension and silently skips this without it
    (as on a CPU); here OpenCV labels them on every device."""
    if max_area <= 0 or low_res.shape[0] == 0:
        return low_res
    logits = low_res.detach().float().cpu().numpy().copy()
    for mask in logits:
        holes = small_holes((mask > mask_threshold).astype(np.float32), max_area)
        mask[holes] = mask_threshold + 10.0
        specks = small_specks((mask > mask_threshold).astype(np.float32), max_area)
        mask[specks] = mask_threshold - 10.0
    return torch.from_numpy(logits).to(low_res.device)
