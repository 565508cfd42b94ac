"""The host kit shared by the plugins (bridge/hostkit.py): it must agree with what samroto's
core and bridge do (prompts schema, file-safe names, frame patterns), run in a bare Python
3.7+ beside the client, and turn the client's tracking into typed events. The bridge client
is stood in for by tests/fake_bridge.py here; the plugins' *_bridge tests run the real one."""

import ast
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from fake_bridge import FakeBridge
from samroto.bridge import client, hostkit
from samroto.core import prompts as core_prompts
from samroto.core.io.mattes import safe_name
from samroto.core.io.patterns import format_frame_path, parse_pattern

BRIDGE = Path(hostkit.__file__).resolve().parent


# --- standing alone in a host's Python ---------------------------------------------------------

def test_kit_is_python37_and_stdlib_only():
    tree = ast.parse((BRIDGE / "hostkit.py").read_text(), feature_version=(3, 7))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert imported - set(sys.stdlib_module_names) == {"client"}   # the sibling, when top-level


def test_kit_imports_beside_the_client_in_a_bare_python(tmp_path):
    """Copied next to client.py and protocol.py (docs/bridge.md), with no site-packages."""
    for name in ("client.py", "protocol.py", "hostkit.py"):
        shutil.copy(BRIDGE / name, tmp_path / name)
    probe = "import sys; sys.path[:0] = [%r]; import hostkit; print(hostkit.client.__name__, " \
            "hostkit.PROMPTS_VERSION)" % str(tmp_path)
    out = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout.split()) == (0, ["client", "1"]), out.stderr


# --- prompts ---------------------------------------------------------------------------------

def test_prompts_version_is_the_one_core_reads():
    assert hostkit.PROMPTS_VERSION == core_prompts.SCHEMA_VERSION
    doc = hostkit.prompts_document([{"id": 1, "name": "a", "points": [(5, 1, 2, True)]}])
    assert doc["version"] == hostkit.PROMPTS_VERSION
    core_prompts.from_dict(doc)   # accepted as it is
    with pytest.raises(core_prompts.PromptError, match="unsupported version"):
        core_prompts.from_dict(dict(doc, version=hostkit.PROMPTS_VERSION + 1))


def test_prompts_document_groups_by_frame_and_core_accepts_it():
    doc = hostkit.prompts_document([
        {"id": 2, "name": "hat", "points": [(1003, 10, 20, True), (1001, 5.5, 8, False), (1003, 11, 21, False)],
         "boxes": [(1003, 30, 40, 10, 8), (1003, 12, 5, 2, 1)]},       # corners in any order; the last wins
        {"id": 1, "name": "empty", "points": [], "boxes": []},          # no prompts: left out
        {"id": 3, "name": "car", "boxes": [(1002, 1, 2, 3, 4)]},
    ])
    assert doc == {"version": 1, "objects": [
        {"id": 2, "name": "hat", "prompts": [
            {"frame": 1001, "points": [[5.5, 8.0]], "labels": [0]},
            {"frame": 1003, "points": [[10.0, 20.0], [11.0, 21.0]], "labels": [1, 0], "box": [2.0, 1.0, 12.0, 5.0]}]},
        {"id": 3, "name": "car", "prompts": [{"frame": 1002, "box": [1.0, 2.0, 3.0, 4.0]}]},
    ]}
    parsed = core_prompts.from_dict(doc)
    core_prompts.validate(parsed, range(1001, 1005), 64, 48)
    assert parsed.to_dict() == doc


def test_prompts_document_refuses_names_that_share_matte_files():
    point = [(1, 1, 1, True)]
    with pytest.raises(hostkit.HostError, match="Two objects are called hero"):
        hostkit.prompts_document([{"id": 1, "name": "hero", "points": point},
                                  {"id": 2, "name": "hero", "points": point}])
    with pytest.raises(hostkit.HostError, match=r"'my car' and 'my_car' would write the same matte files \(my_car\)"):
        hostkit.prompts_document([{"id": 1, "name": "my car", "points": point},
                                  {"id": 2, "name": "my_car", "points": point}])
    with pytest.raises(hostkit.HostError, match="Two objects have the id 4"):
        hostkit.prompts_document([{"id": 4, "name": "a", "points": point}, {"id": 4, "name": "b", "points": point}])
    # an object without prompts writes nothing, so its name cannot collide
    assert len(hostkit.prompts_document([{"id": 1, "name": "x", "points": point},
                                         {"id": 2, "name": "x"}])["objects"]) == 1


