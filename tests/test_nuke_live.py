"""The Nuke node's interactive loop (issue 18) and segment everything (issue 20), on the
strict fake ``nuke`` against a real `samroto serve` on the micro fixture model
(tests/plugin_parity.py): a handle moved in the Viewer gives the frame's matte at once
(knobChanged -> LiveSession, debounced, the newest position winning) from cached features
after the first click; SAM 2's three candidates are listed and the picked one is the
frame's mask prompt that Track uses; the mask input's alpha is a prompt propagated through
the shot; the Finish tab finishes the preview and the Track alike; automatic masks picked on
a frame become objects. Every Track's mattes are `samroto track`'s on the same shot and
prompts, bit for bit."""

import sys
import time
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "fake_nuke"))
sys.path.insert(0, str(HERE))
import nuke_testing as nt  # noqa: E402
import plugin_parity  # noqa: E402
from live_bridge import HERO, PLATE  # noqa: E402

W, H = 112, 80  # the bridge plate (tests/data/bridge), frames 1001-1008
# thresholds that let the random-weight micro model's masks through (tests/data/automask/README.md)
SEGMENT = {"seg_points_per_side": 12, "seg_pred_iou_thresh": 0.3, "seg_stability_score_thresh": 0.4,
           "seg_mask_threshold": 12.0}


@pytest.fixture(scope="module")
def bridge(tmp_path_factory):
    with plugin_parity.running_bridge(tmp_path_factory.mktemp("config")) as config:
        yield config


@pytest.fixture
def nk(bridge, monkeypatch):
    monkeypatch.setenv("SAMROTO_CONFIG_DIR", str(bridge))
    nuke, plugin = nt.load(monkeypatch)
    menu_py = nt.PLUGIN_SRC / "startup" / "menu.py"  # as Nuke runs it at start: the Viewer callback
    exec(compile(menu_py.read_text(), str(menu_py), "exec"), {})

    yield nuke, plugin
    for live in plugin.live.LIVE.values():
        live.close()
    plugin.live.LIVE.clear()


def plate_node(nuke, plugin, tmp_path):
    read = nuke.nodes.Read(file=str(PLATE / "plate.%04d.png"), first=1001, last=1008)
    nuke.root()["first_frame"].setValue(1001)
    nuke.root()["last_frame"].setValue(1008)
    nuke._SELECTED[:] = [read]
    node = plugin.create_node()
    node["matte_dir"].setValue(str(tmp_path / "mattes"))
    return read, node


def settle(nuke, plugin, node, timeout=120):
    """Nuke's main loop until the node's live work is done and its answers are shown."""
    live = plugin.live.LIVE[node.fullName()]
    end = time.time() + timeout
    while True:
        nuke._process_events(0.02)
        if live.idle() and nuke._MAIN_QUEUE.empty():
            return live
        assert time.time() < end, "the live preview did not come back: %s" % node["status"].value()


def wait(nuke, plugin, node, timeout=120):
    job = plugin.tracking.ACTIVE.get(node.fullName())
    assert job is not None, (nuke._MESSAGES, node["status"].value())
    end = time.time() + timeout
    while not job.finished.is_set():
        assert time.time() < end, "tracking did not finish"
        nuke._process_events(0.05)
    return job


def track_forward(nuke, plugin, node, first, last):
    """Press Track forward over the custom range ``first``-``last``; the finished job."""
    node["range"].setValue("custom")
    node["range_first"].setValue(first)
    node["range_last"].setValue(last)
    node["track_forward"].execute()
    job = wait(nuke, plugin, node)
    assert job.state == "finished", job.message
    return job


def same_as_cli(job, node, tmp_path):
    req = job.request
    names = {o["id"]: o["name"] for o in req["prompts"]["objects"]}
    patterns = {names[i]: node["o%d_matte" % i].value() for i in names}
    first, last = req["shot"]
    return plugin_parity.assert_same_as_cli(tmp_path / "cli", patterns, job.done_frames, req["source"]["path"],
                                            req["prompts"], req["direction"], first, last, req["source"]["color"])


