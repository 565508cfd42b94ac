"""The Resolve plugin's tracking against a REAL `samroto serve` on the micro fixture
checkpoint (tests/data/sam2_parity), driven through the FAKE Resolve/Fusion: prompts on two
frames for two objects, progress, matte files with the clip's frame numbers, cancel. The
mattes are `samroto track`'s on the same shot, bit for bit (tests/plugin_parity.py): both
ways and forward, over the clip's used range plus handles (a sub-range of the movie)."""

import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "plugins" / "resolve"))

import plugin_parity  # noqa: E402
from fake_resolve import scene  # noqa: E402
from fake_resolve.fusion import animate  # noqa: E402
from samroto_resolve import headless, prompts  # noqa: E402
from samroto_resolve.kit import hostkit  # noqa: E402


@pytest.fixture(scope="module")
def bridge(tmp_path_factory):
    with plugin_parity.running_bridge(tmp_path_factory.mktemp("config")) as config:
        yield config


def _clip(tmp_path):
    from test_io_support import write_clip
    path = write_clip(tmp_path / "shot010.mp4", "h264", frames=12)
    resolve, item = scene.build(path, frames=12, left=2, duration=6, width=256, height=128)
    comp = prompts.clip_comp(item)
    box = comp.AddTool("RectangleMask"); box.SetAttrs({"TOOLS_Name": "samroto_hero_box"})
    animate(comp, box, "Center", {3: {1: 0.25, 2: 0.5}, 5: {1: 0.3, 2: 0.5}})
    box.SetInput("Width", 0.2); box.SetInput("Height", 0.2)
    pos = comp.AddTool("EllipseMask"); pos.SetAttrs({"TOOLS_Name": "samroto_car_pos"})
    animate(comp, pos, "Center", {3: {1: 0.75, 2: 0.5}, 5: {1: 0.7, 2: 0.5}}, modifier="XYPath")
    return resolve, item


def same_as_cli(job, plan, tmp_path):
    """The job's mattes against `samroto track` on the plan's shot (the clip's file, the
    prompts read from the comp, its direction and frames, the clip's colour)."""
    names = {o["id"]: o["name"] for o in plan.prompts["objects"]}
    shot = plan.shot()
    return plugin_parity.assert_same_as_cli(tmp_path / "cli", {names[i]: p for i, p in job.patterns.items()},
                                            job.frames, shot.source, shot.prompts, shot.direction, shot.first,
                                            shot.last, shot.color)


@pytest.mark.parametrize("direction", ["both", "forward"])
def test_track_writes_and_imports_the_cli_mattes(bridge, tmp_path, direction):
    resolve, item = _clip(tmp_path)
    lines = []
    done, plan, imported = headless.track(resolve, direction, out=lines.append, poll=0.05, handles=1,
                                          config_dir=bridge, python=sys.executable)
    assert done.state == "done", done.summary()
    assert plan.range == (1, 8) and plan.prompt_frames == [3, 5]
    assert sorted(done.frames) == (list(range(1, 9)) if direction == "both" else list(range(3, 9)))
    for name in ("car", "hero"):
        for f in done.frames:
            assert os.path.isfile(plan.pattern.replace("{name}", name) % f)
    assert sorted(imported) == ["car", "hero"]
    assert any("%" in line for line in lines)  # progress was reported
    # the used range plus handles of the movie = `samroto track --range 1-8`, bit for bit
    covered = same_as_cli(done, plan, tmp_path)
    assert covered["car"] and covered["hero"]
    # Review (issue 18, item 7) reads the bridge's own mattes in the stdlib: it agrees with
    # OpenImageIO on which frames hold each object
    from samroto_resolve.review import Review

    found = Review(plan)
    assert found.tracked == sorted(done.frames)
    for name in ("car", "hero"):
        for f in done.frames:
            pixels, _ = plugin_parity.read_exr(found.patterns[name] % f)
            assert found.present(name, f) is bool(pixels.max() >= 0.5), (name, f)