@pytest.mark.parametrize("name", ["hero", "my car", "1", "7up", "", "___", "é-clair", "a.b", "-x", "obj 2!"])
def test_matte_names_are_the_bridges(name):
    assert hostkit.matte_name(name) == safe_name(name)


def test_coordinates():
    assert hostkit.flip_y(20, 30, 48) == (20.0, 18.0) and hostkit.flip_y(*hostkit.flip_y(3, 4, 10), 10) == (3, 4)
    assert hostkit.from_normalised(0.25, 0.75, 1920, 1080) == (480.0, 270.0)
    assert hostkit.from_normalised(0, 0, 1920, 1080) == (0.0, 1080.0)      # bottom-left corner
    assert hostkit.to_normalised(480, 270, 1920, 1080) == (0.25, 0.75)


# --- frame patterns ----------------------------------------------------------------------------

@pytest.mark.parametrize("pattern", ["/m/a.%04d.exr", "/m/a.####.exr", "/m/a.@@@.dpx", "/m/a_%d.png",
                                     "/m/v2/{name}.%05d.exr", "rel/{name}_#.tif"])
@pytest.mark.parametrize("frame", [0, 7, 1001, 123456, -3])
def test_frame_file_is_cores(pattern, frame):
    assert hostkit.frame_file(pattern, frame, "my hat") == str(format_frame_path(pattern, frame, safe_name("my hat")))


def test_frame_tokens_and_numbered_files():
    assert [hostkit.frame_token(p) for p in ("a.%04d.exr", "a.####.exr", "a.@@.dpx", "a.%d.png", "v1/a.exr")] == \
        ["%04d", "####", "@@", "%d", None]
    assert hostkit.frame_token("/s/%04d/a.exr") is None      # only the file name holds the token
    assert hostkit.frame_file("/m/movie.mov", 5) == "/m/movie.mov"
    seq = hostkit.sequence_of_file
    assert seq("/x/plate.1001.exr") == ("/x/plate.####.exr", 1001)
    assert seq("/x/v2/plate_0042.j2c") == ("/x/v2/plate_####.j2c", 42)   # digits in the extension do not count
    assert seq("/x/shot3_0007_final.png", style="%") == ("/x/shot3_%04d_final.png", 7)
    assert seq("/x/plate.exr") is None


def test_patterns_from_the_paths_the_bridge_reports():
    f = hostkit.pattern_from_path
    assert f("/m/v2.1002/SAM2Matte1.hat_2.1002.exr", 1002) == "/m/v2.1002/SAM2Matte1.hat_2.%04d.exr"
    assert f("C:\\m\\n.o1002.0007.exr", 7) == "C:\\m\\n.o1002.%04d.exr"
    assert f("/m/car.1001.exr", 1001, "####") == "/m/car.####.exr"
    assert f("/m/car.-005.exr", -5) == "/m/car.%04d.exr"
    assert f("/m/car.exr", 3) == "/m/car.exr"


def test_frames_on_disk_match_cores_scan(tmp_path):
    for name in ("m.0998.exr", "m.0999.exr", "m.1000.exr", "m.12345.exr", "m.042.exr", "m.0007.exr.tmp",
                 "n.1000.exr", "m.-0001.exr"):
        (tmp_path / name).write_bytes(b"")
    for pattern in ("m.%04d.exr", "m.####.exr", "m.%d.exr", "m.%03d.exr"):
        full = str(tmp_path / pattern)
        assert hostkit.frames_on_disk(full) == parse_pattern(full).scan(), pattern
    assert hostkit.frames_on_disk(str(tmp_path / "m.%04d.exr")) == [-1, 998, 999, 1000, 12345]
    assert hostkit.frames_on_disk(str(tmp_path / "gone" / "m.%04d.exr")) == []


