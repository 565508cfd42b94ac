"""Nuke Roto export: the .nk holds the shapes in Nuke's own ``curves`` serialisation (no
script runs), read back by the fake Nuke's reader (tests/fake_nuke/nuke/rotopaint.py,
written from Foundry's format description, independent of the writer); Convert to Roto
pastes it and the shapes rasterise back to the mattes."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fake_nuke"))
import nuke_testing as nt  # noqa: E402
from nuke import rotopaint  # noqa: E402  (the fake's reader of the curves knob)

from samroto.core.splines import BezierShape, rasterize, shot_shape_tracks  # noqa: E402
from samroto.core.splines.nuke import curves_value, nk_float, roto_nk  # noqa: E402

W, H = 200, 128
FRAMES = range(1001, 1005)
AX, AY = 45.0, 28.0


def centre(frame):
    return 70 + 6 * (frame - 1001), 60.0


def ellipse(frame):
    yy, xx = np.mgrid[0:H, 0:W]
    cx, cy = centre(frame)
    return ((((xx + 0.5 - cx) / AX) ** 2 + ((yy + 0.5 - cy) / AY) ** 2) <= 1).astype(np.float32)


def edge_distance(points, frame):
    """Distance (px, first order) from top-left-space points to the ellipse's edge."""
    cx, cy = centre(frame)
    u, v = (points[:, 0] - cx) / AX, (points[:, 1] - cy) / AY
    grad = 2 * np.hypot(u / AX, v / AY)
    return np.abs(u * u + v * v - 1) / grad


def shapes_at(layer, frame, height):
    """The Roto shapes of ``layer`` at ``frame`` as BezierShapes in top-left pixel space."""
    out = []
    for shape in layer:
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


@pytest.fixture(scope="module")
def shapes():
    return shot_shape_tracks({f: ellipse(f) for f in FRAMES}, tolerance=0.5, name="hero 1")


def test_the_nk_holds_shapes_in_nukes_curve_format(shapes):
    text = roto_nk(shapes, node_name="Hero_roto")
    assert "onCreate" not in text and "import" not in text and "_curvelib" not in text
    knob = text[text.index(" curves {") + len(" curves {"):text.index("\n label ")]
    assert knob.endswith("}") and knob[:-1] == curves_value(shapes)
    root = rotopaint.read_curves(knob[:-1])
    assert root.name == "Root" and [s.name for s in root] == ["hero_1"]
    (shape,) = root
    assert len(shape) == shapes[0].n_points >= 8
    for cp in shape:   # one key per frame on every control point, nothing else
        assert sorted(cp.center.keys) == sorted(cp.leftTangent.keys) == [float(f) for f in FRAMES]
    for f in FRAMES:
        (got,) = shapes_at(root, f, H)
        assert edge_distance(got.points, f).max() < 1.0, f          # on the matte's edge
        filled, want = rasterize([got], (W, H)).astype(bool), ellipse(f) > 0.5
        assert (filled & want).sum() / (filled | want).sum() >= 0.95
        # the writer's numbers, to float32: what Nuke stores
        np.testing.assert_allclose(got.points, shapes[0].points[list(FRAMES).index(f)], atol=1e-3)


def test_one_frame_is_written_as_single_values(shapes):
    one = shapes[0]
    single = type(one)(one.name, one.frames[:1], one.points[:1], one.left[:1], one.right[:1], one.size)
    value = curves_value([single])
    assert "{px x447a4000\n" in value and " -}" not in value   # frame 1001, plain {x y} entries
    (shape,) = rotopaint.read_curves(value)
    assert [sorted(cp.center.keys) for cp in shape][0] == [1001.0]


def test_floats_are_written_as_nuke_writes_them():
    assert [nk_float(v) for v in (0, 1024.0, -2.0, 1.2)] == ["0", "x44800000", "xc0000000", "x3f99999a"]
    assert rotopaint.nk_float("x44800000") == 1024.0 and rotopaint.nk_float("-2.5") == -2.5
    with pytest.raises(ValueError, match="cannot write nan"):
        nk_float(float("nan"))