def test_cancel_stops_and_keeps_finished_mattes(bridge, tmp_path):
    resolve, item = _clip(tmp_path)
    from samroto_resolve import workflow
    plan = workflow.Plan(resolve, "forward", handles=1, config_dir=bridge, python=sys.executable)
    j = plan.job().start()
    while j.running and not j.frames:
        j.poll(); time.sleep(0.01)
    j.cancel()
    j.wait(60)
    assert j.state in ("cancelled", "done")
    for f in j.frames:
        assert os.path.isfile(plan.pattern.replace("{name}", "hero") % f)


def _trimmed(tmp_path, name, speed=1.0):
    """A 24-frame movie (each frame different) whose timeline item plays source frames 6-13
    (at ``speed``); a box keyed on comp times 8 and 10 (= source frames 8 and 10: the comp's
    global range is the whole source) and an include point keyed on 9."""
    from test_io_support import write_clip
    path = write_clip(tmp_path / name, "h264", frames=24)
    resolve, item = scene.build(path, frames=24, left=6, duration=8, width=256, height=128, speed=speed, name=name)
    comp = prompts.clip_comp(item)
    box = comp.AddTool("RectangleMask"); box.SetAttrs({"TOOLS_Name": "samroto_hero_box"})
    animate(comp, box, "Center", {8: {1: 0.25, 2: 0.5}, 10: {1: 0.3, 2: 0.5}})
    box.SetInput("Width", 0.25); box.SetInput("Height", 0.25)
    pos = comp.AddTool("EllipseMask"); pos.SetAttrs({"TOOLS_Name": "samroto_hero_pos"})
    animate(comp, pos, "Center", {9: {1: 0.75, 2: 0.5}})
    return resolve, item, path


def _expected_prompts():
    """The prompts, worked out by hand: source frames, pixels from the top-left."""
    return hostkit.prompts_document([{"id": 1, "name": "hero", "points": [(9, 192.0, 64.0, True)],
                                      "boxes": [(8, 32.0, 32.0, 96.0, 96.0), (10, 44.8, 32.0, 108.8, 96.0)]}])


@pytest.mark.parametrize("speed", [1.0, 2.0])
def test_trimmed_and_retimed_movie_clips_track_their_source_frames(bridge, tmp_path, speed):
    """Defects 1 and 3: a movie clip trimmed in Resolve to source frames 6-13, with 2 handles,
    is `samroto track movie --range 4-15` with the prompts on the source frames the comp shows,
    bit for bit (the range and prompts are worked out here, not taken from the plugin);
    retimed to 200 % (4 timeline frames, GetLeftOffset 3) it is the same shot."""
    resolve, item, movie = _trimmed(tmp_path, "trim%d.mp4" % speed, speed)
    done, plan, _ = headless.track(resolve, "both", out=lambda s: None, poll=0.05, handles=2,
                                   config_dir=bridge, python=sys.executable)
    assert done.state == "done", done.summary()
    assert plan.range == (4, 15) and sorted(done.frames) == list(range(4, 16))
    assert plan.prompts == _expected_prompts()
    names = {o["id"]: o["name"] for o in plan.prompts["objects"]}
    covered = plugin_parity.assert_same_as_cli(tmp_path / "cli", {names[i]: p for i, p in done.patterns.items()},
                                               done.frames, str(movie), _expected_prompts(), "both", 4, 15, "srgb")
    assert covered["hero"]


