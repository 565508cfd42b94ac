"""Blender Mask data and Fusion .setting parsed back give the same shapes; the one exporter
writes every host (Nuke's .nk is read back in test_nuke_roto.py, by the fake Nuke)."""

import json
import re
import sys

import cv2
import numpy as np
import pytest

from samroto.core.splines import BezierShape, rasterize, shot_shapes
from samroto.core.splines.blender import from_mask_space, mask_data, to_mask_space, write_mask_json
from samroto.core.splines.fusion import from_fusion, polygon_setting, write_polygon_setting
from samroto.core.splines.nuke import roto_nk, write_roto_nk

H, W = 180, 320


def _matte(t):
    m = np.zeros((H, W), np.float32)
    cv2.ellipse(m, (100 + 10 * t, 90), (60, 35), 15 * t, 0, 360, 1.0, -1)
    return m


@pytest.fixture(scope="module")
def shot():
    mattes = {1001 + t: _matte(t) for t in range(3)}
    return [shot_shapes(mattes, name="hero 1")], mattes


def _iou(a, b):
    return (a & b).sum() / max(1, (a | b).sum())


def _check_iou(points, left, right, matte):
    iou = _iou(rasterize([BezierShape(points, left, right)], (W, H)) > 0, matte >= 0.5)
    assert iou >= 0.97, iou


# ---------------------------------------------------------------- Blender

def test_blender_mask_space_is_square_normalised_y_up():
    corners = np.array([[0, 0], [W, H], [W / 2, H / 2]], float)
    uv = to_mask_space(corners, W, H)
    np.testing.assert_allclose(uv[2], [0.5, 0.5])
    np.testing.assert_allclose(uv[0], [0.0, 0.5 + 0.5 * H / W])            # top-left: y up, centred
    np.testing.assert_allclose(uv[1], [1.0, 0.5 - 0.5 * H / W])
    np.testing.assert_allclose(from_mask_space(uv, W, H), corners, atol=1e-9)
    tall = to_mask_space(np.array([[0.0, 0.0]]), 100, 200)
    np.testing.assert_allclose(tall, [[0.25, 1.0]])


def test_blender_mask_data_round_trips(shot, tmp_path):
    shapes, mattes = shot
    write_mask_json(tmp_path / "mask.json", shapes)
    data = json.loads((tmp_path / "mask.json").read_text())
    assert data["format"] == "samroto.blender_mask/1" and data["frame_size"] == [W, H]
    (layer,) = data["layers"]
    (spline,) = layer["splines"]
    assert layer["name"] == "hero 1" and spline["cyclic"] is True
    assert [k["frame"] for k in spline["keys"]] == shapes[0].frames
    for key in spline["keys"]:
        rows = np.array(key["points"])
        assert rows.shape == (spline["n_points"], 6)
        co, hl, hr = (from_mask_space(rows[:, i:i + 2], W, H) for i in (0, 2, 4))
        _check_iou(co, hl, hr, mattes[key["frame"]])
    assert mask_data(shapes) == data


# ---------------------------------------------------------------- Fusion

_TOKEN = re.compile(r'\s*(?:(\[-?\d+\])|("(?:[^"\\]|\\.)*")|([A-Za-z_][A-Za-z0-9_]*)|(-?[\d.]+(?:e-?\d+)?)|(.))')


def _lua(text):
    """A tiny parser for the Lua-table subset Fusion's .setting files use."""
    toks = [m for m in _TOKEN.findall(text) if any(m)]
    pos = 0

    def value():
        nonlocal pos
        idx, s, ident, num, sym = toks[pos]
        pos += 1
        if s:
            return s[1:-1]
        if num:
            return float(num)
        if ident in ("true", "false"):
            return ident == "true"
        if ident:
            if toks[pos][4] == "(":                   # ordered() { ... }
                pos += 2
            if toks[pos][4] == "{":
                tbl = value()
                tbl["__type"] = ident
                return tbl
            return ident
        assert sym == "{", f"unexpected {sym!r}"
        tbl, items = {}, []
        while toks[pos][4] != "}":
            idx, s, ident, num, sym = toks[pos]
            if idx or (ident and toks[pos + 1][4] == "="):
                pos += 2
                tbl[int(idx[1:-1]) if idx else ident] = value()
            else:
                items.append(value())
            if toks[pos][4] == ",":
                pos += 1
        pos += 1
        if items:
            tbl["__items"] = items
        return tbl

    out = value()
    assert pos == len(toks), "trailing text"
    return out


