"""The interactive loop in Resolve (issue 18), through the FAKE Resolve/Fusion against an
in-process bridge on the micro model (tests/live_bridge.py): Preview Frame gives the frame
under the playhead's matte at once (a Loader samroto_<object>_preview on that frame); a
second preview in the same window is served from cached features; Use Candidate 2 makes
that candidate the frame's mask prompt (a Loader samroto_<object>_mask), which Track then
follows; a matte from the host (a mask Loader) is a prompt propagated through the shot."""

import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "plugins" / "resolve"))

from fake_resolve import scene  # noqa: E402
from live_bridge import AMBIGUOUS, HERO, PLATE, in_process_bridge  # noqa: E402
from samroto_resolve import headless, prompts, ui  # noqa: E402
from samroto_resolve.kit import hostkit  # noqa: E402
from samroto_resolve.live import Live  # noqa: E402

W, H = 112, 80


@pytest.fixture(scope="module")
def bridge(tmp_path_factory):
    with in_process_bridge(tmp_path_factory.mktemp("cfg")) as config:
        yield config


def connect_to(config):
    return lambda: hostkit.client.Client.connect(config_dir=config)


@pytest.fixture
def shot(tmp_path):
    """The bridge plate as an image sequence on a timeline, with a comp and one include
    point (no keyframes: a prompt on the comp's current frame, 1001)."""
    media = tmp_path / "media"
    media.mkdir()
    for f in range(1001, 1009):
        shutil.copy(PLATE / ("plate.%d.png" % f), media / ("plate.%d.png" % f))
    resolve, item = scene.build(media / "plate.[1001-1008].png", frames=8, left=0, duration=8, width=W, height=H,
                                name="plate.png")
    comp = prompts.clip_comp(item)
    pos = comp.AddTool("EllipseMask")
    pos.SetAttrs({"TOOLS_Name": "samroto_hero_pos"})
    pos.SetInput("Center", {1: HERO[0] / W, 2: 1 - HERO[1] / H})
    comp.CurrentTime = 0.0
    return resolve, comp, pos, tmp_path / "mattes"


def read(path):
    from samroto.core.shot import read_mask

    return read_mask(path, W, H)


def iou(a, b):
    return (a & b).sum() / max(1, (a | b).sum())


def test_preview_cached_and_candidate_two_in_the_window(bridge, shot, tmp_path):
    resolve, comp, pos, mattes = shot
    status = {}
    ctl = ui.Controller(resolve, lambda wid, text: status.__setitem__(wid, text), lambda wid, on: None,
                        connect=connect_to(bridge))
    ctl.live = Live(resolve, connect=connect_to(bridge), matte_root=str(mattes))

    # Preview frame: the matte at once, shown by a Loader on that frame; no track
    ctl.preview()
    first = ctl.live.previews["hero"]
    assert first.frame == 1001 and first.encoded and first.encoder_runs == 1 and len(first.candidates) == 3
    loader = comp.FindTool("samroto_hero_preview")
    assert loader.rendered("Clip") == first.paths[1] and loader.GetInput("GlobalIn") == 0
    assert read(first.paths[1]).sum() > 50
    assert "image encoder ran" in status["Status"] and "candidate 1 (IoU" in status["Status"]
    assert not (mattes / "plate").exists() or not list((mattes / "plate").glob("*.exr"))  # nothing tracked

    # the point moved on the same frame: served from the cached features
    pos.SetInput("Center", {1: AMBIGUOUS[0] / W, 2: 1 - AMBIGUOUS[1] / H})
    ctl.preview()
    second = ctl.live.previews["hero"]
    assert not second.encoded and second.encoder_runs == 1 and "cached image features" in status["Status"]
    assert second.best == 0 and len(second.candidates) == 3

    # Candidate 2: the frame's mask prompt (a mask Loader), shown at once
    ctl.choose(2)
    chosen = ctl.live.previews["hero"]
    assert chosen.best == 1 and chosen.encoder_runs == 1, status["Status"]
    mask = comp.FindTool("samroto_hero_mask")
    assert mask.rendered("Clip") == chosen.mask and mask.GetInput("GlobalIn") == 0
    cand2 = read(second.candidates[1].path)
    assert np.array_equal(read(chosen.mask), cand2)
    assert iou(read(chosen.paths[1]), cand2) > 0.9
    document, frames = prompts.read_prompts(comp, ctl.live.clip)
    assert document["objects"][0]["prompts"] == [{"frame": 1001, "mask": chosen.mask}]

    # Track follows the choice; with the mask Loader switched off it follows the click's best
    job, plan, _ = headless.track(resolve, "forward", out=lambda line: None, poll=0.02, handles=0,
                                  matte_root=str(mattes), connect=connect_to(bridge))
    assert job.state == "done" and sorted(job.frames) == list(range(1001, 1009)), job.summary()
    with_choice = {f: exr_alpha(plan.pattern.replace("{name}", "hero") % f) for f in job.frames}
    mask.SetAttrs({"TOOLB_PassThrough": True})
    job, plan, _ = headless.track(resolve, "forward", out=lambda line: None, poll=0.02, handles=0,
                                  matte_root=str(tmp_path / "plain"), connect=connect_to(bridge))
    plain = {f: exr_alpha(plan.pattern.replace("{name}", "hero") % f) for f in job.frames}
    best = read(second.candidates[0].path)
    assert iou(with_choice[1001] > 0.5, cand2) > 0.9 and iou(plain[1001] > 0.5, best) > 0.9
    assert iou(with_choice[1001] > 0.5, best) < 0.6
    ctl.close()