def image(path):
    """An image's first channel (a preview TIFF, a mask PNG, a matte EXR) as float 0..1."""
    pixels, _ = plugin_parity.read_exr(path)
    return pixels[..., 0]


def iou(a, b):
    return (a & b).sum() / max(1, (a | b).sum())


def inside(node):
    return {n.name(): n for n in node.nodes()}


def test_click_shows_the_matte_then_cached_and_the_picked_candidate_is_tracked(nk, tmp_path):
    nuke, plugin = nk
    read, node = plate_node(nuke, plugin, tmp_path)
    nuke.frame(1001)
    node["add_pos"].execute()  # a handle mid-frame, keyed on 1001: its matte at once
    live = settle(nuke, plugin, node)
    first = live.previews[(1, 1001)]
    assert first.encoder_runs == 1 and len(first.candidates) == 3  # (the x and y keys may be two requests)
    assert not plugin.tracking.ACTIVE and not list((tmp_path / "mattes").glob("*.exr"))  # no track
    assert Path(first.paths[1]).is_file()

    # a drag to the hero: 31 updates, a few requests, the last position wins, no encoder
    debouncer = live.worker.debouncer
    pushed, sent = debouncer.pushed, debouncer.sent
    for i in range(30):
        node["o1_pos1"].setValueAt(40.0 + i * (HERO[0] - 40.0) / 30, 1001, 0)
    node["o1_pos1"].setValueAt(HERO[0], 1001, 0)
    node["o1_pos1"].setValueAt(H - HERO[1], 1001, 1)  # Nuke's y goes up
    settle(nuke, plugin, node)
    assert debouncer.pushed - pushed == 32 and debouncer.sent - sent <= 8, (debouncer.pushed, debouncer.sent)
    got = live.previews[(1, 1001)]
    assert not got.encoded and got.encoder_runs == 1 and len(got.candidates) == 3
    assert "cached image features" in node["status"].value()
    # the shown matte is SAM 2's answer to the final click (a fresh session on the same plate)
    fresh = plugin.kit.hostkit.LiveSession(lambda: plugin.kit.hostkit.connect(), str(PLATE / "plate.%04d.png"),
                                           1001, 1008, str(tmp_path / "fresh"), color={"input": "auto"})
    want = fresh.prompt(1001, 1, "object1", {"points": [[HERO[0], HERO[1]]], "labels": [1]})
    fresh.close()
    assert np.array_equal(image(got.paths[1]), image(want.paths[1]))
    shown = inside(node)["Matte_o1"]
    assert node["show"].value() == "live" and shown["file"].value() == node["o1_live"].value()
    assert shown["file"].value() % 1001 == got.paths[1].replace("\\", "/")
    assert inside(node)["Copy_o1"].input(1) is shown
    text = node["candidates"].value()
    assert text.count("IoU") == 3 and "(shown)" in text

    # pick another candidate: it becomes the frame's mask prompt, shown at once
    pick = 2 if got.best != 1 else 3
    node["candidate"].setValue(str(pick))
    settle(nuke, plugin, node)
    [(obj, _, frame, mask_knob)] = plugin.knobs.masks(node)
    assert (obj, frame) == (1, 1001) and "candidate %d" % pick in mask_knob.label()
    chosen = image(mask_knob.value()) > 0.5
    candidate = image(got.candidates[pick - 1].path) > 0.5
    best = image(got.candidates[got.best].path) > 0.5
    assert np.array_equal(chosen, candidate) and iou(candidate, best) < 0.8
    assert iou(image(live.previews[(1, 1001)].paths[1]) > 0.5, candidate) > 0.9
    assert live.previews[(1, 1001)].encoder_runs == 1

    # Track uses the chosen candidate: samroto track on the same prompts, bit for bit
    job = track_forward(nuke, plugin, node, 1001, 1004)
    assert job.request["prompts"]["objects"][0]["prompts"] == [{"frame": 1001, "mask": mask_knob.value()}]
    assert same_as_cli(job, node, tmp_path)["object1"]
    assert node["show"].value() == "tracked" and inside(node)["Matte_o1"]["file"].value() == node["o1_matte"].value()
    with_choice = image(node["o1_matte"].value() % 1001) > 0.5
    assert sorted(plugin.review.scores(node, 1)) == job.nuke_frames  # SAM 2's object score per tracked frame

    # back to SAM 2's best: the choice goes, and Track follows the click again
    node["candidate"].setValue("best")
    settle(nuke, plugin, node)
    assert plugin.knobs.masks(node) == []
    node["matte_dir"].setValue(str(tmp_path / "plain"))
    node["track_forward"].execute()
    job = wait(nuke, plugin, node)
    assert job.request["prompts"]["objects"][0]["prompts"][0]["points"] == [[HERO[0], pytest.approx(HERO[1])]]
    plain = image(node["o1_matte"].value() % 1001) > 0.5
    assert iou(with_choice, candidate) > 0.8 and iou(plain, best) > 0.8 and iou(with_choice, plain) < 0.8