# The layouts Nuke 10-15 save (seen in public scripts: arcadeperfect/nuke_harding_nodes
# groups/fancygrad.nk, Nuke 15.0; NukeSurvivalToolkit and CWSlate gizmos in
# weijer/NukeToolSet, Nuke 10-13), written out here with this test's own numbers: a
# single-key shape with its own feather curve, a two-key shape whose keys carry tangent data
# or none ("-"), a coordinate keyed less often than its curve, a point's attributes, a stroke.
SAVED_LAYOUTS = """{{v x3f99999a}
  {f 0}
  {n
   {layer Root
    {f 2097152}
    {t x44700000 x44070000}
    {a pt1x 0 pt1y 0 ptmot x40800000 ptref 0}
    {curvegroup Bezier1 512 bezier
     {{cc
       {f 8192}
       {px x447a4000
        {0 x40000000}
        {x42c80000 x42480000}
        {0 xc0000000}
        {x40400000 0}
        {x43480000 x42480000}
        {xc0400000 0}
        {0 0}
        {x43480000 x42c80000}
        {0 0}}}
      {cc
       {f 8192}
       {px x447a4000
        {0 x40000000}
        {xc1200000 0}
        {0 xc0000000}
        {x40400000 0}
        {x41200000 0}
        {xc0400000 0}
        {0 0}
        {0 x41200000}
        {0 0}}}}
     {t
      {{x447a4000 x43160000}}
      {{x447a4000 x42a00000}}     0
      {{x447a4000 0}}}
     {a spx x44700000 spy x44070000 sb 1 ltn x447a4000 ltm x447a4000 tt x40800000}}
    {layer Layer1
     {f 2097664}
     {t x44700000 x44070000}
     {a}
     {curvegroup Bezier2 512 bezier
      {{cc
        {f 8192}
        {px
         {0 1}
         {{{0 -}}
          {{0 -}}}
         {{{x41200000 0 1 x42b40000 1}
           {x42dc0000 x42b40000 1 0 1}}
          {{x41a00000 -}}}
         {{{0 -}}
          {{0 -}}}
         {{{0 -}}
          {{0 -}}}
         {{{x42480000 -}
           {x43020000 -}}
          {{x41a00000 -}}}
         {{{0 -}}
          {{0 -}}}
         {{{0 -}}
          {{0 -}}}
         {{{x42480000 -}
           {x43020000 -}}
          {{x42480000 -}}}
         {{{0 -}}
          {{0 -}}}}}     idem}
      {tx 1 x42200000 x42000000}
      {a osw x41200000 osf 0 str 1 tt x40800000}}
     {cubiccurve Brush1 512 catmullrom
      {cc
       {f 2080}
       {p
        {x42c80000 x42c80000 1}
        {x43480000 x42c80000}}}
      {tx x447a4000 x42c80000 x42c80000}
      {a bs x41c80000 str 1 tt x41880000}}}}}}"""


def test_the_reader_takes_the_layouts_nuke_saves():
    root = rotopaint.read_curves(SAVED_LAYOUTS)
    bezier1, layer1 = root
    assert bezier1.name == "Bezier1" and len(bezier1) == 3
    assert [(cp.center.getPosition(1001).x, cp.center.getPosition(1001).y) for cp in bezier1] == [
        (100.0, 50.0), (200.0, 50.0), (200.0, 100.0)]
    assert bezier1[0].featherCenter.getPosition(1001).x == -10.0     # its own feather curve
    bezier2, brush = layer1
    assert brush.name == "Brush1" and [cp.center.getPosition(1).x for cp in bezier2] == [110.0, 130.0, 130.0]
    assert [cp.center.getPosition(0).y for cp in bezier2] == [20.0, 20.0, 50.0]   # held single keys


@pytest.mark.parametrize("broken, why", [
    (SAVED_LAYOUTS[:-1], "unclosed"),
    (SAVED_LAYOUTS.replace("{v x3f99999a}", "{v 2}"), "not a format 1.2"),
    (SAVED_LAYOUTS.replace("{0 0}}}\n      {cc", "}}\n      {cc", 1), "not three per control point"),
    (SAVED_LAYOUTS.replace("512 bezier\n     {{cc", "512 bspline\n     {{cc", 1), "only bezier"),
])
def test_the_reader_refuses_broken_text(broken, why):
    with pytest.raises(RuntimeError, match=why):
        rotopaint.read_curves(broken)


def test_convert_to_roto_rasterises_back_to_the_matte(monkeypatch, tmp_path):
    nuke, plugin = nt.load(monkeypatch)
    monkeypatch.setenv("SAMROTO_PYTHON", sys.executable)
    read = nuke.nodes.Read(file=nt.make_plate(tmp_path / "plate", w=W, h=H), first=1001, last=1004)
    nuke._SELECTED[:] = [read]
    node = plugin.create_node()
    node["matte_dir"].setValue(str(tmp_path / "mattes"))
    node["o1_name"].setValue("blob")
    os.makedirs(tmp_path / "mattes")
    node["o1_matte"].setValue(str(tmp_path / "mattes" / "SAM2Matte1.blob.%04d.exr"))
    for f in FRAMES:   # what the bridge leaves after tracking
        nt.write_exr(plugin.group.matte_pattern(node, 1) % f, ellipse(f))

    node["convert_roto"].execute()
    assert not nuke._MESSAGES, nuke._MESSAGES
    roto = nuke.toNode("SAM2Matte1_roto")
    assert roto is not None and roto.Class() == "Roto" and roto.parent() is nuke.root()
    curves = roto["curves"]
    assert [s.name for s in curves.rootLayer] == ["blob"] and curves.changes == 1
    assert roto["onCreate"].value() == ""   # nothing to run: the shapes are data
    for f in FRAMES:
        got = rasterize(shapes_at(curves.rootLayer, f, H), (W, H)).astype(bool)
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
