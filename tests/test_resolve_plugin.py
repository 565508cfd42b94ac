"""The Resolve plugin's Resolve-side parts against the FAKE Resolve/Fusion (tests/fake_resolve):
coordinates, clip frames, prompts with keyframes, import into the bin, tracking with progress
and cancel in the window and the no-window scripts (the bridge client is tests/fake_bridge.py;
test_resolve_bridge.py runs the real one)."""

import os
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "plugins" / "resolve"))

from fake_bridge import FakeBridge  # noqa: E402
from fake_resolve import scene  # noqa: E402
from fake_resolve.fusion import animate  # noqa: E402
from samroto_resolve import clip as cliplib  # noqa: E402
from samroto_resolve import headless, media, prompts, ui, workflow  # noqa: E402
from samroto_resolve.kit import hostkit  # noqa: E402


def test_fusion_rectangles_become_top_left_boxes():
    # width and height are fractions of the image width in Fusion
    assert prompts.rect_to_box(0.5, 0.5, 0.25, 0.1, 1920, 1080) == [720.0, 444.0, 1200.0, 636.0]
    assert prompts.rect_to_box(0.95, 0.5, 0.2, 0.1, 1000, 500) == [850.0, 200.0, 1000.0, 300.0]  # clipped
    # a square on a 2:1 frame: Height 0.2 of the width is 200 px, not 100
    assert prompts.rect_to_box(0.5, 0.5, 0.2, 0.2, 1000, 500) == [400.0, 150.0, 600.0, 350.0]


def test_clip_frames_range_handles_and_timecode(tmp_path):
    resolve, item = scene.build(tmp_path / "shot010.mp4", frames=40, left=5, duration=20)
    info = cliplib.ClipInfo(item)
    assert (info.source, info.first, info.frame_count) == (str(tmp_path / "shot010.mp4"), 0, 40)
    assert info.used_range == (5, 24)
    assert info.track_range(3) == (2, 27)
    assert info.track_range(100) == (0, 39)  # clipped to the source
    assert info.track_range(0, include=[30]) == (5, 30)  # grows to a prompt outside the cut
    assert info.timecode_of(24) == "01:00:01:00"
    assert (info.width, info.height, info.color) == (256, 128, "srgb")


def test_image_sequence_paths_keep_their_numbers():
    assert cliplib.sequence_of("/s/plate.[1001-1100].exr") == ("/s/plate.%04d.exr", 1001, 1100)
    assert cliplib.sequence_of("/s/plate.1001.dpx", "1001") == ("/s/plate.%04d.dpx", 1001, None)
    assert cliplib.sequence_of("/s/clip.mov") is None
    assert cliplib.timecode_to_frames("00:01:00;02", 29.97) == 1800
    assert cliplib.frames_to_timecode(1800, 29.97, drop=True) == "00:01:00;02"


def _two_objects(comp):
    """hero: a box keyed on comp times 8 and 14 + an unkeyed include point; car: an include
    point keyed on 10 and 14 and an exclude point keyed on 10."""
    box = comp.AddTool("RectangleMask"); box.SetAttrs({"TOOLS_Name": "samroto_hero_box"})
    animate(comp, box, "Center", {8: {1: 0.5, 2: 0.5}, 14: {1: 0.6, 2: 0.5}})  # a Path
    animate(comp, box, "Width", {8: 0.25})  # a BezierSpline keyed once
    box.SetInput("Height", 0.125)
    pos = comp.AddTool("EllipseMask"); pos.SetAttrs({"TOOLS_Name": "samroto_hero_pos"})
    pos.SetInput("Center", {1: 0.5, 2: 0.5})
    car = comp.AddTool("EllipseMask"); car.SetAttrs({"TOOLS_Name": "samroto_car_pos_1"})
    animate(comp, car, "Center", {10: {1: 0.25, 2: 0.75}, 14: {1: 0.3, 2: 0.75}}, modifier="XYPath")
    neg = comp.AddTool("EllipseMask"); neg.SetAttrs({"TOOLS_Name": "samroto_car_neg"})
    animate(comp, neg, "Center", {10: {1: 0.1, 2: 0.1}})
    off = comp.AddTool("EllipseMask"); off.SetAttrs({"TOOLS_Name": "samroto_car_pos2", "TOOLB_PassThrough": True})
    other = comp.AddTool("EllipseMask"); other.SetAttrs({"TOOLS_Name": "Ellipse1"})
    comp.CurrentTime = 12.0