def test_candidates_need_a_single_click(nk, tmp_path):
    nuke, plugin = nk
    read, node = plate_node(nuke, plugin, tmp_path)
    nuke.frame(1002)
    node["add_box"].execute()
    settle(nuke, plugin, node)
    assert "one mask" in node["candidates"].value()
    node["candidate"].setValue("2")
    assert "no candidates for object 1 on frame 1002" in node["status"].value()
    assert node["candidate"].value() == "best"
    assert plugin.knobs.masks(node) == []


def write_rgba(path, alpha):
    import OpenImageIO as oiio

    rgba = np.zeros(alpha.shape + (4,), np.float32)
    rgba[..., 3] = alpha
    spec = oiio.ImageSpec(alpha.shape[1], alpha.shape[0], 4, oiio.HALF)
    spec.channelnames = ("R", "G", "B", "A")
    spec.alpha_channel = 3
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec), oiio.geterror()
    out.write_image(rgba)
    out.close()


def test_mask_input_is_a_prompt_propagated_and_finished_like_the_preview(nk, tmp_path, monkeypatch):
    """A matte (a Read of an RGBA roto render here; a Roto node renders the same way) on the
    mask input, taken on frame 1003 as the object's prompt, tracked both ways through the
    shot with the Finish tab's grow and feather: samroto track with those settings gives the
    same mattes, and the frame's preview was already what Track writes there."""
    nuke, plugin = nk
    read, node = plate_node(nuke, plugin, tmp_path)
    node["mask_input"].execute()
    assert "mask input is not connected" in nuke._MESSAGES[-1]
    given = np.zeros((H, W), np.float32)
    given[25:60, 45:90] = 1.0  # rows from the top
    (tmp_path / "roto").mkdir()
    for f in range(1001, 1009):
        write_rgba(tmp_path / "roto" / ("roto.%04d.exr" % f), given if f == 1003 else given * 0)
    roto = nuke.nodes.Read(file=str(tmp_path / "roto" / "roto.%04d.exr"), first=1001, last=1008)
    node.setInput(1, roto)
    node["finish_override"].setValue(True)
    node["finish_temporal_strength"].setValue(0.5)  # as the bridge's settings in this test (plugin_parity.ENV)
    node["finish_grow"].setValue(1.5)
    node["finish_feather"].setValue(1.0)
    nuke.frame(1003)
    node["mask_input"].execute()
    live = settle(nuke, plugin, node)
    [(obj, _, frame, mask_knob)] = plugin.knobs.masks(node)
    assert (obj, frame) == (1, 1003) and np.array_equal(image(mask_knob.value()) > 0.5, given > 0.5)
    preview = live.previews[(1, 1003)]
    assert preview.paths[1] and not preview.candidates

    node["track_both"].execute()
    job = wait(nuke, plugin, node)
    assert job.state == "finished", job.message
    assert job.request["mattes"]["finish"]["grow"] == 1.5
    assert job.request["prompts"]["objects"] == [{"id": 1, "name": "object1",
                                                  "prompts": [{"frame": 1003, "mask": mask_knob.value()}]}]
    monkeypatch.setenv("SAMROTO_FINISH_GROW", "1.5")
    monkeypatch.setenv("SAMROTO_FINISH_FEATHER", "1.0")
    covered = same_as_cli(job, node, tmp_path)
    assert job.done_frames == list(range(1001, 1009)) and len(covered["object1"]) >= 6
    tracked = image(node["o1_matte"].value() % 1003)
    assert iou(tracked > 0.5, given > 0.5) > 0.8
    soft = (tracked > 0.02) & (tracked < 0.98)
    assert soft.sum() > 20  # feathered
    assert np.abs(image(preview.paths[1]) - tracked).max() <= 1.5 / 255