def test_mask_from_the_host_propagates_through_the_shot(bridge, shot, tmp_path):
    """A matte the colorist has (a Magic Mask or roto export, the plate's size) as a Loader
    samroto_<object>_mask on frame 1003: a prompt there, tracked both ways through the shot."""
    from samroto.core.shot import write_mask

    resolve, comp, pos, mattes = shot
    pos.SetAttrs({"TOOLB_PassThrough": True})  # only the mask here
    given = np.zeros((H, W), bool)
    given[30:70, 20:60] = True
    path = write_mask(tmp_path / "roto.1003.png", given)
    loader = comp.AddTool("Loader")
    loader.SetAttrs({"TOOLS_Name": "samroto_prop_mask"})
    loader.SetInput("Clip", str(path))
    loader.SetInput("GlobalIn", 2.0)
    loader.SetInput("GlobalOut", 2.0)
    lines = []
    job, plan, imported = headless.track(resolve, "both", out=lines.append, poll=0.02, handles=0,
                                         matte_root=str(mattes), connect=connect_to(bridge))
    assert job.state == "done", job.summary()
    assert plan.prompts["objects"] == [{"id": 1, "name": "prop", "prompts": [{"frame": 1003, "mask": str(path)}]}]
    assert sorted(job.frames) == list(range(1001, 1009)) and sorted(imported) == ["prop"]
    alphas = {f: exr_alpha(plan.pattern.replace("{name}", "prop") % f) > 0.5 for f in job.frames}
    assert iou(alphas[1003], given) > 0.9  # the prompted frame is the host's matte
    # propagated through the shot: core's shot workflow on the same mask prompt, frame for frame
    assert core_track(plan.shot()) == {f: a.tobytes() for f, a in alphas.items()}
    assert sum(a.sum() > 0 for a in alphas.values()) >= 6

    # the no-window scripts: Preview Frame and Use Candidate N (a connection each run)
    pos.SetAttrs({"TOOLB_PassThrough": False})
    comp.CurrentTime = 0.0
    out = []
    shown = headless.preview(resolve, out=out.append, matte_root=str(mattes), connect=connect_to(bridge))
    assert shown["hero"].encoded and len(shown["hero"].candidates) == 3 and "prop" not in shown
    assert any("candidate 2 (IoU" in line for line in out)
    got = headless.use_candidate(resolve, 3, out=out.append, matte_root=str(mattes), connect=connect_to(bridge))
    assert got.best == 2 and comp.FindTool("samroto_hero_mask").rendered("Clip") == got.mask
    with pytest.raises(hostkit.HostError, match="prop has no prompt on frame 1003: place its include point"):
        pos.SetAttrs({"TOOLB_PassThrough": True})
        comp.CurrentTime = 2.0
        headless.use_candidate(resolve, 1, name="prop", out=out.append, matte_root=str(mattes),
                               connect=connect_to(bridge))


