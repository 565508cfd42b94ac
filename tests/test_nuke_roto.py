"""Convert to Roto: samroto's Python fits shapes to the node's mattes, the plugin pastes the
.nk text, Nuke (the fake) runs the Roto node's onCreate, and the shapes it built rasterise
back to the mattes."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fake_nuke"))
import nuke_testing as nt  # noqa: E402

from samroto.core.splines import BezierShape, rasterize  # noqa: E402

W, H = 200, 128


def ellipse(frame):
    yy, xx = np.mgrid[0:H, 0:W]
    cx, cy = 70 + 6 * (frame - 1001), 60
    return ((((xx + 0.5 - cx) / 45) ** 2 + ((yy + 0.5 - cy) / 28) ** 2) <= 1).astype(np.float32)


def shapes_at(curves, frame, height):
    """The fake Roto node's shapes at ``frame`` as BezierShapes in top-left pixel space."""
    out = []
    for shape in curves.rootLayer:
        pts, left, right = [], [], []
        for cp in shape:
            c = cp.center.getPosition(frame)
            lt, rt = cp.leftTangent.getPosition(frame), cp.rightTangent.getPosition(frame)
            p = (c.x, height - c.y)
            pts.append(p)
            left.append((p[0] + lt.x, p[1] - lt.y))
            right.append((p[0] + rt.x, p[1] - rt.y))
        out.append(BezierShape(np.array(pts), np.array(left), np.array(right)))
    return out


def test_convert_to_roto_rasterises_back_to_the_matte(monkeypatch, tmp_path):
    nuke, plugin = nt.load(monkeypatch)
    monkeypatch.setenv("SAMROTO_PYTHON", sys.executable)
    read = nuke.nodes.Read(file=nt.make_plate(tmp_path / "plate", w=W, h=H), first=1001, last=1004)
    nuke._SELECTED[:] = [read]
    node = plugin.create_node()
    node["matte_dir"].setValue(str(tmp_path / "mattes"))
    node["o1_name"].setValue("blob")
    os.makedirs(tmp_path / "mattes")
    frames = range(1001, 1005)
    node["o1_matte"].setValue(str(tmp_path / "mattes" / "SAM2Matte1.blob.%04d.exr"))
    for f in frames:   # what the bridge leaves after tracking
        nt.write_exr(plugin.group.matte_pattern(node, 1) % f, ellipse(f))

    node["convert_roto"].execute()
    assert not nuke._MESSAGES, nuke._MESSAGES
    roto = nuke.toNode("SAM2Matte1_roto")
    assert roto is not None and roto.Class() == "Roto" and roto.parent() is nuke.root()
    curves = roto["curves"]
    assert [s.name for s in curves.rootLayer] == ["blob"] and curves.changes == 1
    assert roto["onCreate"].value() == ""   # the builder cleared itself: it never runs twice
    for f in frames:
        got = rasterize(shapes_at(curves, f, H), (W, H)).astype(bool)
        want = ellipse(f) > 0.5
        iou = (got & want).sum() / float((got | want).sum())
        assert iou >= 0.95, (f, iou)


def test_convert_without_mattes_says_track_first(monkeypatch, tmp_path):
    nuke, plugin = nt.load(monkeypatch)
    monkeypatch.setenv("SAMROTO_PYTHON", sys.executable)
    read = nuke.nodes.Read(file=nt.make_plate(tmp_path / "plate"), first=1001, last=1004)
    nuke._SELECTED[:] = [read]
    node = plugin.create_node()
    node["matte_dir"].setValue(str(tmp_path / "none"))
    node["convert_roto"].execute()
    assert "no mattes to convert yet: Track first" in nuke._MESSAGES[-1]