# --- connecting --------------------------------------------------------------------------------

def test_which_python_starts_the_bridge(monkeypatch):
    monkeypatch.delenv("SAMROTO_PYTHON", raising=False)
    assert hostkit.samroto_python("", "/installed/python") == "/installed/python"
    assert hostkit.samroto_python(None, None) == ""
    monkeypatch.setenv("SAMROTO_PYTHON", " /studio/python ")
    assert hostkit.samroto_python("", "/installed/python") == "/studio/python"
    assert hostkit.samroto_python("/host/setting", "/installed/python") == "/host/setting"
    assert hostkit.installed_python("no_such_plugin_package") == ""
    assert hostkit.serve_args("m.yaml", "c.pt", "cpu") == \
        ["--model", "m.yaml", "--checkpoint", "c.pt", "--device", "cpu"]
    assert hostkit.serve_args("", "", "auto") == []


def test_connect_says_what_to_set(tmp_path, monkeypatch):
    monkeypatch.setenv("SAMROTO_CONFIG_DIR", str(tmp_path / "user"))   # never the real user's bridge
    how = "set it in the plugin's settings"
    with pytest.raises(hostkit.HostError) as no_python:
        hostkit.connect(config_dir=str(tmp_path), how_to_set=how)
    assert str(no_python.value).startswith("The samroto bridge is not running and no samroto Python is set: "
                                           "set it in the plugin's settings, or run `samroto serve`.")
    assert str(tmp_path / "bridge.json") in str(no_python.value) and no_python.value.code == "not_running"
    with pytest.raises(hostkit.HostError, match="The samroto Python /no/such/python does not exist: set it in"):
        hostkit.connect(python="/no/such/python", config_dir=str(tmp_path), how_to_set=how)
    with pytest.raises(hostkit.HostError, match=r"Cannot start the samroto bridge with /bin/false: the bridge "
                                                r"exited at start \(status 1\)"):
        hostkit.connect(python="/bin/false", config_dir=str(tmp_path), how_to_set=how, timeout=20)
    (tmp_path / "bridge.json").write_text(json.dumps({"address": {"family": "unix", "path": str(tmp_path / "s")},
                                                      "token": "t", "protocol": 999, "pid": 1}))
    with pytest.raises(hostkit.HostError, match="refused the connection: .*speaks protocol 999") as old:
        hostkit.connect(python="/bin/false", config_dir=str(tmp_path))
    assert old.value.code == "version_mismatch"


# --- the tracking job --------------------------------------------------------------------------

def prompts(*frames):
    return hostkit.prompts_document([{"id": 1, "name": "hero", "points": [(f, 5, 5, True) for f in frames]},
                                     {"id": 2, "name": "my car", "points": [(frames[0], 9, 9, True)]}])


def run(job, timeout=20):
    events = job.start().wait(timeout)
    assert not job.running, "the job did not end"
    return events


def test_job_hands_the_host_typed_events(tmp_path):
    bridge = FakeBridge()
    mattes = hostkit.file_mattes(str(tmp_path / "{name}.####.exr"))
    shot = hostkit.Shot("/p/plate.%04d.exr", prompts(1003), 1001, 1005, mattes=mattes, direction="both", start=1003)
    job = hostkit.TrackingJob(shot, lambda: bridge)
    assert (job.state, job.total, job.fraction) == ("running", 5, 0.0)
    events = run(job)
    assert [type(e).__name__ for e in events] == ["Matte", "Progress"] * 5 + ["Done"]
    assert [e.frame for e in events if isinstance(e, hostkit.Matte)] == [1003, 1004, 1005, 1002, 1001]
    first = events[0]
    assert first.objects == [{"id": 1, "name": "hero"}, {"id": 2, "name": "my car"}]
    assert first.by_id() == {1: str(tmp_path / "hero.1003.exr"), 2: str(tmp_path / "my_car.1003.exr")}
    assert events[1] == hostkit.Progress(1, 5, 1003)
    patterns = {1: str(tmp_path / "hero.####.exr"), 2: str(tmp_path / "my_car.####.exr")}
    assert events[-1] == hostkit.Done((1001, 1002, 1003, 1004, 1005), patterns)
    assert (job.state, job.done, job.total, job.fraction, job.patterns) == ("done", 5, 5, 1.0, patterns)
    assert job.summary() == "Tracked 5 frames." and bridge.closed
    (call,) = bridge.calls
    assert call == dict(source="/p/plate.%04d.exr", prompts=shot.prompts, direction="both", start=1003,
                        first=1001, last=1005, source_first=None, source_last=None, color=None, model=None,
                        options={}, mattes=mattes)
    assert job.poll() == []   # every event is handed over once