def exr_alpha(path):
    import OpenImageIO as oiio

    buf = oiio.ImageBuf(str(path))
    assert not buf.has_error, buf.geterror()
    return np.asarray(buf.get_pixels(oiio.FLOAT))[..., 0]


def core_track(shot, index=0):
    """{frame: SAM 2's decision as bytes} of core's shot workflow on ``shot`` (a hostkit.Shot),
    for its ``index``-th object."""
    from live_bridge import micro_model
    from samroto.core.io import open_shot
    from samroto.core.prompts import from_dict
    from samroto.core.shot import apply_prompts, plan_passes, track
    from samroto.core.video import VideoSession

    frames = open_shot(shot.source, shot.first, shot.last, color=shot.color)
    session = VideoSession(micro_model(), frames, precision="float32")
    prompt_set = from_dict(shot.prompts)
    list(apply_prompts(session, prompt_set, frames, low_res=True))
    prompted = sorted(frames.index_of(f) for f in prompt_set.frames())
    return {r.frame: (r.values[index] > 0.5).tobytes()
            for r in track(session, frames, plan_passes(len(frames), prompted, shot.direction))}



def lua_input(tool, name):
    return tool.GetInput(tool, name)


def test_lua_scripts_preview_choose_and_review(bridge, tmp_path):
    """Free Resolve 21.1+ runs Lua scripts only: the installed Lua Preview Frame, Use
    Candidate 2 and Review Track run samroto's Python on a snapshot of the comp (a new
    connection each run: the image encoder runs every time) and set the Loaders it placed
    in Resolve's comp (outside Lock), as the Python scripts do."""
    pytest.importorskip("lupa.lua51", reason="lupa (Lua 5.1) is a test dependency")
    import lupa.lua51 as lupa

    from samroto.plugins.resolve import install

    target = tmp_path / "Fusion"
    install.install(target, python=sys.executable)
    entries = sorted(p.name for p in (target / install.LUA_SCRIPTS_DIR).iterdir())
    assert {"Preview Frame.lua", "Use Candidate 2.lua", "Next Lost Frame.lua", "Show Masks.lua",
            "Use Masks Under Points.lua"} <= set(entries)
    media = tmp_path / "media"
    media.mkdir()
    for f in range(1001, 1009):
        shutil.copy(PLATE / ("plate.%d.png" % f), media / ("plate.%d.png" % f))
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    resolve = lua.execute("""
local fake = dofile(%r)
return fake.build({name = "plate.png", left = 0, duration = 8, right = 0, current_time = 0,
  props = {["Clip Name"] = "plate.png", ["File Path"] = %r, FPS = "24", ["Start TC"] = "01:00:00:00", Start = "1001",
           End = "1008", Frames = "8", Resolution = "112x80", ["Input Color Space"] = "Rec.709 Gamma 2.4"},
  tools = {{name = "samroto_hero_pos", regid = "EllipseMask", values = {Center = {%r, %r}, Width = 0.01, Height = 0.01}}}})
""" % (str(ROOT / "tests" / "fake_resolve" / "fake_resolve.lua"), str(media / "plate.[1001-1008].png"),
       HERO[0] / W, 1 - HERO[1] / H))
    samroto = lua.execute("return dofile(%r)" % str(target / "samroto" / "samroto.lua"))
    lines = []

    def run(action):
        opts = lua.table(support=str(target / "samroto"), python=sys.executable, out=lines.append,
                         settings=lua.table(config_dir=bridge, matte_root=str(tmp_path / "mattes"),
                                            automask=lua.table(**AUTOMASK)))
        result = samroto.track(resolve, action, opts)
        assert result is not None and result.ok, "\n".join(lines)
        return result

    run("preview")
    preview = resolve.comp.FindTool(resolve.comp, "samroto_hero_preview")
    assert preview is not None and os.path.isfile(lua_input(preview, "Clip")) and lua_input(preview, "GlobalIn") == 0
    assert not preview["unrendered"] and any("image encoder ran" in line for line in lines)
    assert any("candidate 2 (IoU" in line for line in lines)
    run("candidate2")
    mask = resolve.comp.FindTool(resolve.comp, "samroto_hero_mask")
    chosen = lua_input(mask, "Clip")
    assert chosen.endswith("hero.1001.candidate2.png") and os.path.isfile(chosen)
    assert any("candidate 2 is its prompt now" in line for line in lines)
    # Track (Lua) follows the chosen candidate: the prompted frame's matte is candidate 2
    run("forward")
    pattern = str(tmp_path / "mattes" / "plate.png" / "plate_hero.%04d.exr")
    assert iou(exr_alpha(pattern % 1001) > 0.5, read(chosen)) > 0.9
    # Review: the frames where the micro model lost the object are those whose matte is empty
    lost = [f for f in range(1001, 1009) if exr_alpha(pattern % f).max() < 0.5]
    assert lost, "the micro model loses the object somewhere on this shot"
    del lines[:]
    run("review")
    from samroto_resolve.review import ranges
    assert lines[-2:] == ["samroto: hero: tracked 1001-1008; lost on %s" % ranges(lost), "samroto: review done."]
    run("next_lost")
    assert resolve.comp.CurrentTime == lost[0] - 1001 and lines[-2] == "samroto: frame %d: hero lost (empty matte)" % lost[0]
    assert resolve.timeline["timecode"] == "01:00:00:%02d" % (lost[0] - 1001)
    # Show Masks and Use Masks Under Points (issue 20) on frame 1002
    resolve.comp["CurrentTime"] = 1
    run("show_masks")
    overlay = resolve.comp.FindTool(resolve.comp, "samroto_auto_overlay")
    assert os.path.isfile(lua_input(overlay, "Clip")) and lua_input(overlay, "GlobalIn") == 1
    assert any("automatic masks in" in line for line in lines)
    run("use_masks")
    picked = resolve.comp.FindTool(resolve.comp, "samroto_hero_mask2")
    assert lua_input(picked, "Clip").endswith(".png") and lua_input(picked, "GlobalIn") == 1
    assert any("hero: automatic mask" in line for line in lines)


