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
    return plugin.create_node()


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
    assert src == {"path": pattern, "first": 1001, "last": 1004, "color": {"input": "linear"},
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
    assert src["rendered"] and (src["first"], src["last"]) == (1002, 1003)
    assert src["color"] == {"input": "linear"}
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
        plugin.frames.render_source(node, 990, 1001, str(tmp_path / "render"))


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