def test_patterns_keep_the_token_the_host_asked_for(tmp_path):
    mattes = hostkit.file_mattes(str(tmp_path / "n.{name}.%04d.exr"))
    shot = hostkit.Shot("/p/a.mov", prompts(3), 0, 9, mattes=mattes, direction="forward")
    job = hostkit.TrackingJob(shot, FakeBridge)
    events = run(job)
    assert job.frames == set(range(3, 10)) and job.total == 7     # the bridge's count: from frame 3
    assert events[-1].patterns == {1: str(tmp_path / "n.hero.%04d.exr"), 2: str(tmp_path / "n.my_car.%04d.exr")}


def test_cancel_keeps_the_frames_done(tmp_path):
    bridge = FakeBridge(hold_after=2)
    shot = hostkit.Shot("/p/a.mov", prompts(0), 0, 9, mattes=hostkit.file_mattes(str(tmp_path / "{name}.%04d.exr")),
                        direction="forward", start=0)
    job = hostkit.TrackingJob(shot, lambda: bridge).start()
    assert bridge.reached.wait(10)
    job.cancel()
    events = job.wait(10)
    assert isinstance(events[-1], hostkit.Cancelled) and events[-1].frames == (0, 1)
    assert job.state == "cancelled" and job.summary() == "Cancelled after 2 frames (those mattes are kept)."
    assert bridge.closed and bridge.frames == [0, 1]


@pytest.mark.parametrize("step, error, message", [
    ("open", client.BridgeIOError("cannot read /p/a.mov"),
     "The bridge cannot open /p/a.mov: cannot read /p/a.mov (io_error)"),
    ("prompts", client.BadPrompts("frame 99 is not in the source"),
     "The bridge rejected the prompts: frame 99 is not in the source (bad_prompts)"),
    ("propagate", client.EngineError("out of memory"), "Tracking failed on the bridge: out of memory (engine_error)"),
])
def test_bridge_errors_become_messages_with_their_code(step, error, message):
    class Refusing(FakeBridge):
        def track_shot(self, *args, **kwargs):
            error.step = step   # as Client.track_shot marks the step that failed
            raise error

    bridge = Refusing()
    job = hostkit.TrackingJob(hostkit.Shot("/p/a.mov", prompts(0), 0, 9), lambda: bridge)
    events = run(job)
    assert events == [hostkit.Error(error.code, message)] and job.error == events[0]
    assert (job.state, job.summary(), bridge.closed) == ("error", message, True)


def test_connect_and_unexpected_failures_reach_the_host(capsys):
    def unreachable():
        raise hostkit.HostError("The samroto bridge is not running ...", "not_running")

    events = run(hostkit.TrackingJob(hostkit.Shot("/p/a.mov", prompts(0), 0, 9), unreachable))
    assert events == [hostkit.Error("not_running", "The samroto bridge is not running ...")]

    class Broken(FakeBridge):
        def track_shot(self, *args, **kwargs):
            raise RuntimeError("a bug")

    events = run(hostkit.TrackingJob(hostkit.Shot("/p/a.mov", prompts(0), 0, 9), Broken))
    assert events == [hostkit.Error("internal", "Tracking failed: RuntimeError: a bug")]
    assert "RuntimeError: a bug" in capsys.readouterr().err   # the traceback goes to the host's console


# --- a host's other long jobs (segment everything) ---------------------------------------------