def test_prompts_with_keyframes_on_two_frames_for_two_objects(tmp_path):
    resolve, item = scene.build(tmp_path / "shot010.mp4", frames=40, left=5, duration=20)
    comp = prompts.clip_comp(item)  # global range 0-39 = source frames 0-39
    _two_objects(comp)
    doc, frames = prompts.read_prompts(comp, cliplib.ClipInfo(item))
    assert frames == [8, 10, 12, 14]
    car, hero = doc["objects"]
    assert (car["id"], car["name"], hero["id"], hero["name"]) == (1, "car", 2, "hero")
    assert car["prompts"] == [
        {"frame": 10, "points": [[64.0, 32.0], [25.6, 115.2]], "labels": [1, 0]},
        {"frame": 14, "points": [[76.8, 32.0]], "labels": [1]}]
    assert hero["prompts"][0] == {"frame": 8, "box": [96.0, 48.0, 160.0, 80.0]}
    assert hero["prompts"][1] == {"frame": 12, "points": [[128.0, 64.0]], "labels": [1]}
    assert hero["prompts"][2]["frame"] == 14 and hero["prompts"][2]["box"][0] == pytest.approx(121.6)
    from samroto.core.prompts import from_dict, validate  # the shared schema accepts it
    validate(from_dict(doc), range(0, 40), 256, 128)


def test_fake_fusion_animates_only_through_modifiers(tmp_path):
    """The fake does what Fusion does (sources in tests/fake_resolve/fusion.py): SetInput with
    a time on an input that is not animated sets its one value and keys nothing; a point is
    animated through a path (a BezierSpline is refused there), whose keys live on the path's
    own inputs; reading the point at a key time gives the path's value there."""
    from fake_resolve.fusion import Composition

    comp = Composition(global_range=(0, 39), render_range=(5, 24))
    comp.CurrentTime = 12.0
    pos = comp.AddTool("EllipseMask")
    pos.SetInput("Center", {1: 0.2, 2: 0.3}, 8); pos.SetInput("Center", {1: 0.4, 2: 0.5}, 14)
    assert pos.Center.GetKeyFrames() is None and pos.Center.GetConnectedOutput() is None
    assert pos.GetInput("Center", 8) == {1.0: 0.4, 2.0: 0.5, 3.0: 0.0}  # the last write, at any time
    assert pos.AddModifier("Center", "BezierSpline") is False  # a point is not a number
    assert pos.AddModifier("Width", "PolyPath") is False and pos.AddModifier("Nope", "PolyPath") is False
    assert pos.AddModifier("Center", "PolyPath") is True  # keys the current time (12) with the value
    pos.SetInput("Center", {1: 0.6, 2: 0.7}, 20)
    assert pos.Center.GetKeyFrames() is None  # not animated *with a spline*: nil
    path = pos.Center.GetConnectedOutput().GetTool()
    assert path.GetAttrs()["TOOLS_RegID"] == "PolyPath"
    timing = {k: [t for t in (i.GetKeyFrames() or {}).values()] for k, i in
              ((i.GetAttrs()["INPS_ID"], i) for i in path.GetInputList().values())}
    assert timing["Displacement"] == [12.0, 20.0] and not timing["Center"]
    assert pos.GetInput("Center", 12) == {1.0: 0.4, 2.0: 0.5, 3.0: 0.0}
    assert pos.GetInput("Center", 20) == {1.0: 0.6, 2.0: 0.7, 3.0: 0.0}
    width = comp.AddTool("RectangleMask")
    assert width.AddModifier("Width", "BezierSpline") is True
    width.SetInput("Width", 0.3, 30)
    assert list(width.Width.GetKeyFrames().values()) == [12.0, 30.0] and width.GetInput("Width", 30) == 0.3


