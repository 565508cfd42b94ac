"""Tracking on the Nuke side: the request built from the node, the worker thread with a
ProgressTask and its Cancel, results applied on the main thread, and the internal Read
nodes that show the mattes. The bridge client is stood in for by one that writes mattes
(tests/fake_bridge.py); test_nuke_bridge.py runs the same path against a real `samroto serve`."""

import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fake_nuke"))
import nuke_testing as nt  # noqa: E402
from fake_bridge import FakeBridge  # noqa: E402


@pytest.fixture
def env(monkeypatch, tmp_path):
    nuke, plugin = nt.load(monkeypatch)
    read = nuke.nodes.Read(file=nt.make_plate(tmp_path / "plate"), first=1001, last=1004)
    nuke.root()["first_frame"].setValue(1001)
    nuke.root()["last_frame"].setValue(1004)
    nuke._SELECTED[:] = [read]
    node = plugin.create_node()
    node["live"].setValue(False)   # the live matte has its own tests (test_nuke_live.py)
    node["matte_dir"].setValue(str(tmp_path / "mattes"))
    nuke.frame(1002)
    node["add_pos"].execute()
    node["add_object"].execute()
    node["add_box"].execute()
    return nuke, plugin, node, read


def wait(nuke, job, timeout=20):
    end = time.time() + timeout
    while not job.finished.is_set():
        assert time.time() < end, "tracking did not finish"
        nuke._process_events(0.05)
    return job


def test_request_from_the_node(env):
    nuke, plugin, node, read = env
    req = plugin.tracking.build_request(node, "both")
    assert req["source"]["path"] == read["file"].value() and not req["source"]["rendered"]
    assert (req["range"], req["direction"]) == ([1001, 1004], "both")   # both: the whole range
    assert "start" not in req   # each pass starts where the bridge's one rule says
    assert [o["id"] for o in req["prompts"]["objects"]] == [1, 2]
    assert req["mattes"] == {"transport": "file", "format": "exr", "layout": "files",
                             "pattern": node["matte_dir"].value() + "/SAM2Matte1.{name}.%04d.exr"}
    assert req["prompts"]["objects"][0]["prompts"][0] == {"frame": 1002, "points": [[32.0, 24.0]], "labels": [1]}
    frame_only = plugin.tracking.build_request(node, "frame")
    assert (frame_only["range"], frame_only["direction"]) == ([1002, 1002], "forward")
    # forward from the current frame to the range's end, backward from its start to it
    assert plugin.tracking.build_request(node, "forward")["range"] == [1002, 1004]
    assert plugin.tracking.build_request(node, "backward")["range"] == [1001, 1002]
    node["range"].setValue("custom")
    node["range_first"].setValue(1001)
    node["range_last"].setValue(1010)      # clipped to the Read's frames
    assert plugin.tracking.build_request(node, "both")["range"] == [1001, 1004]
    nuke.frame(1003)
    with pytest.raises(plugin.kit.hostkit.HostError, match="No prompt on frames 1003-1004, which this Track "
                                                           "covers .forward from the current frame"):
        plugin.tracking.build_request(node, "forward")   # the prompts on 1002 are before the shot
    node["o1_pos1"].setValueAt(40.0, 1004, 0)
    req = plugin.tracking.build_request(node, "forward")
    assert req["prompts"]["objects"] == [{"id": 1, "name": "object1", "prompts": [
        {"frame": 1004, "points": [[40.0, 24.0]], "labels": [1]}]}]   # only the prompts on the shot


def test_request_renders_a_non_read_input(env, tmp_path):
    nuke, plugin, node, read = env
    grade = nuke.nodes.Grade(multiply=2.0)
    grade.setInput(0, read)
    node.setInput(0, grade)
    req = plugin.tracking.build_request(node, "forward")
    src = req["source"]
    assert src["rendered"] and src["path"] == str(tmp_path / "mattes" / "plate" / "plate.%04d.exr")
    # only the frames this Track covers (forward from 1002) are to be rendered; the node reads the range
    assert (src["first"], src["last"]) == (1002, 1004) and req["plate_range"] == [1001, 1004]
    assert not (tmp_path / "mattes" / "plate").exists()   # the Job renders, not the button


