"""Nuke: animated Roto shapes as .nk text that pastes into the Node Graph.

The text is one ``Roto`` node. Its shapes are built, when Nuke creates the node (on
paste or script load), by a short ``onCreate`` script that uses Nuke's documented
``nuke.rotopaint`` API (Shape, ShapeControlPoint, addPositionKey) — one key per frame on
every control point — and then clears itself, so the shapes are stored natively from then
on and the code never runs twice. ``roto_python`` gives the same code for the Script
Editor or a plugin.

Nuke's coordinates are pixels with y up from the bottom-left corner: y_nuke = height - y.
Tangents are offsets from their point, as Nuke keeps them.
"""

from __future__ import annotations

import re

from .contours import AnimatedShape

_NAME = re.compile(r"[^A-Za-z0-9_]")


def nuke_name(name: str) -> str:
    """A valid Nuke node/shape name (letters, digits, underscores; not starting with a digit)."""
    n = _NAME.sub("_", str(name)) or "shape"
    return n if not n[0].isdigit() else "_" + n


def _keys(shape: AnimatedShape, height: int) -> list:
    """[(frame, [(x, y, ltx, lty, rtx, rty), ...]), ...] in Nuke space, rounded to 1/1000 px."""
    keys = []
    for f, pts, left, right in zip(shape.frames, shape.points, shape.left, shape.right):
        rows = []
        for p, l, r in zip(pts, left, right):
            rows.append(tuple(round(float(v), 3) for v in (
                p[0], height - p[1], l[0] - p[0], -(l[1] - p[1]), r[0] - p[0], -(r[1] - p[1]))))
        keys.append((int(f), rows))
    return keys


def _builder_code(shapes: list[AnimatedShape], height: int, node_expr: str) -> str:
    """Python (no braces, no backslashes: safe inside a Tcl brace-quoted knob) that adds
    one animated Bezier per AnimatedShape to the Roto node ``node_expr``."""
    data = [(nuke_name(s.name), _keys(s, height)) for s in shapes]
    lines = [
        "import nuke.rotopaint as _rp",
        "from _curvelib import CVec2 as _V",
        f"_node = {node_expr}",
        "_curves = _node['curves']",
        f"_data = {data!r}",
        "for _name, _keys in _data:",
        "    _shape = _rp.Shape(_curves)",
        "    _shape.name = _name",
        "    for _i in range(len(_keys[0][1])):",
        "        _shape.append(_rp.ShapeControlPoint(0.0, 0.0))",
        "    for _t, _rows in _keys:",
        "        for _cp, _r in zip(_shape, _rows):",
        "            _cp.center.addPositionKey(_t, _V(_r[0], _r[1]))",
        "            _cp.leftTangent.addPositionKey(_t, _V(_r[2], _r[3]))",
        "            _cp.rightTangent.addPositionKey(_t, _V(_r[4], _r[5]))",
        "            _cp.featherLeftTangent.addPositionKey(_t, _V(_r[2], _r[3]))",
        "            _cp.featherRightTangent.addPositionKey(_t, _V(_r[4], _r[5]))",
        "    _curves.rootLayer.append(_shape)",
        "_curves.changed()",
    ]
    code = "\n".join(lines)
    assert "{" not in code and "}" not in code and "\\" not in code
    return code


def roto_python(shapes: list[AnimatedShape], node_name: str = "SamRoto") -> str:
    """Script Editor code: creates a Roto node and fills it with the animated shapes."""
    w, h = _size(shapes)
    create = f"nuke.nodes.Roto(name={nuke_name(node_name)!r}, output='alpha')"
    return "import nuke\n" + _builder_code(shapes, h, create) + "\n"


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
    code = _builder_code(shapes, h, "nuke.thisNode()")
    code += "\nnuke.thisNode()['onCreate'].setValue('')"
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
        f" label \"samroto: {len(shapes)} shape(s), frames {first}-{last}\"",
        " onCreate {" + code + "}",
        f" name {nuke_name(node_name)}",
        " selected true",
        "}",
        "",
    ])


def write_roto_nk(path, shapes: list[AnimatedShape], **kwargs) -> None:
    """Write :func:`roto_nk` text atomically (temp file + rename)."""
    from samroto.core.io import write_text_atomic as write_text
    write_text(path, roto_nk(shapes, **kwargs))