def test_keys_set_without_a_modifier_are_one_prompt(tmp_path):
    """A script that "keys" with SetInput(id, value, time) on an input it never animated made
    no keyframes in Fusion: the tool is one prompt, on the current frame, at its last value
    (the plugin reads what Fusion holds, not what the script meant)."""
    resolve, item = scene.build(tmp_path / "shot010.mp4", frames=40, left=5, duration=20)
    comp = prompts.clip_comp(item)
    pos = comp.AddTool("EllipseMask"); pos.SetAttrs({"TOOLS_Name": "samroto_hero_pos"})
    pos.SetInput("Center", {1: 0.5, 2: 0.5}, 8); pos.SetInput("Center", {1: 0.25, 2: 0.5}, 14)
    comp.CurrentTime = 12.0
    doc, frames = prompts.read_prompts(comp, cliplib.ClipInfo(item))
    assert frames == [12] and doc["objects"][0]["prompts"] == [{"frame": 12, "points": [[64.0, 64.0]], "labels": [1]}]


def test_comp_time_falls_back_to_the_render_range(tmp_path):
    resolve, item = scene.build(tmp_path / "seq.exr", frames=40, left=5, duration=20)
    info = cliplib.ClipInfo(item)
    from fake_resolve.fusion import Composition
    comp = Composition(global_range=(0, 1000), render_range=(100, 119))  # not the source length
    assert prompts.CompTime(comp, info).to_frame(100) == 5


def test_prompt_errors_say_what_to_do(tmp_path):
    resolve, item = scene.build(tmp_path / "shot010.mp4")
    comp = prompts.clip_comp(item)
    with pytest.raises(prompts.PromptReadError, match="Add Prompts"):
        prompts.read_prompts(comp, cliplib.ClipInfo(item))
    for name in ("samroto_a_box", "samroto_a_box_1"):
        t = comp.AddTool("RectangleMask"); t.SetAttrs({"TOOLS_Name": name})
    with pytest.raises(prompts.PromptReadError, match="two boxes"):
        prompts.read_prompts(comp, cliplib.ClipInfo(item))


def test_add_prompts_script_path_creates_named_tools(tmp_path):
    resolve, item = scene.build(tmp_path / "shot010.mp4")
    assert headless.add_prompts(resolve, out=lambda s: None) == "obj1"
    assert workflow.add_prompts(resolve)[1] == "obj2"
    comp = item.GetFusionCompByIndex(1)
    names = sorted(t.GetAttrs()["TOOLS_Name"] for t in comp.GetToolList(False).values())
    assert names == ["samroto_obj1_box", "samroto_obj1_neg", "samroto_obj1_pos",
                     "samroto_obj2_box", "samroto_obj2_neg", "samroto_obj2_pos"]
    assert comp.locked == 0


def test_track_imports_into_the_bin_with_the_clips_numbers(tmp_path):
    resolve, item = scene.build(tmp_path / "shot010.mp4", frames=40, left=5, duration=20)
    _two_objects(prompts.clip_comp(item))
    bridge = FakeBridge()
    done, plan, imported = headless.track(resolve, "both", out=lambda s: None, poll=0.01,
                                          connect=lambda: bridge, handles=2, add_loader=True)
    assert done.state == "done" and plan.range == (3, 26) and bridge.closed
    (call,) = bridge.calls
    assert (call["first"], call["last"], call["start"], call["direction"]) == (3, 26, None, "both")
    assert (call["source"], call["color"]) == (str(tmp_path / "shot010.mp4"), "srgb")
    assert call["mattes"] == {"transport": "file", "pattern": plan.pattern, "layout": "files", "format": "exr"}
    pattern = str(tmp_path / "samroto_mattes" / "shot010.mp4" / "shot010_{name}.%04d.exr")
    assert plan.pattern == pattern
    for name in ("car", "hero"):
        for f in range(3, 27):
            assert os.path.isfile(pattern.replace("{name}", name) % f)
    pool = resolve.GetProjectManager().GetCurrentProject().GetMediaPool()
    assert pool.imports == [("shot010", [{"FilePath": pattern.replace("{name}", "car"), "StartIndex": 3, "EndIndex": 26}]),
                            ("shot010", [{"FilePath": pattern.replace("{name}", "hero"), "StartIndex": 3, "EndIndex": 26}])]
    (bin_,) = pool.GetRootFolder().GetSubFolderList()
    assert bin_.GetName() == media.BIN
    clips = bin_.GetSubFolderList()[0].GetClipList()
    assert [c.GetName() for c in clips] == ["shot010_car.[0003-0026].exr", "shot010_hero.[0003-0026].exr"]
    assert clips[0].GetClipProperty("Start TC") == "01:00:00:03"  # the source frame's timecode
    assert pool.GetCurrentFolder() is pool.GetRootFolder()  # the colorist's bin is restored
    storage = resolve.GetMediaStorage()
    assert [(m is item.GetMediaPoolItem(), p) for m, p in storage.clip_mattes] == [
        (True, [pattern.replace("{name}", "car") % 3]), (True, [pattern.replace("{name}", "hero") % 3])]
    loader = item.GetFusionCompByIndex(1).FindTool("samroto_hero_matte")
    assert loader.GetInput("Clip") == pattern.replace("{name}", "hero") % 3 and loader.GetInput("GlobalIn") == 3
    # tracking again replaces the earlier import instead of piling up copies
    headless.track(resolve, "forward", out=lambda s: None, poll=0.01, connect=FakeBridge, handles=2)
    assert len(bin_.GetSubFolderList()[0].GetClipList()) == 2
    assert len(pool.GetClipMatteList(item.GetMediaPoolItem())) == 2


