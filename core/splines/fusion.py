"""Fusion / DaVinci Resolve: an animated polygon mask as a .setting (paste into a comp).

One ``PolylineMask`` tool per object, laid out as Fusion itself saves one (``DrawMode
"ModifyOnly"``: the shape is finished and opens for editing, not for drawing; ``OutputSize
"Custom"`` with the plate's ``MaskWidth``/``MaskHeight``/``PixelAspect``, so the mask has
the plate's size whatever the comp's default format), whose ``Polyline`` input is driven by a
``BezierSpline`` with one key per frame, each holding the whole closed polyline (Fusion
animates a mask's points together). Points carry Bezier handles (LX/LY, RX/RY, offsets
from the point).

Fusion's polyline coordinates are normalised with the origin at the frame's centre and y
up: X = x / width - 0.5, and Y in the same units as X (image widths), so shapes keep
their proportions: Y = (0.5 - y / height) * height / (width * pixel_aspect).
"""

from __future__ import annotations

import re

import numpy as np

from .contours import AnimatedShape

_NAME = re.compile(r"[^A-Za-z0-9_]")


def fusion_name(name: str) -> str:
    n = _NAME.sub("_", str(name)) or "Mask"
    return n if not n[0].isdigit() else "M" + n


def to_fusion(xy: np.ndarray, width: int, height: int, pixel_aspect: float = 1.0) -> np.ndarray:
    xy = np.asarray(xy, np.float64)
    x = xy[..., 0] / width - 0.5
    y = (0.5 - xy[..., 1] / height) * height / (width * pixel_aspect)
    return np.stack([x, y], -1)


def from_fusion(XY: np.ndarray, width: int, height: int, pixel_aspect: float = 1.0) -> np.ndarray:
    XY = np.asarray(XY, np.float64)
    x = (XY[..., 0] + 0.5) * width
    y = (0.5 - XY[..., 1] * (width * pixel_aspect) / height) * height
    return np.stack([x, y], -1)


def _num(v: float) -> str:
    return f"{float(v):.7g}"


def polygon_setting(shapes: list[AnimatedShape], pixel_aspect: float = 1.0, frame_offset: int = 0) -> str:
    """The .setting text; ``frame_offset`` is added to every key's frame (comp time)."""
    if not shapes:
        raise ValueError("no shapes to write: every frame's matte was empty")
    w, h = shapes[0].size
    tools = []
    for s in shapes:
        name = fusion_name(s.name)
        co = to_fusion(s.points, w, h, pixel_aspect)
        lt = to_fusion(s.left, w, h, pixel_aspect) - co
        rt = to_fusion(s.right, w, h, pixel_aspect) - co
        keys = []
        for i, f in enumerate(s.frames):
            pts = ",\n".join(
                f"\t\t\t\t\t\t\t{{ X = {_num(p[0])}, Y = {_num(p[1])}, LX = {_num(l[0])}, LY = {_num(l[1])}, "
                f"RX = {_num(r[0])}, RY = {_num(r[1])} }}"
                for p, l, r in zip(co[i], lt[i], rt[i]))
            keys.append(
                f"\t\t\t\t[{int(f) + frame_offset}] = {{ 0, Flags = {{ Linear = true, LockedY = true }}, "
                f"Value = Polyline {{\n\t\t\t\t\t\tClosed = true,\n\t\t\t\t\t\tPoints = {{\n{pts}\n"
                f"\t\t\t\t\t\t}}\n\t\t\t\t\t}} }}")
        tools.append(f"""\t\t{name} = PolylineMask {{
\t\t\tDrawMode = "ModifyOnly",
\t\t\tDrawMode2 = "InsertAndModify",
\t\t\tCtrlWZoom = false,
\t\t\tInputs = {{
\t\t\t\tOutputSize = Input {{ Value = FuID {{ "Custom" }}, }},
\t\t\t\tMaskWidth = Input {{ Value = {w}, }},
\t\t\t\tMaskHeight = Input {{ Value = {h}, }},
\t\t\t\tPixelAspect = Input {{ Value = {{ {_num(pixel_aspect)}, 1 }}, }},
\t\t\t\tClippingMode = Input {{ Value = FuID {{ "None" }}, }},
\t\t\t\tPolyline = Input {{
\t\t\t\t\tSourceOp = "{name}Polyline",
\t\t\t\t\tSource = "Value",
\t\t\t\t}},
\t\t\t\tPolyline2 = Input {{
\t\t\t\t\tValue = Polyline {{
\t\t\t\t\t}},
\t\t\t\t\tDisabled = true,
\t\t\t\t}},
\t\t\t}},
\t\t\tViewInfo = OperatorInfo {{ Pos = {{ {110 * len(tools)}, 0 }} }},
\t\t}},
\t\t{name}Polyline = BezierSpline {{
\t\t\tSplineColor = {{ Red = 173, Green = 255, Blue = 47 }},
\t\t\tNameSet = true,
\t\t\tKeyFrames = {{
{(","+chr(10)).join(keys)}
\t\t\t}}
\t\t}}""")
    active = fusion_name(shapes[0].name)
    return "{\n\tTools = ordered() {\n" + ",\n".join(tools) + f"\n\t}},\n\tActiveTool = \"{active}\"\n}}\n"


def write_polygon_setting(path, shapes: list[AnimatedShape], **kwargs) -> None:
    from samroto.core.io import write_text_atomic as write_text
    write_text(path, polygon_setting(shapes, **kwargs))
