"""Blender: Mask spline data for the add-on, as plain Python (JSON-ready) data.

The add-on turns this into a Mask datablock: one mask layer per shape (``object``: the
object it is a piece of, ``name``: the shape's own name), one cyclic spline
with ``n_points`` points, and per frame the points' ``co``, ``handle_left`` and
``handle_right`` keyed (``handle_type`` FREE, so the exact handles are kept).

Coordinates are Blender's mask space for a clip: normalised, y up, and square — the
longer side of the frame spans 0..1 and the shorter one is centred (Blender's
``BKE_mask_coord_from_frame``). Non-square pixels scale the height by 1 / pixel_aspect
first, as Blender does with the clip's aspect.
"""

from __future__ import annotations

import json

import numpy as np

from .contours import AnimatedShape

FORMAT = "samroto.blender_mask/1"


def to_mask_space(xy: np.ndarray, width: int, height: int, pixel_aspect: float = 1.0) -> np.ndarray:
    """Image pixels (x right, y down) -> Blender mask coordinates (normalised, y up)."""
    xy = np.asarray(xy, np.float64)
    u = xy[..., 0] / width
    v = 1.0 - xy[..., 1] / height
    w, h = float(width), float(height) / pixel_aspect
    if w > h:
        v = (v - 0.5) * (h / w) + 0.5
    elif h > w:
        u = (u - 0.5) * (w / h) + 0.5
    return np.stack([u, v], -1)


def from_mask_space(uv: np.ndarray, width: int, height: int, pixel_aspect: float = 1.0) -> np.ndarray:
    """Inverse of :func:`to_mask_space`."""
    uv = np.asarray(uv, np.float64)
    u, v = uv[..., 0].copy(), uv[..., 1].copy()
    w, h = float(width), float(height) / pixel_aspect
    if w > h:
        v = (v - 0.5) * (w / h) + 0.5
    elif h > w:
        u = (u - 0.5) * (h / w) + 0.5
    return np.stack([u * width, (1.0 - v) * height], -1)


def mask_data(shapes: list[AnimatedShape], pixel_aspect: float = 1.0, mask_name: str = "samroto") -> dict:
    """{'format', 'name', 'frame_size', 'pixel_aspect', 'layers': [{'name', 'object', 'splines': [
    {'cyclic': True, 'handle_type': 'FREE', 'n_points': N,
     'keys': [{'frame': f, 'points': [[co_x, co_y, hl_x, hl_y, hr_x, hr_y], ...]}, ...]}]}]}"""
    if not shapes:
        raise ValueError("no shapes to write: every frame's matte was empty")
    w, h = shapes[0].size
    layers = []
    for s in shapes:
        co = to_mask_space(s.points, w, h, pixel_aspect)
        hl = to_mask_space(s.left, w, h, pixel_aspect)
        hr = to_mask_space(s.right, w, h, pixel_aspect)
        keys = []
        for i, f in enumerate(s.frames):
            rows = np.concatenate([co[i], hl[i], hr[i]], 1)
            keys.append({"frame": int(f), "points": [[round(float(v), 7) for v in r] for r in rows]})
        layers.append({"name": str(s.name), "object": str(s.meta.get("object", s.name)), "splines": [
            {"cyclic": True, "handle_type": "FREE", "n_points": s.n_points, "keys": keys}]})
    return {"format": FORMAT, "name": mask_name, "frame_size": [int(w), int(h)],
            "pixel_aspect": float(pixel_aspect), "layers": layers}


def write_mask_json(path, shapes: list[AnimatedShape], **kwargs) -> None:
    from samroto.core.io import write_text_atomic as write_text
    write_text(path, json.dumps(mask_data(shapes, **kwargs), indent=1))