def test_window_tracks_with_progress_and_cancel(tmp_path):
    resolve, item = scene.build(tmp_path / "shot010.mp4", frames=40, left=5, duration=20)
    _two_objects(prompts.clip_comp(item))
    texts, enabled = {}, {}
    bridge = FakeBridge(hold_after=3)   # the colorist presses Cancel after the third frame
    ctl = ui.Controller(resolve, texts.__setitem__, enabled.__setitem__, connect=lambda: bridge)
    ctl.refresh(handles=0)
    assert "Object car: prompts on frames 10, 14" in texts["Info"]
    ctl.track("forward", handles=0)
    assert enabled["Forward"] is False and enabled["Cancel"] is True
    while ctl.job.done < 3:
        ctl.tick()
    # forward from the first prompted frame (8) to the last of 5-24: the bridge counts 17
    assert "3/17 frames" in texts["Progress"]
    ctl.cancel()
    while ctl.tick():
        pass
    assert ctl.job_done.state == "cancelled" and bridge.frames == [8, 9, 10]
    assert "Cancelled after 3 frames" in texts["Status"]
    assert "Imported 2 matte(s)" in texts["Status"] and enabled["Forward"] is True


def test_window_without_uimanager_points_to_the_scripts(capsys):
    assert ui.show(object(), None, None) is None
    assert "Track Forward" in capsys.readouterr().out


def test_bridge_errors_reach_the_window(tmp_path):
    resolve, item = scene.build(tmp_path / "shot010.mp4", frames=40, left=5, duration=20)
    _two_objects(prompts.clip_comp(item))
    texts, enabled = {}, {}

    def unreachable():
        raise hostkit.HostError("Cannot reach the bridge")

    ctl = ui.Controller(resolve, texts.__setitem__, enabled.__setitem__, connect=unreachable)
    ctl.track("both", handles=0)
    while ctl.tick():
        pass
    assert (ctl.job_done.state, texts["Status"]) == ("error", "Cannot reach the bridge")
    assert enabled["Forward"] is True and enabled["Cancel"] is False
    assert not os.path.isdir(tmp_path / "samroto_mattes")   # nothing written, nothing imported


# --- issue 17: retimed clips, Loader inputs, bin clean-up, Start TC ---------------------------

def test_retimed_clip_uses_its_source_frames(tmp_path):
    """Defect 3: on a clip at 200 %, GetLeftOffset is the source offset / 2 (timeline frames):
    the in-point comes from GetSourceStartFrame/GetSourceEndFrame (source frames 10-29 here,
    10 timeline frames), and handles extend that."""
    resolve, item = scene.build(tmp_path / "shot010.mp4", frames=60, left=10, duration=20, speed=2.0)
    assert (item.GetLeftOffset(), item.GetDuration()) == (5, 10)  # what Resolve reports
    info = cliplib.ClipInfo(item)
    assert info.used_range == (10, 29) and info.speed == 2.0 and info.retimed
    assert info.track_range(2) == (8, 31)
    # slow motion: 50 % plays 10 source frames over 20 timeline frames
    resolve, item = scene.build(tmp_path / "shot010.mp4", frames=60, left=10, duration=10, speed=0.5)
    assert cliplib.ClipInfo(item).used_range == (10, 19)
    # a Resolve without the source-frame calls: the left offset as it is (docs say so)
    resolve, item = scene.build(tmp_path / "shot010.mp4", frames=60, left=10, duration=20, has_source_frames=False)
    assert cliplib.ClipInfo(item).used_range == (10, 29)


