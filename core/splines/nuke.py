"""Nuke: animated Roto shapes as .nk text that pastes into the Node Graph.

The text is one ``Roto`` node whose ``curves`` knob holds the shapes in Nuke's own
serialisation (the format Nuke itself writes into every saved script; Foundry documents it
as the "Roto serialisation format" of the NDK guide, format version 1.2 since Nuke 7):

- a curve tree ``{{v x3f99999a} {f 0} {n {layer Root ...}}}``;
- the Root layer: flags, its transform centre (the format's centre), attributes, then one
  ``{curvegroup NAME 512 bezier {{cc {f 8192} {px TIMES POINTS}} idem} {tx ...} {a ...}}``
  per shape; ``idem`` makes the feather curve the same as the shape (no feather);
- ``px``: the key times shared by every control point (one float, or a braced list when
  there are several), then three entries per control point — left tangent, centre, right
  tangent, tangents relative to their centre. With one key an entry is ``{x y}``; with
  several each coordinate is a braced list of keys ``{value -}``, one per key time;
- floats as Nuke writes them: ``x`` and the 8 hex digits of the IEEE 754 single, 0 as ``0``.

Nothing runs when the node is created: there is no script, only data.
Nuke's coordinates are pixels with y up from the bottom-left corner: y_nuke = height - y.
"""

from __future__ import annotations

import re
import struct

import numpy as np

from .contours import AnimatedShape

_NAME = re.compile(r"[^A-Za-z0-9_]")
FORMAT_VERSION = 1.2          # the curve tree's {v ...}: the serialisation Nuke 7+ reads and writes
LAYER_FLAGS = 2097152         # what Nuke 13-15 write for the Root layer
SHAPE_FLAGS = 512             # a closed Bezier curvegroup, as Nuke's Bezier tool makes it
CURVE_FLAGS = 8192            # the shape's cubic curve
BEZIER_TOOL = 4.0             # attribute tt: the tool that made the shape (createBezier)
OVERLAY_WIDTH = 10.0          # attribute osw, Nuke's default


def nuke_name(name: str) -> str:
    """A valid Nuke node/shape name (letters, digits, underscores; not starting with a digit)."""
    n = _NAME.sub("_", str(name)) or "shape"
    return n if not n[0].isdigit() else "_" + n


def nk_float(v: float) -> str:
    """A float as Nuke serialises it: ``0`` or ``x`` + the IEEE 754 single in hex."""
    v = float(v)
    if v == 0.0:
        return "0"
    if not np.isfinite(v):
        raise ValueError(f"cannot write {v} into a Roto shape")
    return "x%08x" % struct.unpack(">I", struct.pack(">f", v))[0]


def _nuke_space(shape: AnimatedShape, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centres, left tangents, right tangents), each (F, N, 2), in Nuke's y-up pixels; the
    tangents relative to their centre."""
    flip = np.array([1.0, -1.0])
    centre = np.stack([shape.points[..., 0], height - shape.points[..., 1]], -1)
    return centre, (shape.left - shape.points) * flip, (shape.right - shape.points) * flip


def _coordinate(values: np.ndarray) -> str:
    """One coordinate of one control point over the key times."""
    if len(values) == 1:
        return nk_float(values[0])
    return "{" + " ".join("{%s -}" % nk_float(v) for v in values) + "}"


def _vec(values: np.ndarray) -> str:
    """{x y} of one control point's centre or tangent, (F, 2) over the key times."""
    return "{%s %s}" % (_coordinate(values[:, 0]), _coordinate(values[:, 1]))


def _curvegroup(shape: AnimatedShape, width: int, height: int, indent: str) -> str:
    centre, left, right = _nuke_space(shape, height)
    frames = [float(f) for f in shape.frames]
    times = nk_float(frames[0]) if len(frames) == 1 else "{" + " ".join(nk_float(t) for t in frames) + "}"
    rows = []
    for i in range(shape.n_points):
        rows += [_vec(left[:, i]), _vec(centre[:, i]), _vec(right[:, i])]
    pad = indent + "    "
    cx, cy = centre[0].mean(0)
    attrs = (f"osw {nk_float(OVERLAY_WIDTH)} osf 0 str 1 spx {nk_float(width / 2)} "
             f"spy {nk_float(height / 2)} sb 1 tt {nk_float(BEZIER_TOOL)}")
    return "\n".join([
        f"{indent}{{curvegroup {nuke_name(shape.name)} {SHAPE_FLAGS} bezier",
        f"{indent} {{{{cc",
        f"{indent}   {{f {CURVE_FLAGS}}}",
        f"{indent}   {{px {times}",
        *(pad + r for r in rows[:-1]),
        pad + rows[-1] + "}}",
        f"{indent}  idem}}",
        f"{indent} {{tx {nk_float(frames[0])} {nk_float(cx)} {nk_float(cy)}}}",
        f"{indent} {{a {attrs}}}}}",
    ])


def curves_value(shapes: list[AnimatedShape]) -> str:
    """The value of a Roto node's ``curves`` knob holding ``shapes``."""
    w, h = _size(shapes)
    groups = "\n".join(_curvegroup(s, w, h, "    ") for s in shapes)
    return "\n".join([
        f"{{{{v {nk_float(FORMAT_VERSION)}}}",
        "  {f 0}",
        "  {n",
        "   {layer Root",
        f"    {{f {LAYER_FLAGS}}}",
        f"    {{t {nk_float(w / 2)} {nk_float(h / 2)}}}",
        "    {a}",
        groups + "}}}",
    ])


def _size(shapes: list[AnimatedShape]) -> tuple[int, int]:
    if not shapes:
        raise ValueError("no shapes to write: every frame's matte was empty")
    w, h = shapes[0].size
    if not (w > 0 and h > 0):
        raise ValueError("the shapes carry no plate size; build them with shot_shapes() from full-res mattes")
    return w, h


def roto_nk(shapes: list[AnimatedShape], node_name: str = "SamRoto", format_name: str | None = None) -> str:
    """.nk text with one Roto node holding ``shapes`` (animated, keyed per frame)."""
    w, h = _size(shapes)
    fmt = format_name or f"samroto_{w}x{h}"
    first = min(min(s.frames) for s in shapes)
    last = max(max(s.frames) for s in shapes)
    return "\n".join([
        "set cut_paste_input [stack 0]",
        "version 13.0",
        "Roto {",
        " inputs 0",
        " output alpha",
        f" format \"{w} {h} 0 0 {w} {h} 1 {fmt}\"",
        " curves {" + curves_value(shapes) + "}",
        f" label \"samroto: {len(shapes)} shape(s), frames {first}-{last}\"",
        f" name {nuke_name(node_name)}",
        " selected true",
        "}",
        "",
    ])


def write_roto_nk(path, shapes: list[AnimatedShape], **kwargs) -> None:
    """Write :func:`roto_nk` text atomically (temp file + rename)."""
    from samroto.core.io import write_text_atomic as write_text
    write_text(path, roto_nk(shapes, **kwargs))