def fake_bridge(monkeypatch, plugin, **kwargs):
    """The bridge client the node's job connects to: a FakeBridge writing 48x64 EXR mattes."""
    bridge = FakeBridge(write=lambda path, frame, i: nt.write_exr(path, np.full((48, 64), 0.5 + 0.1 * i, np.float32)),
                        **kwargs)
    monkeypatch.setattr(plugin.kit.hostkit, "connect", lambda **how: bridge.calls.append(how) or bridge)
    return bridge


def test_track_forward_progress_and_internal_reads(env, monkeypatch):
    nuke, plugin, node, read = env
    bridge = fake_bridge(monkeypatch, plugin)
    job = node["track_forward"].execute() or plugin.tracking.ACTIVE[node.fullName()]
    assert node["status"].value() == "tracking..."
    wait(nuke, job)
    assert not nuke._MESSAGES, nuke._MESSAGES
    assert bridge.frames == [1002, 1003, 1004] and job.state == "finished" and bridge.closed
    how, call = bridge.calls   # how the node connected, then what it asked for
    assert how["name"] == "samroto-nuke" and "SAMROTO_PYTHON" in how["how_to_set"]
    assert (call["source"], call["source_first"], call["source_last"]) == (read["file"].value(), None, None)
    assert (call["first"], call["last"], call["start"], call["direction"]) == (1002, 1004, None, "forward")
    assert call["mattes"] == job.request["mattes"] and call["prompts"] == job.request["prompts"]
    task = nuke._TASKS[-1]
    assert task.progress == 100 and task.messages[-1] == "frame 1004 (3 of 3)"
    assert node["status"].value() == "finished: 3 frame(s) tracked (1002-1004)"
    inside = {n.name(): n for n in node.nodes()}
    for obj, channel in ((1, "rgba.alpha"), (2, "sam2.obj2")):
        read, copy = inside["Matte_o%d" % obj], inside["Copy_o%d" % obj]
        pattern = read["file"].value()
        assert pattern == node["o%d_matte" % obj].value() == "%s/SAM2Matte1.object%d.%%04d.exr" % (
            node["matte_dir"].value(), obj)
        assert (read["first"].value(), read["last"].value()) == (1001, 1004)   # the plate's numbers
        assert read["on_error"].value() == "black"
        assert [Path(pattern % f).is_file() for f in range(1001, 1005)] == [False, True, True, True]
        assert copy.input(1) is read and copy["to0"].value() == channel
    assert inside["Output1"].input(0) is inside["Copy_o2"] and inside["Copy_o2"].input(0) is inside["Copy_o1"]
    assert inside["Copy_o1"].input(0) is inside["Plate"]


def test_cancel_keeps_the_frames_done(env, monkeypatch):
    nuke, plugin, node, _ = env
    bridge = fake_bridge(monkeypatch, plugin, hold_after=1)
    node["track_forward"].execute()
    job = plugin.tracking.ACTIVE[node.fullName()]
    node["track_backward"].execute()   # a second Track while busy is refused, politely
    assert "already tracking" in nuke._MESSAGES[-1]
    assert bridge.reached.wait(10)
    nuke._cancel_progress()             # the artist presses Cancel on the progress bar
    wait(nuke, job)
    assert job.state == "cancelled" and bridge.frames == [1002]
    assert node["status"].value().startswith("cancelled: 1 frame(s) tracked (1002-1002)")


def test_twin_names_are_refused(env):
    nuke, plugin, node, _ = env
    node["o2_name"].setValue("object1")
    node["track_forward"].execute()
    assert "Two objects are called object1" in nuke._MESSAGES[-1]


def test_bridge_errors_reach_the_artist(env, monkeypatch):
    nuke, plugin, node, _ = env

    def refuse(**how):
        raise plugin.kit.hostkit.HostError("Cannot start the samroto bridge with /nope: not found")

    monkeypatch.setattr(plugin.kit.hostkit, "connect", refuse)
    job = wait(nuke, node["track_both"].execute() or plugin.tracking.ACTIVE[node.fullName()])
    assert job.state == "error"
    assert nuke._MESSAGES[-1] == "SAM2Matte SAM2Matte1: Cannot start the samroto bridge with /nope: not found"
    assert node["status"].value().startswith("Error: Cannot start")


def graded(nuke, node, read):
    grade = nuke.nodes.Grade(multiply=0.5)
    grade.setInput(0, read)
    node.setInput(0, grade)
    return grade


