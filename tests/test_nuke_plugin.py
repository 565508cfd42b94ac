"""The Nuke plugin's Nuke-side code on a fake ``nuke`` (tests/fake_nuke): the node, its
prompt knobs -> prompts JSON, frame-source discovery and the render-to-EXR path, errors."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fake_nuke"))
import nuke_testing as nt  # noqa: E402


@pytest.fixture
def env(monkeypatch, tmp_path):
    nuke, plugin = nt.load(monkeypatch)
    pattern = nt.make_plate(tmp_path / "plate")
    read = nuke.nodes.Read(file=pattern, first=1001, last=1004, colorspace="default (linear)")
    nuke.root()["first_frame"].setValue(1001)
    nuke.root()["last_frame"].setValue(1004)
    nuke.frame(1001)
    return nuke, plugin, read, pattern


def make_node(nuke, plugin, upstream):
    nuke._SELECTED[:] = [upstream]
    node = plugin.create_node()
    node["live"].setValue(False)   # the live matte has its own tests (test_nuke_live.py)
    return node


def node_with_point(nuke, plugin, upstream, frame, x, y):
    """A SAM2Matte on ``upstream`` with one positive point at (x, y) (Nuke pixels) on ``frame``."""
    node = make_node(nuke, plugin, upstream)
    nuke.frame(frame)
    node["add_pos"].execute()
    node["o1_pos1"].setValueAt(x, frame, 0)
    node["o1_pos1"].setValueAt(y, frame, 1)
    return node


def test_menu_and_node_creation(env):
    nuke, plugin, read, _ = env
    menu_py = nt.PLUGIN_SRC / "startup" / "menu.py"
    exec(compile(menu_py.read_text(), str(menu_py), "exec"), {})
    command = nuke.menu("Nodes").findItem("SAM2").findItem("SAM2Matte")
    nuke._SELECTED[:] = [read]
    exec(command, {})
    node = nuke.toNode("SAM2Matte1")
    assert node is not None and node.Class() == "Group" and node.input(0) is read
    for name in ("track_forward", "track_backward", "track_both", "track_frame", "clear",
                 "convert_roto", "model", "device", "o1_name", "o1_channel", "range"):
        assert node.knob(name) is not None, name
    assert node["o1_channel"].value() == "rgba.alpha"
    inside = {n.name(): n for n in node.nodes()}
    assert inside["Output1"].input(0) is inside["Plate"]
    assert make_node(nuke, plugin, read).name() == "SAM2Matte2"


def test_prompts_from_knobs_two_objects_two_frames(env):
    nuke, plugin, read, _ = env
    node = make_node(nuke, plugin, read)
    press = lambda name: node[name].execute()  # noqa: E731  the artist presses a button
    nuke.frame(1001)
    press("add_pos")
    node["o1_pos1"].setValueAt(20.0, 1001, 0)
    node["o1_pos1"].setValueAt(30.0, 1001, 1)   # Nuke y up: 30 from the bottom of 48 rows
    press("add_neg")
    node["o1_neg1"].setValueAt(5.5, 1001, 0)
    node["o1_neg1"].setValueAt(40.0, 1001, 1)
    nuke.frame(1003)
    node["o1_pos1"].setValueAt(26.0, 1003, 0)   # the artist drags it on 1003: a key there
    node["o1_pos1"].setValueAt(31.0, 1003, 1)
    press("add_object")
    assert node["object"].value() == 2 and node["o2_channel"].value() == "sam2.obj2"
    node["o2_name"].setValue("hat")
    press("add_box")
    for i, v in enumerate((10, 8, 30, 40)):     # x, y, r, t
        node["o2_box1"].setValueAt(v, 1003, i)

    doc = plugin.knobs.collect(node, 48)
    assert doc == {"version": 1, "objects": [
        {"id": 1, "name": "object1", "prompts": [
            {"frame": 1001, "points": [[20.0, 18.0], [5.5, 8.0]], "labels": [1, 0]},
            {"frame": 1003, "points": [[26.0, 17.0]], "labels": [1]}]},
        {"id": 2, "name": "hat", "prompts": [{"frame": 1003, "box": [10.0, 8.0, 30.0, 40.0]}]},
    ]}

    from samroto.core import prompts as core_prompts   # the engine's own schema check

    parsed = core_prompts.from_dict(doc)
    core_prompts.validate(parsed, range(1001, 1005), 64, 48)
    assert parsed.to_dict() == doc

    nuke.frame(1001)
    node["object"].setValue(1)
    press("clear_frame")        # the negative point only lived on 1001: it goes
    assert node.knob("o1_neg1") is None and node["o1_pos1"].getKeyList() == [1003.0]
    press("clear")
    assert not plugin.knobs.handles(node, 1) and plugin.knobs.handles(node, 2)


def test_prompt_errors_are_nuke_messages(env):
    nuke, plugin, read, _ = env
    node = make_node(nuke, plugin, read)
    node["track_forward"].execute()
    assert "No prompts yet" in nuke._MESSAGES[-1]
    assert node["status"].value().startswith("Error: No prompts")
    node.addKnob(nuke.XY_Knob("o1_pos7", "stray"))  # a handle that lost its keys
    node["track_forward"].execute()
    assert "o1_pos7 has no keyframe" in nuke._MESSAGES[-1]


def test_read_fast_path_through_pass_throughs_only(env):
    nuke, plugin, read, pattern = env
    dot = nuke.nodes.Dot()
    dot.setInput(0, read)
    noop = nuke.nodes.NoOp()
    noop.setInput(0, dot)
    off = nuke.nodes.Grade(disable=True, multiply=3.0)
    off.setInput(0, noop)
    node = make_node(nuke, plugin, off)
    src = plugin.frames.read_source(node)
    assert src == {"path": pattern, "first": 1001, "last": 1004, "offset": 0, "color": {"input": "linear"},
                   "rendered": False, "read": read.name()}
    off["disable"].setValue(False)           # a live Grade changes pixels: no fast path
    assert plugin.frames.read_source(node) is None
    off["disable"].setValue(True)
    read["frame"].setValue("1000")           # a retimed Read: its frame numbers are not the files'
    assert plugin.frames.read_source(node) is None
    read["frame"].setValue("")
    read["colorspace"].setValue("sRGB")
    assert plugin.frames.read_source(node)["color"] == {"input": "srgb"}
    read["colorspace"].setValue("ACES - ACEScct")
    assert plugin.frames.read_source(node)["color"] == {"input": "ACES - ACEScct"}
    read["raw"].setValue(True)
    assert plugin.frames.read_source(node)["color"] == {"input": "auto"}


def test_render_path_writes_the_input_as_exr(env, tmp_path):
    nuke, plugin, read, pattern = env
    grade = nuke.nodes.Grade(multiply=0.5)
    grade.setInput(0, read)
    node = make_node(nuke, plugin, grade)
    assert plugin.frames.read_source(node) is None
    src = plugin.frames.render_source(node, 1002, 1003, str(tmp_path / "render"))
    assert src["rendered"] and (src["first"], src["last"], src["offset"]) == (1002, 1003, 0)
    assert src["color"] == {"input": "linear"}
    assert not (tmp_path / "render").exists()   # what to render, not rendered yet (tracking.py renders)
    plugin.frames.render_now(node, src)
    assert sorted(p.name for p in (tmp_path / "render").iterdir()) == ["plate.1002.exr", "plate.1003.exr"]
    got, _ = nt.read_exr(tmp_path / "render" / "plate.1003.exr")
    want, _ = nt.read_exr(pattern % 1003)
    np.testing.assert_allclose(got, want * 0.5, atol=1e-3)
    assert not [n for n in node.nodes() if n.Class() == "Write"]  # the temporary Write is gone


def test_render_failure_is_a_nuke_message(env, tmp_path):
    nuke, plugin, read, _ = env
    grade = nuke.nodes.Grade(multiply=0.5)
    grade.setInput(0, read)
    node = make_node(nuke, plugin, grade)
    with pytest.raises(plugin.frames.FrameError, match="could not render"):
        plugin.frames.render_now(node, plugin.frames.render_source(node, 990, 1001, str(tmp_path / "render")))
    assert not [n for n in node.nodes() if n.Class() == "Write"]


def test_plugin_is_python37_and_stdlib_only():
    """Nuke 13's Python is 3.7 and has no numpy: the plugin must parse there and import only
    the standard library, ``nuke`` and its own package (the bridge client and host kit are in
    vendor/; kit.py falls back to samroto's own copy in a samroto checkout)."""
    import ast

    allowed = set(sys.stdlib_module_names) | {"nuke", "samroto_nuke"}
    files = list((nt.PLUGIN_SRC / "samroto_nuke").glob("*.py")) + list((nt.PLUGIN_SRC / "startup").glob("*.py"))
    assert len(files) >= 8
    for path in files:
        tree = ast.parse(path.read_text(), feature_version=(3, 7))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                if (path.name, name) != ("kit.py", "samroto.bridge"):
                    assert name.split(".")[0] in allowed, (path.name, name)


def test_add_layer_arguments_are_one_tcl_word_each(env):
    """Defect 6: nuke.tcl passes each argument as one Tcl word without re-parsing it, so the
    layer list goes without braces (with them, add_layer gets a one-element list whose element
    'sam2 sam2.obj2' is no layer name, which the fake refuses as Nuke does)."""
    nuke, plugin, read, _ = env
    with pytest.raises(RuntimeError, match="bad layer name"):
        nuke.tcl("add_layer", "{x1 x1.a}")
    nuke.tcl("add_layer {x2 x2.a}")      # the program form parses braces
    nuke.tcl("add_layer", "x3 x3.a")     # a list as one word
    node = make_node(nuke, plugin, read)
    node["add_object"].execute()
    assert node["o2_channel"].value() == "sam2.obj2"


def test_trimmed_movie_read_sends_the_movies_own_frames(env, tmp_path):
    """Defect 5: a movie Read trimmed to 4-9 (origfirst 1) shows the movie's frames 3-8
    (counted from 0, as the bridge and `samroto track` count them) on Nuke's 4-9. The shot
    and the prompts go in the movie's numbers; nothing is shifted by first - origfirst."""
    nuke, plugin, _, _ = env
    movie = nt.make_movie(tmp_path / "movie", frames=12)
    read = nt.movie_read(nuke, movie, 12, 4, 9)
    nuke.root()["first_frame"].setValue(1)
    nuke.root()["last_frame"].setValue(100)
    node = node_with_point(nuke, plugin, read, 5, 20.0, 30.0)
    req = plugin.tracking.build_request(node, "both")
    shot = plugin.tracking.shot(req)
    assert (shot.source, shot.first, shot.last) == (movie, 3, 8)     # the movie's own frames
    assert shot.prompts["objects"][0]["prompts"] == [{"frame": 4, "points": [[20.0, 18.0]], "labels": [1]}]
    assert req["range"] == [4, 9] and req["plate_range"] == [4, 9]   # the node's frames: Nuke's
    src = plugin.frames.read_source(node)
    assert (src["path"], src["first"], src["last"], src["offset"]) == (movie, 4, 9, 1)
    nuke.frame(9)
    back = plugin.tracking.shot(plugin.tracking.build_request(node, "backward"))
    assert (back.first, back.last, back.direction) == (3, 8, "backward")
    read["first"].setValue(-5)           # frames before the movie's first hold it: not trackable
    assert plugin.frames.read_source(node)["first"] == 1


def test_proxy_mode_tracks_the_full_size_plate(env, tmp_path):
    """Defect 5: in proxy mode nuke.filename gives the Read's proxy file, while the handles
    are full-size pixels: the node sends the full-size file (and flips y with its height)."""
    nuke, plugin, read, pattern = env
    proxy = nt.make_plate(tmp_path / "proxy", w=32, h=24)
    read["proxy"].setValue(proxy)
    nuke.root()["proxy"].setValue(True)
    assert nuke.filename(read) == proxy      # what Nuke itself gives in proxy mode
    node = node_with_point(nuke, plugin, read, 1002, 40.0, 30.0)
    req = plugin.tracking.build_request(node, "frame")
    assert req["source"]["path"] == pattern
    assert req["prompts"]["objects"][0]["prompts"] == [{"frame": 1002, "points": [[40.0, 18.0]], "labels": [1]}]
    read["file"].setValue("[getenv PLATES]/plate.%04d.exr")
    with pytest.raises(plugin.frames.FrameError, match="turn proxy mode off"):
        plugin.frames.read_source(node)


def test_the_fake_is_as_strict_as_nuke(env, tmp_path):
    """The fake refuses or differs where Nuke does (sources in tests/fake_nuke/nuke)."""
    nuke, plugin, read, pattern = env
    # a movie Read: frame f is the movie's frame f - origfirst, trimmed or not
    movie = nt.make_movie(tmp_path / "movie", frames=6)
    mread = nt.movie_read(nuke, movie, 6, 3, 5)
    write = nuke.nodes.Write(file=str(tmp_path / "out.%04d.exr"))
    write.setInput(0, mread)
    nuke.execute(write, 4, 4)
    got, _ = nt.read_exr(tmp_path / "out.0004.exr")
    np.testing.assert_allclose(got, nt.movie_frame(movie, 3), atol=2e-3)
    assert (mread.frameRange().first(), mread.frameRange().last()) == (3, 5)
    # proxy mode: a Write renders into its proxy file, at the proxy scale
    nuke.root()["proxy"].setValue(True)
    with pytest.raises(RuntimeError, match="no proxy file"):
        nuke.execute(write, 4, 4)
    nuke.root()["proxy"].setValue(False)
    # a button on a Group runs inside it
    group = nuke.nodes.Group(name="G")
    group.addKnob(nuke.PyScript_Knob("b", "b", "nuke.nodes.NoOp(name='made'); assert nuke.thisGroup() is nuke.thisNode()"))
    group["b"].execute()
    assert group.node("made") is not None and nuke.toNode("made") is None and nuke.toNode("root.G.made") is not None
    # the main-thread calls are for worker threads only (Nuke hangs otherwise)
    with pytest.raises(RuntimeError, match="main thread"):
        nuke.executeInMainThreadWithResult(len, ("x",))
    # a non-Read node's frames are its input's
    grade = nuke.nodes.Grade()
    grade.setInput(0, read)
    assert (grade.frameRange().first(), grade.frameRange().last()) == (1001, 1004)


def sample_at(nuke, viewer, x0, y0, x1=None, y1=None, width=64):
    """Ctrl+click at Nuke pixel (x0, y0) (or Ctrl+Shift+drag to (x1, y1)) in a Viewer showing
    a plate ``width`` wide: the Viewer's normalised sample (x -1..1 over the width, y in
    the same unit from the centre of the 48 rows)."""
    half = width / 2.0
    x1, y1 = (x0, y0) if x1 is None else (x1, y1)
    nuke._viewer_sample(viewer, (x0 - half) / half, (y0 - 24) / half, (x1 - half) / half, (y1 - 24) / half)


def test_viewer_clicks_place_prompts_on_the_armed_node(env):
    """Ctrl+click / Ctrl+Shift+drag in the Viewer (its colour sample) puts a handle there on
    the node whose 'viewer clicks' is armed, keyed on the current frame; one node at a time."""
    nuke, plugin, read, _ = env
    menu_py = nt.PLUGIN_SRC / "startup" / "menu.py"
    exec(compile(menu_py.read_text(), str(menu_py), "exec"), {})   # registers the Viewer callback
    node = make_node(nuke, plugin, read)
    other = make_node(nuke, plugin, read)
    viewer = nuke.nodes.Viewer()
    viewer.setInput(0, node)
    nuke.frame(1002)
    sample_at(nuke, viewer, 20, 30)            # not armed: an ordinary colour sample
    assert plugin.knobs.handles(node) == [] and plugin.knobs.handles(other) == []

    node["viewer_clicks"].setValue("+ point")
    sample_at(nuke, viewer, 20, 30)
    node["viewer_clicks"].setValue("- point")
    sample_at(nuke, viewer, 50.5, 10.25)
    node["viewer_clicks"].setValue("box")
    sample_at(nuke, viewer, 40, 5, 10, 25)     # dragged from the bottom-right corner
    found = {(k, i): knob for _, k, i, knob in plugin.knobs.handles(node)}
    assert found[("pos", 1)].getKeyList() == [1002.0] and found[("pos", 1)].valueAt(1002) == [20.0, 30.0]
    assert found[("neg", 1)].valueAt(1002) == [50.5, 10.25]
    assert found[("box", 1)].valueAt(1002) == [10.0, 5.0, 40.0, 25.0]
    doc = plugin.knobs.collect(node, 48)
    assert doc["objects"][0]["prompts"] == [{"frame": 1002, "points": [[20.0, 18.0], [50.5, 37.75]],
                                             "labels": [1, 0], "box": [10.0, 23.0, 40.0, 43.0]}]
    sample_at(nuke, viewer, 12, 12)             # a click is no box
    assert "Ctrl+Shift+drag over the object" in node["status"].value()

    other["viewer_clicks"].setValue("+ point")  # arming another node disarms this one
    assert node["viewer_clicks"].value() == "off"
    sample_at(nuke, viewer, 8, 8)
    assert len(plugin.knobs.handles(node)) == 3 and len(plugin.knobs.handles(other)) == 1
