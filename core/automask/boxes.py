"""Boxes of masks and the box tests the generator filters with.

Boxes are [x0, y0, x1, y1] with x1, y1 the last set column and row (inclusive pixel
indices, as Meta's generator computes them); an empty mask has the box [0, 0, 0, 0].
"""

from __future__ import annotations

import torch

# Meta's generator drops a mask whose box comes within this many pixels of a crop's
# inner edge (one that is not also an edge of the image): it was cut off by the crop.
CROP_EDGE_PX = 20.0


def masks_to_boxes(masks: torch.Tensor) -> torch.Tensor:
    """int64 [k, 4] boxes of bool masks [k, h, w]."""
    k, h, w = masks.shape
    if k == 0:
        return torch.zeros(0, 4, dtype=torch.int64, device=masks.device)
    rows = masks.any(dim=2)  # [k, h]
    cols = masks.any(dim=1)  # [k, w]
    top = rows.to(torch.uint8).argmax(dim=1)
    bottom = h - 1 - rows.flip(1).to(torch.uint8).argmax(dim=1)
    left = cols.to(torch.uint8).argmax(dim=1)
    right = w - 1 - cols.flip(1).to(torch.uint8).argmax(dim=1)
    boxes = torch.stack([left, top, right, bottom], dim=1).to(torch.int64)
    return boxes * rows.any(dim=1, keepdim=True)


def near_crop_edge(boxes: torch.Tensor, crop_box: list[int], image_box: list[int],
                   atol: float = CROP_EDGE_PX) -> torch.Tensor:
    """bool [k]: the box (in crop pixels) touches an edge of the crop that is inside the image."""
    crop = torch.as_tensor(crop_box, dtype=torch.float32, device=boxes.device)
    image = torch.as_tensor(image_box, dtype=torch.float32, device=boxes.device)
    boxes = (boxes + torch.as_tensor([crop_box[0], crop_box[1]] * 2, device=boxes.device)).float()
    at_crop = (boxes - crop).abs() <= atol
    at_image = (boxes - image).abs() <= atol
    return (at_crop & ~at_image).any(dim=1)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression; indices of the kept boxes, best score first.

    torchvision's ``batched_nms`` with one category, decision for decision: boxes visited
    in the order of torch's (unstable) descending sort of the scores, a box suppressed when
    its IoU with a kept one, computed in float32, is above the threshold. Past 1000 boxes
    torchvision takes another route whose kept boxes are sorted again by score; so are
    these, so that boxes with equal scores come out in the same order."""
    boxes = boxes.detach().to("cpu", torch.float32)
    scores = scores.detach().to("cpu")
    n = boxes.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=torch.int64)
    x0, y0, x1, y1 = boxes.unbind(1)
    areas = (x1 - x0) * (y1 - y0)
    order = scores.sort(0, descending=True)[1]
    suppressed = torch.zeros(n, dtype=torch.bool)
    keep = []
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        w = (torch.minimum(x1[i], x1) - torch.maximum(x0[i], x0)).clamp(min=0)
        h = (torch.minimum(y1[i], y1) - torch.maximum(y0[i], y0)).clamp(min=0)
        inter = w * h
        overlap = inter / (areas[i] + areas - inter)
        suppressed |= overlap.double() > iou_threshold  # compared in double, as torchvision's kernel does
    keep = torch.tensor(keep, dtype=torch.int64)
    if n > 1000:
        keep = keep.sort()[0]
        keep = keep[scores[keep].sort(descending=True)[1]]
    return keep


def xyxy_to_xywh(box) -> list[float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    return [x0, y0, x1 - x0, y1 - y0]
