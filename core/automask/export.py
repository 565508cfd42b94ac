"""A frame's automatic masks as files: one EXR with a layer per mask, a JSON listing of
them, and an overlay picture to choose from (docs/automask.md, "Files").

Shared by ``samroto segment`` and the bridge's ``segment`` op, so both write the same files.
"""

from __future__ import annotations

import colorsys
import json
from pathlib import Path

import numpy as np

from samroto.core.io import MatteWriter, atomic_path, format_frame_path, write_text_atomic
from samroto.core.io.errors import MatteWriteError

from .generator import mask_of


def layer_name(mask_id: int) -> str:
    """The EXR layer (and object name) of mask ``mask_id`` (1-based): mask001, mask002, ..."""
    return f"mask{mask_id:03d}"


def listing(records: list[dict]) -> list[dict]:
    """One JSON-safe entry per record, ids from 1 in the records' order (best first)."""
    return [{
        "id": i,
        "layer": layer_name(i),
        "area": int(r["area"]),
        "bbox": [float(v) for v in r["bbox"]],
        "predicted_iou": float(r["predicted_iou"]),
        "stability_score": float(r["stability_score"]),
        "point": [float(v) for v in r["point_coords"][0]],
        "crop_box": [float(v) for v in r["crop_box"]],
    } for i, r in enumerate(records, start=1)]


def colour(mask_id: int) -> tuple[int, int, int]:
    """A bright colour per id, neighbours far apart on the hue circle (golden ratio)."""
    r, g, b = colorsys.hsv_to_rgb((mask_id * 0.618033988749895) % 1.0, 0.75, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def overlay(image: np.ndarray, records: list[dict], opacity: float = 0.45) -> np.ndarray:
    """The frame (RGB uint8) with each mask tinted, outlined and labelled with its id.
    Larger masks are drawn first, so smaller ones stay visible on top."""
    import cv2

    out = np.array(image, dtype=np.uint8, copy=True)
    order = sorted(range(len(records)), key=lambda i: -records[i]["area"])
    masks = {}
    for i in order:
        mask = mask_of(records[i])
        masks[i] = mask
        tint = np.array(colour(i + 1), np.float32)
        out[mask] = (out[mask] * (1 - opacity) + tint * opacity).astype(np.uint8)
    scale = max(0.4, min(out.shape[:2]) / 1400)
    for i in order:
        mask = masks[i].astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, colour(i + 1), max(1, round(2 * scale)), cv2.LINE_AA)
        if mask.any():  # the label where the mask is thickest
            distance = cv2.distanceTransform(np.pad(mask, 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
            y, x = np.unravel_index(int(np.argmax(distance)), distance.shape)
            text = str(i + 1)
            (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            org = (int(x - w / 2), int(y + h / 2))
            cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), max(2, round(3 * scale)),
                        cv2.LINE_AA)
            cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), max(1, round(scale)),
                        cv2.LINE_AA)
    return out


def write_masks(records: list[dict], image: np.ndarray, folder, frame: int, *, stem: str = "masks",
                plate=None, metadata: dict | None = None, describe: dict | None = None,
                with_overlay: bool = True, with_exr: bool = True, mask_files: bool = False) -> dict:
    """Write into ``folder``: ``<stem>.<frame>.exr`` (a layer ``maskNNN`` per mask, ``A`` their
    union; none when nothing was found), ``<stem>.<frame>.overlay.png``, with ``mask_files``
    one ``<stem>.<frame>.maskNNN.png`` per mask (each one a mask prompt as it is: docs/prompts.md),
    and ``<stem>.<frame>.json`` (the listing, ``describe`` merged in). Every file appears
    whole or not at all. Returns the paths by kind: exr, overlay, json, and masks (a list)."""
    from samroto.core.shot.masks import write_mask

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pattern = str(folder / f"{stem}.%04d")
    paths: dict = {}
    names = [layer_name(i) for i in range(1, len(records) + 1)]
    if records and with_exr:
        writer = MatteWriter(pattern + ".exr", format="exr", layout="channels", names=names, plate=plate,
                             metadata=metadata)
        try:
            written = writer.write(frame, {n: mask_of(r) for n, r in zip(names, records)})
        finally:
            writer.close()
        paths["exr"] = str(written[0])
    if with_overlay:
        import cv2

        target = Path(format_frame_path(pattern + ".overlay.png", frame))
        picture = cv2.cvtColor(overlay(image, records), cv2.COLOR_RGB2BGR)
        with atomic_path(target) as tmp:
            if not cv2.imwrite(str(tmp), picture):
                raise MatteWriteError(f"cannot write {target}: OpenCV could not encode the PNG")
        paths["overlay"] = str(target)
    entries = listing(records)
    if mask_files:
        paths["masks"] = []
        for name, record, entry in zip(names, records, entries):
            target = format_frame_path(f"{pattern}.{name}.png", frame)
            try:
                write_mask(target, mask_of(record))
            except Exception as exc:  # MaskPromptError, OSError: the folder or the disk
                raise MatteWriteError(f"cannot write {target}: {exc}") from exc
            entry["file"] = str(target)
            paths["masks"].append(str(target))
    document = {**(describe or {}), "frame": frame, "width": int(image.shape[1]), "height": int(image.shape[0]),
                "files": {k: v for k, v in paths.items() if k != "masks"}, "masks": entries}
    target = Path(format_frame_path(pattern + ".json", frame))
    write_text_atomic(target, json.dumps(document, indent=1) + "\n")
    paths["json"] = str(target)
    return paths