def test_a_non_read_input_is_rendered_after_the_press_frame_by_frame(env, monkeypatch, tmp_path):
    """Defect 7: pressing Track renders nothing on the main thread; the job has Nuke render
    the frames it tracks (one for "track frame"), a frame per main-loop turn, then tracks."""
    nuke, plugin, node, read = env
    graded(nuke, node, read)
    bridge = fake_bridge(monkeypatch, plugin)
    plate = tmp_path / "mattes" / "plate"
    node["track_frame"].execute()
    job = plugin.tracking.ACTIVE[node.fullName()]
    assert not plate.exists() and bridge.frames == []   # the button returned without rendering
    assert nuke._process_events(5) == 1   # the main loop turns: first the temporary Write ...
    assert [n.name() for n in node.nodes() if n.Class() == "Write"] == ["samroto_plate_write"]
    wait(nuke, job)                       # ... then a frame per call, then the bridge
    assert (job.state, nuke._MESSAGES) == ("finished", [])
    assert sorted(p.name for p in plate.iterdir()) == ["plate.1002.exr"] and job.rendered == [1002]
    assert bridge.frames == [1002] and bridge.calls[1]["source"] == job.request["source"]["path"]
    assert "rendering the input: frame 1002 (1 of 1)" in nuke._TASKS[-1].messages
    assert not [n for n in node.nodes() if n.Class() == "Write"]   # the temporary Write is gone


def test_a_non_read_input_tracks_over_its_own_frames(env, monkeypatch, tmp_path):
    """Defect 7: the "input" range of a non-Read input is the input's frameRange(), not the
    project's range."""
    nuke, plugin, node, read = env
    nuke.root()["first_frame"].setValue(1)
    nuke.root()["last_frame"].setValue(100)
    graded(nuke, node, read)
    req = plugin.tracking.build_request(node, "both")
    assert req["range"] == [1001, 1004] and req["plate_range"] == [1001, 1004]
    node["range"].setValue("custom")          # any range stays within the input's frames
    node["range_first"].setValue(1003)
    node["range_last"].setValue(1200)
    nuke.frame(1003)
    node["o1_pos1"].setValueAt(30.0, 1003, 0)
    assert plugin.tracking.build_request(node, "both")["range"] == [1003, 1004]
    node["range_first"].setValue(1)
    node["range_last"].setValue(100)
    with pytest.raises(plugin.kit.hostkit.HostError, match="1-100 does not overlap the input's frames .1001-1004"):
        plugin.tracking.build_request(node, "both")
    assert not (tmp_path / "mattes" / "plate").exists()   # nothing rendered to find that out


def test_cancel_while_nuke_renders_the_input(env, monkeypatch, tmp_path):
    """Defect 7: Cancel on the progress bar stops the rendering between frames; the bridge
    is never asked."""
    nuke, plugin, node, read = env
    graded(nuke, node, read)
    bridge = fake_bridge(monkeypatch, plugin)
    node["track_both"].execute()
    job = plugin.tracking.ACTIVE[node.fullName()]
    end = time.time() + 10
    while not nuke._TASKS:
        assert time.time() < end
        time.sleep(0.01)
    nuke._cancel_progress()
    wait(nuke, job)
    assert job.state == "cancelled" and job.rendered == [] and bridge.calls == []
    assert node["status"].value().startswith("cancelled: 0 frame(s) tracked (none); cancelled while Nuke rendered")
    assert not [n for n in node.nodes() if n.Class() == "Write"]


def test_proxy_mode_renders_the_input_full_size(env, monkeypatch, tmp_path):
    """Defect 5 (proxy): a Write renders at the active scale, so the plate of a non-Read
    input is rendered with proxy mode off, full-size like the handles; proxy mode is on again
    afterwards."""
    nuke, plugin, node, read = env
    graded(nuke, node, read)
    nuke.root()["proxy"].setValue(True)
    fake_bridge(monkeypatch, plugin)
    node["track_forward"].execute()
    job = wait(nuke, plugin.tracking.ACTIVE[node.fullName()])
    assert (job.state, nuke._MESSAGES) == ("finished", [])
    for f in (1002, 1003, 1004):
        got, _ = nt.read_exr(job.request["source"]["path"] % f)
        assert got.shape[:2] == (48, 64)
    assert nuke.root()["proxy"].value() is True