def test_mask_input_of_another_size_is_refused(nk, tmp_path):
    nuke, plugin = nk
    read, node = plate_node(nuke, plugin, tmp_path)
    node["live"].setValue(False)
    small = tmp_path / "small.%04d.exr"
    write_rgba(str(small) % 1001, np.ones((10, 10), np.float32))
    node.setInput(1, nuke.nodes.Read(file=str(small), first=1001, last=1001))
    nuke.frame(1001)
    node["mask_input"].execute()
    assert "mask input is 10x10 but the plate is 112x80" in nuke._MESSAGES[-1]
    assert plugin.knobs.masks(node) == []


def test_segment_everything_picked_masks_become_tracked_objects(nk, tmp_path):
    nuke, plugin = nk
    read, node = plate_node(nuke, plugin, tmp_path)
    for name, value in SEGMENT.items():
        node[name].setValue(value)
    nuke.frame(1001)
    node["segment"].execute()
    seg = plugin.live.LIVE[node.fullName()].segmenting
    end = time.time() + 120
    while not seg.finished.is_set():
        assert time.time() < end
        nuke._process_events(0.05)
    assert seg.error is None, seg.error
    found = seg.found
    assert len(found) >= 2, "the micro model found %d masks" % len(found)
    task = nuke._TASKS[-1]
    assert task.progress == 100 and task.messages[-1] == "frame 1001: 144 of 144 clicks"
    # the overlay in the node's output, a checkbox per mask
    overlay = inside(node)["Matte_auto"]
    assert node["show"].value() == "auto masks" and inside(node)["Output1"].input(0) is overlay
    assert overlay["file"].value() == found.overlay.replace("\\", "/") and Path(found.overlay).is_file()
    assert all(node.knob("auto%d" % m.index) is not None for m in found)

    # two masks that do not overlap (overlapping objects share their pixels: finish.non_overlap)
    pixels = {m.index: image(m.mask_path) > 0.5 for m in found}
    pairs = [(a, b) for a in found for b in found
             if a.index < b.index and not (pixels[a.index] & pixels[b.index]).any()]
    one, two = max(pairs, key=lambda p: min(p[0].area, p[1].area))  # the largest such pair
    node["auto%d" % one.index].setValue(True)
    # the other by Ctrl+clicking it in the Viewer: the smallest mask under the click is picked
    viewer = nuke.nodes.Viewer()
    viewer.setInput(0, node)
    node["viewer_clicks"].setValue("pick auto mask")
    smaller = [pixels[m.index] for m in found if m.area < two.area]
    row, col = next((r, c) for r, c in np.argwhere(pixels[two.index]) if not any(p[r, c] for p in smaller))
    x, y = col + 0.5, H - row - 0.5  # Nuke's pixels: y up
    nuke._viewer_sample(viewer, (x - W / 2) / (W / 2), (y - H / 2) / (W / 2), (x - W / 2) / (W / 2),
                        (y - H / 2) / (W / 2))
    assert node["auto%d" % two.index].value(), node["status"].value()
    node["viewer_clicks"].setValue("off")
    assert node["add_picked"].execute() is None
    assert plugin.knobs.object_ids(node) == [1, 2, 3]
    assert [node["o%d_name" % o].value() for o in (2, 3)] == ["auto%d" % one.index, "auto%d" % two.index]
    assert node["show"].value() == "tracked" and "Matte_auto" not in inside(node)
    settle(nuke, plugin, node)

    job = track_forward(nuke, plugin, node, 1001, 1004)
    assert [o["name"] for o in job.request["prompts"]["objects"]] == ["auto%d" % one.index, "auto%d" % two.index]
    covered = same_as_cli(job, node, tmp_path)
    for obj, mask in ((2, one), (3, two)):
        first_frame = image(node["o%d_matte" % obj].value() % 1001) > 0.5
        # the first frame's matte is the picked mask as SAM 2 reads a mask prompt (through its
        # 256x256 mask grid: the micro model's masks are sparse, so thin parts go), inside it
        own = pixels[mask.index]
        assert (first_frame & own).sum() >= 0.85 * first_frame.sum() and iou(first_frame, own) > 0.4, obj
        assert covered["auto%d" % mask.index]