def test_retimed_clip_prompts_map_to_source_frames(tmp_path):
    """Defect 3: prompts on a retimed clip land on source frames, also where the comp's global
    range is not the whole source (the render range then maps at the clip's speed)."""
    from fake_resolve.fusion import Composition

    resolve, item = scene.build(tmp_path / "shot010.mp4", frames=60, left=10, duration=20, speed=2.0)
    info = cliplib.ClipInfo(item)
    comp = Composition(global_range=(0, 1000), render_range=(100, 109))  # 10 timeline frames
    clock = prompts.CompTime(comp, info)
    assert [clock.to_frame(t) for t in (100, 101, 109)] == [10, 12, 28]
    assert clock.to_time(12) == 101


def test_loader_inputs_are_set_outside_lock(tmp_path):
    """Defect 4: Loader inputs set inside comp.Lock() read back but do not render; the Loader
    is added inside Lock (no file dialog) and its inputs set after Unlock."""
    resolve, item = scene.build(tmp_path / "shot010.mp4", frames=40, left=5, duration=20)
    _two_objects(prompts.clip_comp(item))
    done, plan, _ = headless.track(resolve, "both", out=lambda s: None, poll=0.01,
                                   connect=FakeBridge, handles=2, add_loader=True)
    loader = item.GetFusionCompByIndex(1).FindTool("samroto_hero_matte")
    first = plan.pattern.replace("{name}", "hero") % 3
    assert loader.GetInput("Clip") == first
    assert (loader.rendered("Clip"), loader.rendered("GlobalIn"), loader.rendered("GlobalOut")) == (first, 3, 26)
    assert item.GetFusionCompByIndex(1).locked == 0


def test_bin_cleanup_takes_only_the_same_sequence(tmp_path):
    """Defect 4: re-importing obj1's matte replaces obj1's clip and leaves obj10's alone (the
    old clean-up deleted every clip whose name started like obj1's)."""
    resolve, item = scene.build(tmp_path / "shot010.mp4", frames=40, left=5, duration=20)
    info = cliplib.ClipInfo(item)
    project = resolve.GetProjectManager().GetCurrentProject()
    pattern = str(tmp_path / "m" / "shot010_{name}.%04d.exr")
    os.makedirs(tmp_path / "m")
    for name in ("obj1", "obj10"):
        for f in range(5, 25):
            open(pattern.replace("{name}", name) % f, "wb").close()
    both = {n: pattern.replace("{name}", n) for n in ("obj1", "obj10")}
    media.import_mattes(resolve, project, info, both, (5, 24), attach_clip_matte=False)
    media.import_mattes(resolve, project, info, {"obj1": both["obj1"]}, (5, 24), attach_clip_matte=False)
    folder = media.ensure_bin(project.GetMediaPool(), [media.BIN, "shot010"])
    assert sorted(c.GetName() for c in folder.GetClipList()) == ["shot010_obj1.[0005-0024].exr",
                                                                  "shot010_obj10.[0005-0024].exr"]


def test_refused_start_tc_is_reported(tmp_path):
    """Defect 4: SetClipProperty's result is checked: where Resolve keeps a clip's Start TC
    read-only, the colorist is told, instead of a matte silently out of sync."""
    resolve, item = scene.build(tmp_path / "shot010.mp4", frames=40, left=5, duration=20, read_only={"Start TC"})
    _two_objects(prompts.clip_comp(item))
    lines = []
    done, plan, imported = headless.track(resolve, "both", out=lines.append, poll=0.01,
                                          connect=FakeBridge, handles=2)
    assert sorted(imported) == ["car", "hero"]
    refused = [line for line in lines if "refused the Start TC 01:00:00:03" in line]
    assert len(refused) == 2 and "source frame 3" in refused[0]


# --- issue 17, defect 2: the Lua scripts (free Resolve 21.1+) ---------------------------------