def test_progress_job_hands_over_progress_and_the_result():
    go = threading.Event()

    def work(progress, cancelled):
        for done in (1, 2, 3):
            progress(done, 3)
        assert go.wait(10)  # the host polls while the work runs: nothing blocks, nothing ends yet
        return ["mask 1", "mask 2"]

    job = hostkit.ProgressJob(work, what="Show masks").start()
    end = time.time() + 10
    while job.poll() == "running" and job.done < 3:
        assert time.time() < end
        time.sleep(0.01)
    assert (job.state, job.done, job.total, job.result) == ("running", 3, 3, None)
    go.set()
    assert job.wait(10) == "done"
    assert (job.done, job.total, job.fraction, job.result, job.message) == (3, 3, 1.0, ["mask 1", "mask 2"], "")


def test_progress_job_cancelled_and_failed():
    reached = threading.Event()

    def until_cancelled(progress, cancelled):
        progress(1, 10)
        reached.set()
        assert cancelled.wait(10)
        # what LiveSession.segment raises once the bridge stopped
        raise hostkit.HostError("Segment Everything was cancelled on frame 7.", "cancelled")

    job = hostkit.ProgressJob(until_cancelled, what="Show masks").start()
    assert reached.wait(10)
    job.cancel()
    assert job.wait(10) == "cancelled"
    assert (job.done, job.total, job.result, job.message) == (1, 10, None, "Show masks cancelled.")

    def refused(progress, cancelled):
        raise hostkit.HostError("The bridge could not find the automatic masks on frame 7: bad", "bad_request")

    job = hostkit.ProgressJob(refused, what="Show masks").start()
    assert (job.wait(10), job.message) == ("error", "The bridge could not find the automatic masks on frame 7: bad")

    def broken(progress, cancelled):
        raise RuntimeError("a bug")

    job = hostkit.ProgressJob(broken, what="Show masks").start()
    assert (job.wait(10), job.message) == ("error", "Show masks failed: RuntimeError: a bug")


def test_expected_frames_before_the_bridge_counts():
    shot = lambda **kw: hostkit.Shot("/p", {}, 10, 19, **kw)  # noqa: E731
    assert shot(direction="forward", start=15).expected_frames() == 5
    assert shot(direction="backward", start=15).expected_frames() == 6
    assert shot(direction="both", start=15).expected_frames() == 10
    assert shot(direction="forward").expected_frames() == 10   # start unknown: at most the range


# --- what a Track covers -----------------------------------------------------------------------

def test_the_frames_a_track_covers():
    """Forward from the current frame to the end of the range, backward from its start to the
    current frame, both the whole range, "frame" the current frame; clamped into the range."""
    assert hostkit.shot_frames("forward", 1001, 1010, 1004) == (1004, 1010)
    assert hostkit.shot_frames("backward", 1001, 1010, 1004) == (1001, 1004)
    assert hostkit.shot_frames("both", 1001, 1010, 1004) == (1001, 1010)
    assert hostkit.shot_frames("frame", 1001, 1010, 1004) == (1004, 1004)
    assert hostkit.shot_frames("forward", 1001, 1010, 990) == (1001, 1010)
    assert hostkit.shot_frames("backward", 1001, 1010, 2000) == (1001, 1010)


def test_only_the_prompts_on_the_shot_are_sent():
    doc = prompts(1001, 1005)   # hero on 1001 and 1005, my car on 1001
    kept = hostkit.prompts_within(doc, 1003, 1010, "forward")
    assert kept == {"version": doc["version"], "objects": [dict(doc["objects"][0], prompts=[doc["objects"][0]["prompts"][1]])]}
    assert hostkit.prompts_within(doc, 1001, 1005) == doc
    with pytest.raises(hostkit.HostError, match=r"No prompt on frames 1006-1010, which this Track covers "
                                                r"\(forward from the current frame to the end of the range\)") as none:
        hostkit.prompts_within(doc, 1006, 1010, "forward")
    assert none.value.code == "no_prompts"
    with pytest.raises(hostkit.HostError, match=r"No prompt on frame 1002, .*\(the current frame alone\)"):
        hostkit.prompts_within(doc, 1002, 1002, "frame")


# --- spline shapes -----------------------------------------------------------------------------