def test_trimmed_movie_mattes_come_back_on_nukes_frames(env, monkeypatch, tmp_path):
    """Defect 5: the bridge tracks a movie Read trimmed to 4-9 on the movie's frames 3-8 and
    numbers the matte files so; the internal Reads show file f - 1 on Nuke's frame f."""
    nuke, plugin, node, _ = env
    movie = nt.make_movie(tmp_path / "movie", frames=12)
    node.setInput(0, nt.movie_read(nuke, movie, 12, 4, 9))
    nuke.frame(5)
    node["o1_pos1"].setValueAt(30.0, 5, 0)
    node["o2_box1"].setValueAt(10.0, 6, 0)
    bridge = fake_bridge(monkeypatch, plugin)
    node["track_both"].execute()
    job = wait(nuke, plugin.tracking.ACTIVE[node.fullName()])
    assert (job.state, nuke._MESSAGES) == ("finished", [])
    call = bridge.calls[1]
    assert (call["source"], call["first"], call["last"]) == (movie, 3, 8)
    assert [[p["frame"] for p in o["prompts"]] for o in call["prompts"]["objects"]] == [[4], [5]]
    assert sorted(bridge.frames) == [3, 4, 5, 6, 7, 8] and job.nuke_frames == [4, 5, 6, 7, 8, 9]
    assert node["status"].value() == "finished: 6 frame(s) tracked (4-9)"
    matte = {n.name(): n for n in node.nodes()}["Matte_o1"]
    assert (matte["first"].value(), matte["last"].value()) == (3, 8)
    assert (matte["frame_mode"].value(), matte["frame"].value()) == ("expression", "frame-1")
    assert Path(matte["file"].value() % 3).is_file() and not Path(matte["file"].value() % 9).exists()


class ScoringBridge(FakeBridge):
    """A FakeBridge whose matte events carry SAM 2's object score per object (protocol 1.3:
    ``objects`` [{id, name, score}]): ``lost`` {(object id, frame)} score -3, the rest 6."""

    def __init__(self, lost, **kwargs):
        FakeBridge.__init__(self, **kwargs)
        self.lost = lost

    def track_shot(self, *args, **kwargs):
        on_event = kwargs.pop("on_event")

        def scored(event):
            if event.kind == "matte" and event.matte is not None:
                event.matte.objects = [dict(o, score=-3.0 if (o["id"], event.frame) in self.lost else 6.0)
                                       for o in event.matte.objects]
            on_event(event)

        return FakeBridge.track_shot(self, *args, on_event=scored, **kwargs)


def test_jump_to_the_frames_where_the_object_was_lost(env, monkeypatch):
    nuke, plugin, node, read = env
    node["next_lost"].execute()
    assert "Object 2 has no object scores yet: Track it" in nuke._MESSAGES[-1]   # (the current object)
    bridge = ScoringBridge({(1, 1001), (1, 1004), (2, 1003)})
    monkeypatch.setattr(plugin.kit.hostkit, "connect", lambda **how: bridge)
    nuke.frame(1002)
    node["track_both"].execute()
    wait(nuke, plugin.tracking.ACTIVE[node.fullName()])
    assert plugin.review.scores(node, 1) == {1001: -3.0, 1002: 6.0, 1003: 6.0, 1004: -3.0}
    assert plugin.review.lost_frames(node, 2) == [1003]
    node["object"].setValue(1)
    node["next_lost"].execute()
    assert nuke.frame() == 1004 and "object 1 lost on frame 1004 (score -3.00); 2 lost of 4 tracked" in \
        node["status"].value()
    node["next_lost"].execute()
    assert nuke.frame() == 1004 and "no lost frame after frame 1004" in node["status"].value()
    node["prev_lost"].execute()
    assert nuke.frame() == 1001
    node["object"].setValue(2)
    node["next_lost"].execute()
    assert nuke.frame() == 1003
    # a re-track of some frames replaces their scores and keeps the others
    bridge.lost = {(2, 1002)}
    nuke.frame(1002)
    node["track_frame"].execute()
    wait(nuke, plugin.tracking.ACTIVE[node.fullName()])
    assert plugin.review.lost_frames(node, 2) == [1002, 1003] and plugin.review.lost_frames(node, 1) == [1001, 1004]