LUA_SCENE = """
local fake = dofile(%(fake)r)
return fake.build({name = "shot010.mp4", left = 5, duration = 20, right = 15, speed = %(speed)s, current_time = 12,
  finish = %(finish)s,
  props = {["Clip Name"] = "shot010.mp4", ["File Path"] = %(path)r, FPS = "24", ["Start TC"] = "01:00:00:00",
           Start = "0", End = "39", Frames = "40", Resolution = "256x128", ["Input Color Space"] = "Rec.709 Gamma 2.4"},
  tools = {
    {name = "samroto_hero_box", regid = "RectangleMask", values = {Center = {0.5, 0.5}, Width = 0.25, Height = 0.125},
     keys = {Center = {[8] = {0.5, 0.5}, [14] = {0.6, 0.5}}}},
    {name = "samroto_hero_pos", regid = "EllipseMask", values = {Center = {0.5, 0.5}, Width = 0.01, Height = 0.01}},
    {name = "samroto_car_neg", regid = "EllipseMask", values = {Center = {0.1, 0.1}, Width = 0.01, Height = 0.01},
     keys = {Center = {[10] = {0.1, 0.1}}}, paths = {Center = "XYPath"}},
    {name = "samroto_car_pos2", regid = "EllipseMask", off = true, values = {Center = {0.3, 0.3}, Width = 0.01, Height = 0.01}},
    {name = "Ellipse1", regid = "EllipseMask", values = {Center = {0.3, 0.3}, Width = 0.01, Height = 0.01}},
    {name = "samroto_car_mask", regid = "Loader", values = {Clip = "/m/car_roto.png", GlobalIn = 14, GlobalOut = 14}},
  }})
"""


def lua_runtime():
    lupa = pytest.importorskip("lupa.lua51", reason="lupa (Lua 5.1, as Resolve's LuaJIT) is a test dependency")
    return lupa.LuaRuntime(unpack_returned_tuples=True)


def lua_scene(lua, tmp_path, speed=1, finish="nil"):
    return lua.execute(LUA_SCENE % {"fake": str(ROOT / "tests" / "fake_resolve" / "fake_resolve.lua"),
                                    "path": str(tmp_path / "shot010.mp4"), "speed": speed, "finish": finish})


def _python_scene(tmp_path, speed=1.0):
    """The same scene in the Python fake."""
    resolve, item = scene.build(tmp_path / "shot010.mp4", frames=40, left=5, duration=20, speed=speed)
    comp = prompts.clip_comp(item)
    box = comp.AddTool("RectangleMask"); box.SetAttrs({"TOOLS_Name": "samroto_hero_box"})
    box.SetInput("Width", 0.25); box.SetInput("Height", 0.125)
    animate(comp, box, "Center", {8: {1: 0.5, 2: 0.5}, 14: {1: 0.6, 2: 0.5}})
    pos = comp.AddTool("EllipseMask"); pos.SetAttrs({"TOOLS_Name": "samroto_hero_pos"})
    pos.SetInput("Center", {1: 0.5, 2: 0.5})
    neg = comp.AddTool("EllipseMask"); neg.SetAttrs({"TOOLS_Name": "samroto_car_neg"})
    animate(comp, neg, "Center", {10: {1: 0.1, 2: 0.1}}, modifier="XYPath")
    mask = comp.AddTool("Loader"); mask.SetAttrs({"TOOLS_Name": "samroto_car_mask"})  # a mask prompt (issue 18)
    mask.SetInput("Clip", "/m/car_roto.png"); mask.SetInput("GlobalIn", 14.0); mask.SetInput("GlobalOut", 14.0)
    comp.CurrentTime = 12.0
    return resolve