def test_export_shapes_says_what_to_do(tmp_path):
    """Convert to Roto / Mask run samroto's exporter in samroto's Python; every failure is a
    sentence for the artist (the exporter's own reason when it ran)."""
    out = tmp_path / "mask.json"
    with pytest.raises(hostkit.HostError, match="no mattes to convert yet: Track first"):
        hostkit.export_shapes(sys.executable, "blender", out, [])
    objects = [("hero", str(tmp_path / "hero.####.exr"))]
    with pytest.raises(hostkit.HostError, match="samroto's Python is unknown, and the shapes are fitted there: "
                                                "set it here") as unknown:
        hostkit.export_shapes("", "blender", out, objects, how_to_set="set it here")
    assert unknown.value.code == "no_python"
    with pytest.raises(hostkit.HostError, match="The samroto Python /no/such/python does not exist"):
        hostkit.export_shapes("/no/such/python", "blender", out, objects)
    bare = tmp_path / "python"   # a Python without samroto
    bare.write_text("#!/bin/sh\necho \"ModuleNotFoundError: No module named 'samroto'\" >&2\nexit 1\n")
    bare.chmod(0o755)
    with pytest.raises(hostkit.HostError, match="has no samroto installed: set it here"):
        hostkit.export_shapes(str(bare), "blender", out, objects, how_to_set="set it here")
    from samroto.core.io.mattes import MatteWriter

    with MatteWriter(str(tmp_path / "{name}.####.exr"), layout="files") as writer:   # tracked, never found
        writer.write(1001, {"hero": np.zeros((8, 8), np.float32)})
    with pytest.raises(hostkit.HostError, match="Fitting the shapes failed: every matte is empty: there is "
                                                "nothing to convert") as empty:
        hostkit.export_shapes(sys.executable, "blender", out, objects)
    assert empty.value.code == "export_failed" and not out.exists()


# --- review: SAM 2's object score per tracked frame (protocol 1.3) -----------------------------

def test_lost_frames_and_the_next_one_either_way():
    scores = {1001: 2.5, 1002: -2.4, 1003: 0.0, 1004: 0.8, 1006: -0.1}
    assert hostkit.lost_frames(scores) == [1002, 1003, 1006]
    assert hostkit.next_lost(scores, 1001) == 1002 and hostkit.next_lost(scores, 1003) == 1006
    assert hostkit.next_lost(scores, 1006) is None and hostkit.next_lost(scores, 1005, forward=False) == 1003
    assert hostkit.next_lost(scores, 1002, forward=False) is None and hostkit.lost_frames({}) == []


def test_a_track_reports_each_frames_object_score_and_lost_means_empty(tmp_path):
    """A real (in-process) bridge on the micro model: every matte event carries each object's
    score; where it is <= 0 SAM 2 lost the object and the matte is empty."""
    from live_bridge import PLATE, in_process_bridge

    from samroto.core.shot import read_mask

    prompts = hostkit.prompts_document([{"id": 1, "name": "a", "points": [(1001, 66.9, 25.2, True)]},
                                        {"id": 2, "name": "b", "points": [(1002, 56.0, 68.0, True)]}])
    with in_process_bridge(tmp_path / "cfg") as config_dir:
        shot = hostkit.Shot(str(PLATE / "plate.%04d.png"), prompts, 1001, 1008,
                            mattes=dict(hostkit.file_mattes(str(tmp_path / "m" / "{name}.%04d.png"), "png"),
                                        finish=False))
        job = hostkit.TrackingJob(shot, lambda: client.Client.connect(config_dir=config_dir, start=False)).start()
        events = job.wait(120)
    assert isinstance(events[-1], hostkit.Done), events[-1]
    assert sorted(job.scores) == [1, 2] and all(sorted(s) == list(range(1001, 1009)) for s in job.scores.values())
    lost = {obj_id: hostkit.lost_frames(s) for obj_id, s in job.scores.items()}
    assert any(lost.values()), job.scores  # the micro model loses them here and there
    for obj_id, name in ((1, "a"), (2, "b")):
        for frame, score in job.scores[obj_id].items():
            matte = read_mask(hostkit.frame_file(job.patterns[obj_id], frame), 112, 80)
            if score <= 0:
                assert not matte.any(), (name, frame, score)