def test_lua_scripts_track_and_import(bridge, tmp_path):
    """Defect 2: free Resolve 21.1+ runs Lua scripts only. The installed Lua entries load;
    samroto.lua (from the installed support folder, in Lua 5.1 like Resolve's LuaJIT) reads
    the trimmed clip, tracks it through samroto's Python on the bridge, and imports the
    mattes, which are `samroto track --range 4-15`'s, bit for bit."""
    lupa = pytest.importorskip("lupa.lua51", reason="lupa (Lua 5.1) is a test dependency")
    from samroto.plugins.resolve import install
    from test_io_support import write_clip

    target = tmp_path / "Fusion"
    install.install(target, python=sys.executable)
    support = target / "samroto"
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    entries = sorted(p.name for p in (target / install.LUA_SCRIPTS_DIR).iterdir())
    assert entries == ["Next Lost Frame.lua", "Next Tracked Frame.lua", "Preview Frame.lua", "Previous Tracked Frame.lua",
                       "Review Track.lua", "Show Masks.lua", "Track Backward.lua", "Track Both.lua",
                       "Track Forward.lua", "Use Candidate 1.lua", "Use Candidate 2.lua", "Use Candidate 3.lua",
                       "Use Masks Under Points.lua"]
    for name in entries:
        lua.execute("assert(loadfile(%r))" % str(target / install.LUA_SCRIPTS_DIR / name))
    movie = write_clip(tmp_path / "trim.mp4", "h264", frames=24)
    resolve = lua.execute("""
local fake = dofile(%r)
return fake.build({name = "trim.mp4", left = 6, duration = 8, right = 10, current_time = 6,
  props = {["Clip Name"] = "trim.mp4", ["File Path"] = %r, FPS = "24", ["Start TC"] = "01:00:00:00", Start = "0",
           End = "23", Frames = "24", Resolution = "256x128", ["Input Color Space"] = "Rec.709 Gamma 2.4"},
  tools = {
    {name = "samroto_hero_box", regid = "RectangleMask", values = {Center = {0.25, 0.5}, Width = 0.25, Height = 0.25},
     keys = {Center = {[8] = {0.25, 0.5}, [10] = {0.3, 0.5}}}},
    {name = "samroto_hero_pos", regid = "EllipseMask", values = {Center = {0.75, 0.5}, Width = 0.01, Height = 0.01},
     keys = {Center = {[9] = {0.75, 0.5}}}}}})
""" % (str(ROOT / "tests" / "fake_resolve" / "fake_resolve.lua"), str(movie)))
    samroto = lua.execute("return dofile(%r)" % str(support / "samroto.lua"))
    lines = []
    opts = lua.table(support=str(support), python=sys.executable, out=lines.append,
                     settings=lua.table(handles=2, config_dir=bridge))
    result = samroto.track(resolve, "both", opts)
    assert result is not None and result.ok, "\n".join(lines)
    assert any("%" in line for line in lines)  # progress reached the Console
    (imp,) = list(result.imports.values())
    assert (imp.first, imp.last, imp.tc) == (4, 15, "01:00:00:04")
    imported = [dict(i) for i in resolve.pool.imports.values()]
    assert imported == [{"bin": "trim", "pattern": imp.pattern, "first": 4, "last": 15}]
    assert list(resolve.item.media.mattes.values()) == [imp.first_file]
    covered = plugin_parity.assert_same_as_cli(tmp_path / "cli", {"hero": imp.pattern}, list(range(4, 16)), str(movie),
                                               _expected_prompts(), "both", 4, 15, "srgb")
    assert covered["hero"]
    # tracking again replaces the import instead of piling up copies
    samroto.track(resolve, "forward", lua.table(support=str(support), python=sys.executable, out=lines.append,
                                                settings=lua.table(handles=2, config_dir=bridge)))
    folder = resolve.pool.root.subs[1].subs[1]
    assert len(list(folder.clips.values())) == 1


def _sequence(tmp_path, last, **build):
    """The bridge plate (112x80, numbered from 1001) as an image sequence 1001..``last`` on a
    timeline; returns (resolve, item, its printf pattern)."""
    import shutil

    from live_bridge import PLATE

    media = tmp_path / "media"
    media.mkdir()
    for f in range(1001, last + 1):
        shutil.copy(PLATE / ("plate.%d.png" % f), media / ("plate.%d.png" % f))
    frames = last - 1000
    build = dict(dict(left=0, duration=frames, name="plate.png"), **build)
    resolve, item = scene.build(media / ("plate.[1001-%d].png" % last), frames=frames, width=112, height=80,
                                first=1001, **build)
    return resolve, item, str(media / "plate.%04d.png")