def test_fusion_setting_parses_and_round_trips(shot, tmp_path):
    shapes, mattes = shot
    write_polygon_setting(tmp_path / "mask.setting", shapes, frame_offset=-1001)
    doc = _lua((tmp_path / "mask.setting").read_text())
    tool = doc["Tools"]["hero_1"]
    assert tool["__type"] == "PolylineMask" and doc["ActiveTool"] == "hero_1"
    assert tool["Inputs"]["MaskWidth"]["Value"] == W and tool["Inputs"]["MaskHeight"]["Value"] == H
    spline = doc["Tools"][tool["Inputs"]["Polyline"]["SourceOp"]]
    assert spline["__type"] == "BezierSpline"
    assert sorted(spline["KeyFrames"]) == [0, 1, 2]
    for k, frame in enumerate(shapes[0].frames):
        poly = spline["KeyFrames"][k]["Value"]
        assert poly["__type"] == "Polyline" and poly["Closed"] is True
        pts = poly["Points"]["__items"]
        XY = np.array([[p["X"], p["Y"]] for p in pts])
        L = XY + np.array([[p["LX"], p["LY"]] for p in pts])
        R = XY + np.array([[p["RX"], p["RY"]] for p in pts])
        _check_iou(from_fusion(XY, W, H), from_fusion(L, W, H), from_fusion(R, W, H), mattes[frame])
    # Fusion's centre is (0, 0), x spans -0.5..0.5, y in image widths, up
    assert abs(XY[:, 0]).max() < 0.5 and abs(XY[:, 1]).max() < 0.5 * H / W
    assert polygon_setting(shapes).count("{") == polygon_setting(shapes).count("}")


def test_writers_refuse_empty_input():
    for fn in (roto_nk, mask_data, polygon_setting):
        with pytest.raises(ValueError, match="no shapes"):
            fn([])


# ---------------------------------------------------------------- the one exporter

@pytest.fixture(scope="module")
def sequences(tmp_path_factory, shot):
    """Two objects' matte sequences as the bridge writes them (one EXR per object a frame):
    "hero 1" (the moving ellipse) and "pair" (two discs, a second piece)."""
    from samroto.core.io.mattes import MatteWriter

    _, mattes = shot
    folder = tmp_path_factory.mktemp("mattes")
    with MatteWriter(str(folder / "{name}.%04d.exr"), layout="files") as writer:
        for f, m in mattes.items():
            pair = np.zeros((H, W), np.float32)
            cv2.circle(pair, (60, 40), 20, 1.0, -1)
            cv2.circle(pair, (250, 140), 15, 1.0, -1)
            writer.write(f, {"hero 1": m, "pair": pair})
    return [("hero 1", str(folder / "hero_1.%04d.exr")), ("pair", str(folder / "pair.####.exr"))]


@pytest.mark.parametrize("host, writer", [("nuke", lambda p, s: write_roto_nk(p, s, node_name="N_roto")),
                                          ("blender", lambda p, s: write_mask_json(p, s, mask_name="N_roto")),
                                          ("fusion", lambda p, s: write_polygon_setting(p, s, frame_offset=-1000))])
def test_exporter_writes_cores_shapes_for_each_host(sequences, tmp_path, host, writer):
    """`python -m samroto.core.splines.export --host H` = core's shapes of each object's
    matte sequence (one per piece), through that host's writer."""
    from samroto.core.splines import shot_shape_tracks
    from samroto.core.splines.export import main, read_sequence

    args = ["--host", host, str(tmp_path / "out"), "--name", "N_roto", "--frame-offset", "-1000", "--tolerance", "1"]
    assert main(args + [f"--object={n}={p}" for n, p in sequences]) == 0
    shapes = [s for n, p in sequences for s in shot_shape_tracks(read_sequence(p), tolerance=1.0, name=n)]
    assert [s.name for s in shapes] == ["hero 1", "pair", "pair_2"]
    writer(tmp_path / "want", shapes)
    assert (tmp_path / "out").read_text() == (tmp_path / "want").read_text()
    if host == "blender":   # each layer says whose piece it is: the add-on makes a Mask per object
        layers = json.loads((tmp_path / "out").read_text())["layers"]
        assert [(layer["name"], layer["object"]) for layer in layers] == [
            ("hero 1", "hero 1"), ("pair", "pair"), ("pair_2", "pair")]


def test_exporter_errors_are_one_line(sequences, tmp_path, capsys):
    from samroto.core.splines.export import main

    assert main(["--host", "nuke", str(tmp_path / "x.nk"), "--object", "nothing"]) == 1
    assert capsys.readouterr().err == "--object wants NAME=PATTERN, got 'nothing'\n"
    assert main(["--host", "nuke", str(tmp_path / "x.nk"), "--object", "a=" + str(tmp_path / "a.exr")]) == 1
    assert "is not a matte sequence" in capsys.readouterr().err
    assert main(["--host", "nuke", str(tmp_path / "x.nk"), "--object", "a=" + str(tmp_path / "a.%04d.exr")]) == 1
    assert capsys.readouterr().err.startswith("no matte files for a: nothing matches ")
    assert not (tmp_path / "x.nk").exists()


def test_hosts_run_the_exporter_in_samrotos_python(sequences, tmp_path):
    """What Convert to Roto / Convert to Mask run (bridge/hostkit.py, export_shapes)."""
    from samroto.bridge import hostkit

    out = tmp_path / "mask.json"
    assert hostkit.export_shapes(sys.executable, "blender", out, sequences, options=["--name", "shot"]) == out
    data = json.loads(out.read_text())
    assert data["name"] == "shot" and [layer["object"] for layer in data["layers"]] == ["hero 1", "pair", "pair"]
