"""Tracking on the Nuke side: the request built from the node, the worker thread with a
ProgressTask and its Cancel, results applied on the main thread, and the internal Read
nodes that show the mattes. The bridge is stood in for by a function that writes mattes
(test_nuke_bridge.py runs the same path against a real `samroto serve`)."""

import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fake_nuke"))
import nuke_testing as nt  # noqa: E402


@pytest.fixture
def env(monkeypatch, tmp_path):
    nuke, plugin = nt.load(monkeypatch)
    read = nuke.nodes.Read(file=nt.make_plate(tmp_path / "plate"), first=1001, last=1004)
    nuke.root()["first_frame"].setValue(1001)
    nuke.root()["last_frame"].setValue(1004)
    nuke._SELECTED[:] = [read]
    node = plugin.create_node()
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
    assert (req["range"], req["start"], req["direction"]) == ([1001, 1004], 1002, "both")
    assert [o["id"] for o in req["prompts"]["objects"]] == [1, 2]
    assert req["mattes"] == {"transport": "file", "format": "exr", "layout": "files",
                             "pattern": node["matte_dir"].value() + "/SAM2Matte1.{name}.%04d.exr"}
    assert req["prompts"]["objects"][0]["prompts"][0] == {"frame": 1002, "points": [[32.0, 24.0]], "labels": [1]}
    frame_only = plugin.tracking.build_request(node, "frame")
    assert (frame_only["range"], frame_only["direction"]) == ([1002, 1002], "forward")
    node["range"].setValue("custom")
    node["range_first"].setValue(1003)
    node["range_last"].setValue(1010)      # clipped to the Read's frames
    assert plugin.tracking.build_request(node, "forward")["range"] == [1003, 1004]


def test_request_renders_a_non_read_input(env, tmp_path):
    nuke, plugin, node, read = env
    grade = nuke.nodes.Grade(multiply=2.0)
    grade.setInput(0, read)
    node.setInput(0, grade)
    req = plugin.tracking.build_request(node, "forward")
    src = req["source"]
    assert src["rendered"] and src["path"] == str(tmp_path / "mattes" / "plate" / "plate.%04d.exr")
    assert (src["first"], src["last"]) == (1001, 1004) and Path(src["path"] % 1004).is_file()


def scripted_bridge(plugin, frames_seen, stop_after=None):
    """Stands in for link.run_track: writes each frame's mattes, reports, honours cancel."""
    def run_track(request, on_matte, cancelled):
        lo, hi = request["range"]
        objects = [{"id": o["id"], "name": o["name"]} for o in request["prompts"]["objects"]]
        for i, f in enumerate(range(request["start"], hi + 1)):
            if cancelled():
                return
            paths = [request["mattes"]["pattern"].replace("{name}", o["name"]) % f for o in objects]
            for path in paths:
                nt.write_exr(path, np.full((48, 64), 0.5 + 0.1 * i, np.float32))
            frames_seen.append(f)
            on_matte(f, objects, paths)
            if stop_after is not None and len(frames_seen) == stop_after:
                while not cancelled():   # the artist presses Cancel now
                    time.sleep(0.01)
    return run_track


def test_track_forward_progress_and_internal_reads(env, monkeypatch):
    nuke, plugin, node, _ = env
    seen = []
    monkeypatch.setattr(plugin.link, "run_track", scripted_bridge(plugin, seen))
    job = node["track_forward"].execute() or plugin.tracking.ACTIVE[node.fullName()]
    assert node["status"].value() == "tracking..."
    wait(nuke, job)
    assert not nuke._MESSAGES, nuke._MESSAGES
    assert seen == [1002, 1003, 1004] and job.state == "finished"
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
    seen = []
    monkeypatch.setattr(plugin.link, "run_track", scripted_bridge(plugin, seen, stop_after=1))
    node["track_forward"].execute()
    job = plugin.tracking.ACTIVE[node.fullName()]
    node["track_backward"].execute()   # a second Track while busy is refused, politely
    assert "already tracking" in nuke._MESSAGES[-1]
    end = time.time() + 10
    while not seen:
        assert time.time() < end
        time.sleep(0.01)
    nuke._cancel_progress()
    wait(nuke, job)
    assert job.state == "cancelled" and seen == [1002]
    assert node["status"].value().startswith("cancelled: 1 frame(s) tracked (1002-1002)")


def test_pattern_from_reported_paths(env):
    _, plugin, _, _ = env
    f = plugin.tracking.pattern_from_path
    assert f("/m/v2.1002/SAM2Matte1.hat_2.1002.exr", 1002) == "/m/v2.1002/SAM2Matte1.hat_2.%04d.exr"
    assert f("C:\\m\\n.o1002.0007.exr", 7) == "C:/m/n.o1002.%04d.exr"


def test_twin_names_are_refused(env):
    nuke, plugin, node, _ = env
    node["o2_name"].setValue("object1")
    node["track_forward"].execute()
    assert "Two objects are called object1" in nuke._MESSAGES[-1]


def test_bridge_errors_reach_the_artist(env, monkeypatch):
    nuke, plugin, node, _ = env

    def refuse(request, on_frame, cancelled):
        raise plugin.link.BridgeError("Cannot start the samroto bridge with /nope: not found")

    monkeypatch.setattr(plugin.link, "run_track", refuse)
    job = wait(nuke, node["track_both"].execute() or plugin.tracking.ACTIVE[node.fullName()])
    assert job.state == "error"
    assert nuke._MESSAGES[-1] == "SAM2Matte SAM2Matte1: Cannot start the samroto bridge with /nope: not found"
    assert node["status"].value().startswith("Error: Cannot start")