def test_1001_sequence_tracks_its_own_numbers(bridge, tmp_path):
    """An image sequence numbered from 1001 (plate.[1001-1008].png), trimmed on the timeline
    to 1003-1006, 1 handle: `samroto track plate.%04d.png --range 1002-1007` with the prompts
    on the frames the comp shows (comp time t = frame 1001 + t), mattes numbered 1002-1007,
    bit for bit."""
    resolve, item, sequence = _sequence(tmp_path, 1008, left=2, duration=4, name="plate.[1001-1008].png")
    comp = prompts.clip_comp(item)
    box = comp.AddTool("RectangleMask"); box.SetAttrs({"TOOLS_Name": "samroto_hero_box"})
    animate(comp, box, "Center", {2: {1: 0.5, 2: 0.5}, 4: {1: 0.625, 2: 0.5}})
    box.SetInput("Width", 0.5); box.SetInput("Height", 0.5)
    pos = comp.AddTool("EllipseMask"); pos.SetAttrs({"TOOLS_Name": "samroto_car_pos"})
    animate(comp, pos, "Center", {3: {1: 0.25, 2: 0.75}})
    done, plan, imported = headless.track(resolve, "both", out=lambda s: None, poll=0.05, handles=1,
                                          config_dir=bridge, python=sys.executable)
    assert done.state == "done", done.summary()
    assert plan.range == (1002, 1007) and sorted(done.frames) == list(range(1002, 1008))
    expected = hostkit.prompts_document([
        {"id": 1, "name": "car", "points": [(1004, 28.0, 20.0, True)]},
        {"id": 2, "name": "hero", "boxes": [(1003, 28.0, 12.0, 84.0, 68.0), (1005, 42.0, 12.0, 98.0, 68.0)]}])
    assert plan.prompts == expected
    pool = resolve.GetProjectManager().GetCurrentProject().GetMediaPool()
    assert [i[1][0]["StartIndex"] for i in pool.imports] == [1002, 1002]
    names = {o["id"]: o["name"] for o in plan.prompts["objects"]}
    covered = plugin_parity.assert_same_as_cli(tmp_path / "cli", {names[i]: p for i, p in done.patterns.items()},
                                               done.frames, sequence, expected, "both", 1002, 1007, "srgb")
    assert covered["hero"] and covered["car"]


def test_proxy_and_a_timeline_of_another_size_track_the_original(bridge, tmp_path):
    """A 256x128 movie with a half-size proxy linked, on a 128x64 timeline: Resolve plays the
    proxy and fits the clip to the timeline after Fusion, but the Fusion comp is the
    source's size and prompts are normalised, so samroto tracks the original at 256x128:
    `samroto track` on the original with the prompts in its pixels, bit for bit. With the
    original offline the colorist is told to relink it (the proxy is not tracked)."""
    from test_io_support import write_clip

    resolve, item, movie = _trimmed(tmp_path, "orig.mp4")
    proxy = write_clip(tmp_path / "orig_proxy.mp4", "h264", frames=24, width=128, height=64)
    timeline = resolve.GetProjectManager().GetCurrentProject().GetCurrentTimeline()
    timeline._settings.update(timelineResolutionWidth="128", timelineResolutionHeight="64")
    assert item.GetMediaPoolItem().LinkProxyMedia(str(proxy))
    done, plan, _ = headless.track(resolve, "both", out=lambda s: None, poll=0.05, handles=2,
                                   config_dir=bridge, python=sys.executable)
    assert done.state == "done", done.summary()
    assert plan.shot().source == str(movie) and "Proxy linked" in plan.summary()
    assert plan.prompts == _expected_prompts()
    pixels, _ = plugin_parity.read_exr(plan.pattern.replace("{name}", "hero") % 8)
    assert pixels.shape[:2] == (128, 256)
    names = {o["id"]: o["name"] for o in plan.prompts["objects"]}
    covered = plugin_parity.assert_same_as_cli(tmp_path / "cli", {names[i]: p for i, p in done.patterns.items()},
                                               done.frames, str(movie), _expected_prompts(), "both", 4, 15, "srgb")
    assert covered["hero"]
    os.rename(movie, str(movie) + ".offline")
    from samroto_resolve.clip import ClipError

    with pytest.raises(ClipError, match="original media is offline.*relink"):
        headless.track(resolve, "both", out=lambda s: None, handles=2, config_dir=bridge, python=sys.executable)