def test_add_picked_without_masks_says_what_to_do(nk, tmp_path):
    nuke, plugin = nk
    read, node = plate_node(nuke, plugin, tmp_path)
    node["add_picked"].execute()
    assert "press 'segment everything' on a frame first" in nuke._MESSAGES[-1]


def test_live_matte_on_an_input_nuke_renders(nk, tmp_path):
    """An input that is not a Read: Nuke renders the current frame for the live session (the
    EXR holds the working space, as for a Track), and the click's matte comes back."""
    nuke, plugin = nk
    read, node = plate_node(nuke, plugin, tmp_path)
    grade = nuke.nodes.Grade(multiply=1.0)
    grade.setInput(0, read)
    node.setInput(0, grade)
    nuke.frame(1002)
    node["add_pos"].execute()
    node["o1_pos1"].setValueAt(HERO[0], 1002, 0)
    node["o1_pos1"].setValueAt(H - HERO[1], 1002, 1)
    live = settle(nuke, plugin, node)
    got = live.previews[(1, 1002)]
    assert live.rendered == (1002, str(tmp_path / "mattes" / "live" / "plate" / "plate.%04d.exr"))
    assert live.context["rendered"] and (live.context["first"], live.context["last"]) == (1002, 1002)
    assert (tmp_path / "mattes" / "live" / "plate" / "plate.1002.exr").is_file()
    assert Path(got.paths[1]).is_file() and len(got.candidates) == 3
    assert node["show"].value() == "live" and inside(node)["Matte_o1"]["file"].value() % 1002 == got.paths[1]


def test_segment_everything_cancel(nk, tmp_path):
    """Cancel in Nuke's progress bar stops the generator within a round; nothing is listed."""
    nuke, plugin = nk
    read, node = plate_node(nuke, plugin, tmp_path)
    node["seg_points_per_side"].setValue(128)  # 16,384 clicks: long enough to cancel
    nuke.frame(1001)
    node["segment"].execute()
    seg = plugin.live.LIVE[node.fullName()].segmenting
    node["segment"].execute()
    assert "already finding the automatic masks" in nuke._MESSAGES[-1]
    end = time.time() + 60
    while not nuke._TASKS[-1].progress and not seg.finished.is_set():
        assert time.time() < end
        time.sleep(0.01)
    nuke._cancel_progress()
    while not seg.finished.is_set():
        assert time.time() < end
        nuke._process_events(0.05)
    assert getattr(seg.error, "code", None) == "cancelled", seg.error
    assert node["status"].value() == "segment everything cancelled" and node.knob("auto1") is None