@pytest.mark.parametrize("speed", [1, 2])
def test_lua_snapshot_plans_what_the_python_scripts_plan(tmp_path, speed):
    """Defect 2: the Lua scripts read the clip and the comp with the same calls; replayed in
    samroto's Python, the snapshot makes the plan the Python scripts make (range, handles,
    prompts, matte files), retimed clips included."""
    import json

    from samroto_resolve import replay

    lua = lua_runtime()
    samroto = lua.execute("return dofile(%r)" % str(ROOT / "plugins" / "resolve" / "lua" / "samroto.lua"))
    resolve_lua = lua_scene(lua, tmp_path, speed)
    snapshot = json.loads(samroto.json(samroto.snapshot(resolve_lua, "both", lua.table(handles=2))))
    from_lua = workflow.Plan(replay.Snapshot(snapshot), "both", handles=2)
    from_python = workflow.Plan(_python_scene(tmp_path, float(speed)), "both", handles=2)
    assert from_lua.range == from_python.range == (3, 26)
    assert from_lua.prompts == from_python.prompts and len(from_lua.prompts["objects"]) == 2
    car = next(o for o in from_lua.prompts["objects"] if o["name"] == "car")
    assert [p for p in car["prompts"] if "mask" in p] == [  # the mask Loader, through Lua too
        {"frame": from_python.clock.to_frame(14), "mask": "/m/car_roto.png"}]
    assert from_lua.pattern == from_python.pattern and from_lua.clip.speed == speed
    assert replay.lua_literal({"a": [1, "x\"y\\z é"], "b": None}) == '{["a"] = {1, "x\\034y\\092z \\195\\169"}, ["b"] = nil}'
    assert lua.execute("return " + replay.lua_literal({"a": [1, 'x"y\\z é']}))["a"][2] == 'x"y\\z é'


# --- issue 18, item 7: review ------------------------------------------------------------------

def _mattes(pattern, frames, lost, bit_depth=16, compression="zip"):
    """Matte sequences as the bridge writes them (samroto's MatteWriter, one EXR per object
    and frame): a box that is there, and empty on ``lost`` {name: frames}."""
    import numpy as np

    from samroto.core.io.mattes import MatteWriter

    writer = MatteWriter(pattern, format="exr", layout="files", bit_depth=bit_depth, compression=compression,
                         make_dirs=True)
    for f in frames:
        values = {}
        for name in ("car", "hero"):
            alpha = np.zeros((128, 256), np.float32)
            if f not in lost.get(name, ()):
                alpha[40:60, 10 + f:30 + f] = 1.0
                alpha[0, 0] = 0.3  # something below 0.5 everywhere: not the object
            else:
                alpha[70, 70] = 0.49  # a faint ghost is still "lost"
            values[name] = alpha
        writer.write(f, values)
    writer.close()


@pytest.mark.parametrize("bit_depth,compression", [(16, "zip"), (32, "zips"), (16, "none")])
def test_review_steps_and_jumps_to_lost_frames(tmp_path, bit_depth, compression):
    """Review reads what the track left (the matte sequences) in Resolve's Python: a frame
    where an object's matte is empty is where SAM 2's object score said it was lost.
    Next/previous tracked frame and next lost frame move the comp's playhead (and the
    timeline's, inside the used range) with the matte Loaders on the clip."""
    from samroto_resolve import review

    resolve, item = scene.build(tmp_path / "shot010.mp4", frames=40, left=5, duration=20)
    _two_objects(prompts.clip_comp(item))
    plan = workflow.Plan(resolve, "both", handles=2)
    _mattes(plan.pattern, range(3, 27), {"car": [9, 10, 11, 20], "hero": [25]}, bit_depth, compression)
    lines = []
    found = headless.review(resolve, out=lines.append, handles=2)
    assert lines == ["samroto: car: tracked 3-26; lost on 9-11, 20",
                     "samroto: hero: tracked 3-26; lost on 25"]
    comp = item.GetFusionCompByIndex(1)
    timeline = resolve.GetProjectManager().GetCurrentProject().GetCurrentTimeline()
    comp.CurrentTime = 12.0
    assert headless.next_lost(resolve, out=lines.append) == (20, ["car"])
    assert comp.CurrentTime == 20 and timeline.GetCurrentTimecode() == "01:00:00:15"  # 86400 + 20 - 5
    assert headless.next_lost(resolve, out=lines.append) == (25, ["hero"])
    assert timeline.GetCurrentTimecode() == "01:00:00:15"  # 25 is a handle: not on the timeline
    assert headless.next_lost(resolve, out=lines.append) == (9, ["car"])  # from the start again
    assert lines[-1] == "samroto: frame 9: car lost (empty matte)"
    assert headless.step(resolve, 1, out=lines.append) == 10 and headless.step(resolve, -1) == 9
    comp.CurrentTime = 30.0
    assert headless.step(resolve, 1) == 26 and headless.step(resolve, -1) == 25
    loader = comp.FindTool("samroto_hero_matte")
    assert loader.rendered("Clip") == plan.pattern.replace("{name}", "hero") % 3 and loader.GetInput("GlobalIn") == 3
    # the window: same, with the files read once while it is open
    texts = {}
    ctl = ui.Controller(resolve, texts.__setitem__, lambda *a: None)
    comp.CurrentTime = 0.0
    ctl.next_lost()
    assert texts["Status"].startswith("Frame 9: car lost\ncar: tracked 3-26; lost on 9-11, 20")
    assert len(ctl.seen) == 48
    assert review.matte_present(plan.pattern.replace("{name}", "car") % 12) is True