def test_finish_is_previewed_on_the_frame_and_finishes_the_track(bridge, tmp_path):
    """Finish (issue 18, item 5), on `samroto serve` (which finishes mattes): Apply finish
    saves the values with the clip and previews the current frame finished with them; a
    Track then writes that matte on the prompted frame (the preview is its 8-bit copy) and
    finishes the shot with the same values."""
    import numpy as np

    from live_bridge import HERO
    from samroto_resolve import ui
    from samroto_resolve.live import Live

    resolve, item, _ = _sequence(tmp_path, 1004)
    comp = prompts.clip_comp(item)
    pos = comp.AddTool("EllipseMask"); pos.SetAttrs({"TOOLS_Name": "samroto_hero_pos"})
    pos.SetInput("Center", {1: HERO[0] / 112, 2: 1 - HERO[1] / 80})
    comp.CurrentTime = 0.0

    def connect():
        return hostkit.client.Client.connect(config_dir=bridge)

    def alpha(path):
        pixels, _ = plugin_parity.read_exr(path)  # any file OpenImageIO reads, as float
        return pixels[..., 0]

    texts = {}
    ctl = ui.Controller(resolve, texts.__setitem__, lambda wid, on: None, connect=connect)
    ctl.live = Live(resolve, connect=connect, matte_root=str(tmp_path / "live"))
    ctl.preview()
    plain = alpha(ctl.live.previews["hero"].paths[1])
    ctl.apply_finish({"grow": -3.0, "feather": 2.0, "refine": False})
    assert texts["Status"].startswith("Finish: Smart Refine off, Shrink/Grow (px) -3, Blur Radius (px) 2\n"
                                      "hero, frame 1001: matte in"), texts["Status"]
    shrunk = alpha(ctl.live.previews["hero"].paths[1])
    assert (shrunk > 0.5).sum() < (plain > 0.5).sum() - 100 and ((shrunk > 0) & (shrunk < 1)).any()
    assert ctl.live.previews["hero"].encoder_runs == 1  # the same frame's features
    job, plan, _ = headless.track(resolve, "forward", out=lambda line: None, poll=0.02, handles=0,
                                  matte_root=str(tmp_path / "finished"), connect=connect)
    assert job.state == "done" and plan.mattes()["finish"] == {"grow": -3.0, "feather": 2.0, "refine": False}
    tracked = alpha(plan.pattern.replace("{name}", "hero") % 1001)
    assert np.abs(tracked - shrunk).max() <= 1 / 255 + 1e-3
    ctl.close()


def test_picked_automatic_masks_track_as_samroto_track_does(bridge, tmp_path):
    """Segment everything (issue 20) on `samroto serve`: Show Masks on frame 1002 of a 1001
    sequence, masks 1 and 2 picked (each a new object with that mask as its prompt there),
    Track both ways: `samroto track` with those mask files as prompts, bit for bit."""
    resolve, item, sequence = _sequence(tmp_path, 1006)
    comp = prompts.clip_comp(item)
    comp.CurrentTime = 1.0
    settings = dict(config_dir=bridge, python=sys.executable, matte_root=str(tmp_path / "mattes"),
                    automask={"points_per_side": 12, "pred_iou_thresh": 0.3, "stability_score_thresh": 0.4,
                              "mask_threshold": 12.0})
    found = headless.show_masks(resolve, out=lambda line: None, **settings)
    assert len(found) >= 2
    picked = headless.use_masks(resolve, [1, 2], out=lambda line: None, **settings)
    assert {n: m.index for n, m in picked.items()} == {"obj1": 1, "obj2": 2}
    done, plan, _ = headless.track(resolve, "both", out=lambda s: None, poll=0.05, handles=0, **settings)
    assert done.state == "done", done.summary()
    expected = hostkit.prompts_document([{"id": 1, "name": "obj1", "masks": [(1002, found[0].mask_path)]},
                                         {"id": 2, "name": "obj2", "masks": [(1002, found[1].mask_path)]}])
    assert plan.prompts == expected
    names = {o["id"]: o["name"] for o in plan.prompts["objects"]}
    covered = plugin_parity.assert_same_as_cli(tmp_path / "cli", {names[i]: p for i, p in done.patterns.items()},
                                               done.frames, sequence, expected, "both", 1001, 1006, "srgb")
    assert covered["obj1"] and covered["obj2"]