# --- issue 20, item 3: segment everything, pick objects -----------------------------------------

AUTOMASK = {"points_per_side": 12, "pred_iou_thresh": 0.3, "stability_score_thresh": 0.4, "mask_threshold": 12.0}


def test_show_masks_then_pick_by_number_and_under_points(bridge, shot, tmp_path):
    """Show Masks lists SAM 2's automatic masks on the frame under the playhead (numbered,
    and on the overlay Loader); the masks picked (by number in the window, or the one under
    each object's include point with the scripts) each become an object whose mask prompt
    on that frame is that mask; tracking gives those objects, their mattes on that frame
    being the masks."""
    resolve, comp, pos, mattes = shot
    pos.SetAttrs({"TOOLB_PassThrough": True})
    comp.CurrentTime = 1.0  # frame 1002
    settings = dict(matte_root=str(mattes), automask=AUTOMASK)
    lines = []
    found = headless.show_masks(resolve, out=lines.append, connect=connect_to(bridge), **settings)
    assert len(found) >= 3 and found.frame == 1002
    overlay = comp.FindTool("samroto_auto_overlay")
    assert overlay.rendered("Clip") == found.overlay and os.path.isfile(found.overlay) and overlay.GetInput("GlobalIn") == 1
    listed = [line for line in lines if "finding masks" not in line]
    assert listed[0].startswith("samroto: frame 1002: %d automatic masks in" % len(found))
    assert listed[1].startswith("samroto:   1: %d px, box" % found[0].area) and len(listed) == 1 + len(found)
    assert lines[0] == "samroto: finding masks 0%" and "samroto: finding masks 100%" in lines

    # the window: Show masks on a worker thread, with progress and Cancel, then masks 1 and 3
    # (typed), each a new object
    texts, enabled = {}, {}
    ctl = ui.Controller(resolve, texts.__setitem__, enabled.__setitem__, connect=connect_to(bridge))
    ctl.live = Live(resolve, connect=connect_to(bridge), **settings)
    assert ctl.show_masks() and enabled["ShowMasks"] is False and enabled["Cancel"] is True
    ctl.cancel()
    while ctl.tick():
        time.sleep(0.01)
    assert "cancelled" in texts["Status"] and enabled["ShowMasks"] is True
    assert ctl.show_masks()
    while ctl.tick():
        time.sleep(0.01)
    assert texts["Status"].startswith("frame 1002: %d automatic masks in" % len(found)), texts["Status"]
    assert texts["Progress"].endswith("144/144 clicks")
    ctl.use_masks("1, 3")
    assert "obj1: automatic mask 1 is its prompt on frame 1002" in texts["Status"], texts["Status"]
    ctl.use_masks("1, 99")
    assert texts["Status"] == "Frame 1002 has automatic masks 1-%d; there is no 99." % len(found)
    for name, mask in (("obj1", found[0]), ("obj2", found[2])):
        assert comp.FindTool("samroto_%s_mask" % name).rendered("Clip") == mask.mask_path
    job, plan, _ = headless.track(resolve, "both", out=lambda line: None, poll=0.02, handles=0,
                                  connect=connect_to(bridge), **settings)
    assert job.state == "done", job.summary()
    assert plan.prompts["objects"] == [{"id": 1, "name": "obj1", "prompts": [{"frame": 1002, "mask": found[0].mask_path}]},
                                       {"id": 2, "name": "obj2", "prompts": [{"frame": 1002, "mask": found[2].mask_path}]}]
    # each object's matte on 1002 is SAM 2's answer to its mask prompt (a mask frame's output
    # is the mask, as SAM 2 turns it into its own low-res logits and fills small holes): that
    # mask, not another one
    for name, mask in (("obj1", found[0]), ("obj2", found[2])):
        tracked = exr_alpha(plan.pattern.replace("{name}", name) % 1002) > 0.5
        overlaps = sorted((iou(tracked, read(m.mask_path)), m.index) for m in found)
        assert overlaps[-1][1] == mask.index and overlaps[-1][0] >= 0.85 and overlaps[-2][0] < 0.7, overlaps
    # and every frame of both objects is core's shot workflow on those mask prompts, bit for bit
    for index, name in enumerate(("obj1", "obj2")):
        assert core_track(plan.shot(), index) == {
            f: (exr_alpha(plan.pattern.replace("{name}", name) % f) > 0.5).tobytes() for f in job.frames}

    # the scripts: the mask under the object's include point becomes its prompt
    for tool in (comp.FindTool("samroto_obj1_mask"), comp.FindTool("samroto_obj2_mask")):
        tool.SetAttrs({"TOOLB_PassThrough": True})
    pos.SetAttrs({"TOOLB_PassThrough": False})
    target = found[1]
    ys, xs = np.nonzero(read(target.mask_path))
    inside = [(x, y) for x, y in zip(xs, ys) if hostkit.mask_at(found, x + 0.5, y + 0.5) is not None
              and hostkit.mask_at(found, x + 0.5, y + 0.5).index == target.index]
    x, y = inside[len(inside) // 2]
    pos.SetInput("Center", {1: (x + 0.5) / W, 2: 1 - (y + 0.5) / H})
    picked = headless.use_masks(resolve, out=lines.append, connect=connect_to(bridge), **settings)
    assert {n: m.index for n, m in picked.items()} == {"hero": target.index}
    assert comp.FindTool("samroto_hero_mask").rendered("Clip") == target.mask_path
    assert lines[-1] == ("samroto: hero: automatic mask %d is its prompt on frame 1002 (samroto_hero_mask); "
                         "Track uses it." % target.index)
    ctl.close()