def test_review_says_when_it_cannot_tell(tmp_path):
    from samroto_resolve import review

    resolve, item = scene.build(tmp_path / "shot010.mp4", frames=40, left=5, duration=20)
    _two_objects(prompts.clip_comp(item))
    plan = workflow.Plan(resolve, "both", handles=2)
    with pytest.raises(hostkit.HostError, match="Nothing tracked on shot010.mp4 yet"):
        headless.step(resolve, 1)
    _mattes(plan.pattern, range(5, 8), {}, compression="piz")
    assert review.Review(plan).report()[0] == "car: tracked 5-7; lost on no frame (cannot read the mattes of 5-7)"
    with pytest.raises(review.MatteReadError, match="no, ZIPS or ZIP"):
        review.matte_present(plan.pattern.replace("{name}", "car") % 5)


# --- issue 18, item 5: Finish ------------------------------------------------------------------

def test_finish_values_live_with_the_clip_and_finish_the_track(tmp_path):
    """The window's Finish values (Resolve's names, plate pixels) are saved in the clip's
    comp (persistent comp data) and sent with every Track; out-of-range values are refused
    with the control's name and range; the Lua scripts read the same values."""
    import json

    from samroto_resolve import finishing, replay

    resolve, item = scene.build(tmp_path / "shot010.mp4", frames=40, left=5, duration=20)
    comp = prompts.clip_comp(item)
    _two_objects(comp)
    texts = {}
    ctl = ui.Controller(resolve, texts.__setitem__, lambda *a: None, connect=FakeBridge)
    ctl.preview = lambda: "previewed"  # the real preview is tested in test_resolve_live.py
    ctl.apply_finish({"grow": 2.0, "feather": 1.5, "refine": False, "temporal_strength": 0.5})
    assert texts["Status"] == ("Finish: Smart Refine off, Consistency 0.5, Shrink/Grow (px) 2, Blur Radius (px) 1.5\n"
                               "previewed")
    assert comp.GetData("samroto.finish") == {"grow": 2.0, "feather": 1.5, "refine": False, "temporal_strength": 0.5}
    ctl.apply_finish({"temporal_strength": 2})
    assert texts["Status"] == "Consistency must be between 0 and 0.95, not 2."
    assert comp.GetData("samroto.finish")["grow"] == 2.0  # nothing lost
    with pytest.raises(finishing.FinishError, match="no finishing control 'blur'"):
        finishing.check({"blur": 1})
    bridge = FakeBridge()
    done, plan, _ = headless.track(resolve, "both", out=lambda s: None, poll=0.01, connect=lambda: bridge, handles=2)
    assert bridge.calls[0]["mattes"]["finish"] == {"grow": 2.0, "feather": 1.5, "refine": False,
                                                    "temporal_strength": 0.5}
    assert "Finish: Smart Refine off" in plan.summary()
    ctl.apply_finish(None)  # back to the bridge's settings
    assert comp.GetData("samroto.finish") is None and "finish" not in workflow.Plan(resolve).mattes()
    # the Lua snapshot carries them
    lua = lua_runtime()
    samroto = lua.execute("return dofile(%r)" % str(ROOT / "plugins" / "resolve" / "lua" / "samroto.lua"))
    resolve_lua = lua_scene(lua, tmp_path, 1, finish="{grow = -3, refine = false}")
    snapshot = json.loads(samroto.json(samroto.snapshot(resolve_lua, "both", lua.table(handles=2))))
    assert workflow.Plan(replay.Snapshot(snapshot), "both").mattes()["finish"] == {"grow": -3.0, "refine": False}
