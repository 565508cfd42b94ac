"""End to end: the installed Nuke plugin (on the fake ``nuke``) tracks through a real
`samroto serve` on the micro fixture checkpoint: Read fast path, render-to-EXR path,
progress, cancel, and internal Read nodes on mattes with the plate's frame numbers. The
mattes are `samroto track`'s on the same shot, bit for bit (tests/plugin_parity.py): both
ways over the whole input, backward from the current frame over a custom sub-range, and a
movie Read trimmed in Nuke (the movie's own frames, as `samroto track --range` counts
them)."""

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fake_nuke"))
import nuke_testing as nt  # noqa: E402
import plugin_parity  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "sam2_parity"
SAMROTO = Path(sys.executable).with_name("samroto")

@pytest.fixture(scope="module")
def bridge(tmp_path_factory):
    """A private `samroto serve` on the micro checkpoint; the plugin finds it by discovery."""
    with plugin_parity.running_bridge(tmp_path_factory.mktemp("config")) as config:
        yield config


@pytest.fixture
def nk(bridge, monkeypatch, tmp_path):
    monkeypatch.setenv("SAMROTO_CONFIG_DIR", str(bridge))
    dot_nuke = tmp_path / ".nuke"
    out = subprocess.run([str(SAMROTO), "install", "nuke", "--target", str(dot_nuke),
                          "--python", sys.executable], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    nuke, plugin = nt.load(monkeypatch, plugin_dir=dot_nuke / "samroto")
    importlib.import_module("samroto_nuke.node")
    return nuke, plugin


def plate_node(nuke, plugin, tmp_path, frames):
    read = nuke.nodes.Read(file=nt.make_plate(tmp_path / "plate", frames=frames),
                           first=frames[0], last=frames[-1], colorspace="linear")
    nuke.root()["first_frame"].setValue(frames[0])
    nuke.root()["last_frame"].setValue(frames[-1])
    nuke._SELECTED[:] = [read]
    node = plugin.create_node()
    node["live"].setValue(False)   # the live matte has its own tests (test_nuke_live.py)
    node["matte_dir"].setValue(str(tmp_path / "mattes"))
    return read, node


def wait(nuke, plugin, node, timeout=120):
    job = plugin.tracking.ACTIVE.get(node.fullName())
    assert job is not None, nuke._MESSAGES
    end = time.time() + timeout
    while not job.finished.is_set():
        assert time.time() < end, "tracking did not finish"
        nuke._process_events(0.05)
    return job


def prompt_two_objects(nuke, node):
    nuke.frame(1001)
    node["add_pos"].execute()
    node["o1_pos1"].setValueAt(20.0, 1001, 0)
    node["o1_pos1"].setValueAt(26.0, 1001, 1)
    nuke.frame(1003)
    node["o1_pos1"].setValueAt(26.0, 1003, 0)
    node["o1_pos1"].setValueAt(26.0, 1003, 1)
    node["add_object"].execute()
    nuke.frame(1002)
    node["add_box"].execute()
    for i, v in enumerate((40, 2, 62, 20)):
        node["o2_box1"].setValueAt(v, 1002, i)


def same_as_cli(job, node, tmp_path):
    """The job's mattes against `samroto track` on its shot (the Read's files, the prompts
    the node sent, its direction and frames, the Read's colour space)."""
    req = job.request
    names = {o["id"]: o["name"] for o in req["prompts"]["objects"]}
    patterns = {names[i]: node["o%d_matte" % i].value() for i in names}
    first, last = req.get("shot", req["range"])   # the source's own frames
    return plugin_parity.assert_same_as_cli(tmp_path / "cli", patterns, job.done_frames, req["source"]["path"],
                                            req["prompts"], req["direction"], first, last, req["source"]["color"])


def test_track_both_through_the_bridge_read_fast_path(nk, tmp_path):
    nuke, plugin = nk
    frames = list(range(1001, 1005))
    read, node = plate_node(nuke, plugin, tmp_path, frames)
    prompt_two_objects(nuke, node)
    node["track_both"].execute()
    job = wait(nuke, plugin, node)
    assert (job.state, nuke._MESSAGES) == ("finished", [])
    assert not job.request["source"]["rendered"] and job.request["source"]["path"] == read["file"].value()
    assert sorted(job.done_frames) == frames
    task = nuke._TASKS[-1]
    assert task.progress == 100 and task.messages[-1].endswith("(4 of 4)")
    inside = {n.name(): n for n in node.nodes()}
    for obj in (1, 2):
        matte = inside["Matte_o%d" % obj]
        pattern = matte["file"].value()
        assert pattern == node["o%d_matte" % obj].value() and "object%d" % obj in pattern
        assert (matte["first"].value(), matte["last"].value()) == (1001, 1004)
        for f in frames:   # the plate's own frame numbers, at the plate's size
            pixels, channels = nt.read_exr(pattern % f)
            assert pixels.shape[:2] == (48, 64) and channels == ["A"]
        assert inside["Copy_o%d" % obj].input(1) is matte
    assert node["status"].value() == "finished: 4 frame(s) tracked (1001-1004)"
    # both ways over the input = `samroto track --direction both --range 1001-1004`, bit for bit
    covered = same_as_cli(job, node, tmp_path)
    assert covered["object1"] and covered["object2"]


def test_backward_over_a_custom_range_is_the_cli_shot(nk, tmp_path):
    """Backward from the current frame over a custom range: the shot is the range's start
    to the current frame (prompts elsewhere stay in the node), as `samroto track --range`."""
    nuke, plugin = nk
    read, node = plate_node(nuke, plugin, tmp_path, list(range(1001, 1009)))
    prompt_two_objects(nuke, node)          # o1 points on 1001 and 1003, o2's box on 1002
    nuke.frame(1007)
    node["o1_pos1"].setValueAt(40.0, 1007, 0)  # a key after the current frame: not sent
    node["o1_pos1"].setValueAt(26.0, 1007, 1)
    node["range"].setValue("custom")
    node["range_first"].setValue(1002)
    node["range_last"].setValue(1007)
    nuke.frame(1005)
    node["track_backward"].execute()
    job = wait(nuke, plugin, node)
    assert job.state == "finished", job.message
    req = job.request
    assert (req["range"], req["direction"]) == ([1002, 1005], "backward")
    assert [[p["frame"] for p in o["prompts"]] for o in req["prompts"]["objects"]] == [[1003], [1002]]
    assert job.done_frames == [1002, 1003]   # from the last prompted frame back to the range's start
    covered = same_as_cli(job, node, tmp_path)
    assert covered["object1"] and covered["object2"]
    assert node["status"].value() == "finished: 2 frame(s) tracked (1002-1003)"


def test_render_path_and_cancel(nk, tmp_path):
    nuke, plugin = nk
    frames = list(range(1001, 1031))
    read, node = plate_node(nuke, plugin, tmp_path, frames)
    grade = nuke.nodes.Grade(multiply=0.9)
    grade.setInput(0, read)
    node.setInput(0, grade)
    prompt_two_objects(nuke, node)
    nuke.frame(1001)
    node["track_forward"].execute()
    job = plugin.tracking.ACTIVE[node.fullName()]
    assert job.request["source"]["rendered"]
    end = time.time() + 60
    while not job.done_frames:   # Nuke's main loop: it renders the input a frame at a time
        assert time.time() < end and not job.finished.is_set(), (job.message, nuke._MESSAGES)
        nuke._process_events(0.01)
    assert job.rendered == frames and len(list((tmp_path / "mattes" / "plate").glob("plate.*.exr"))) == 30
    nuke._cancel_progress()
    wait(nuke, plugin, node)
    assert job.state == "cancelled", (job.state, job.message)
    assert 1 <= len(job.done_frames) < 30
    pattern = node["o1_matte"].value()
    assert all(Path(pattern % f).is_file() for f in job.done_frames)
    assert node["status"].value().startswith("cancelled: ")


def test_the_node_starts_the_bridge_with_its_model(nk, tmp_path, monkeypatch):
    nuke, plugin = nk
    config = tmp_path / "own_config"      # no bridge runs here: the node must start one
    monkeypatch.setenv("SAMROTO_CONFIG_DIR", str(config))
    read, node = plate_node(nuke, plugin, tmp_path, [1001, 1002])
    node["model"].setValue("custom")
    node["model_config"].setValue(str(DATA / "config.yaml"))
    node["checkpoint"].setValue(str(DATA / "checkpoint.pt"))
    node["device"].setValue("cpu")
    prompt_two_objects(nuke, node)
    nuke.frame(1002)
    try:
        node["track_frame"].execute()
        job = wait(nuke, plugin, node)
        assert (job.state, job.done_frames, nuke._MESSAGES) == ("finished", [1002], []), job.message
        assert [o["id"] for o in job.request["prompts"]["objects"]] == [2]   # the prompts on 1002 alone
        assert "--checkpoint" in plugin.tracking.connect_args(job.request)["serve_args"]
    finally:   # stop the bridge the node started (through its discovery file)
        from samroto.bridge.client import Client, NotRunning

        try:
            with Client.connect(start=False, config_dir=str(config)) as bridge:
                bridge.shutdown()
        except NotRunning:
            pass


def test_trimmed_movie_read_is_the_cli_shot(nk, tmp_path):
    """Defect 5: a movie Read trimmed in Nuke to 4-9 (origfirst 1) is the movie's frames
    3-8; its mattes equal `samroto track movie --range 3-8` bit for bit, on Nuke's frames."""
    from samroto.core import sample

    nuke, plugin = nk
    movie = nt.make_movie(tmp_path / "movie", frames=12)
    read = nt.movie_read(nuke, movie, 12, 4, 9)
    nuke._SELECTED[:] = [read]
    node = plugin.create_node()
    node["live"].setValue(False)
    node["matte_dir"].setValue(str(tmp_path / "mattes"))
    (dx, dy), (sx, sy) = sample.shape_centres(5 - 1, 12, 64, 48)   # Nuke frame 5 is movie frame 4
    nuke.frame(5)
    node["add_pos"].execute()
    node["o1_pos1"].setValueAt(dx, 5, 0)
    node["o1_pos1"].setValueAt(48 - dy, 5, 1)   # Nuke's y goes up
    node["o1_name"].setValue("disc")
    node["track_both"].execute()
    job = wait(nuke, plugin, node)
    assert job.state == "finished", job.message
    assert job.done_frames == [3, 4, 5, 6, 7, 8]   # the movie's frames 3-8 (was 4-9: shifted by one)
    assert job.request["shot"] == [3, 8]
    assert job.request["prompts"]["objects"][0]["prompts"][0]["frame"] == 4   # the click, on the movie's frame
    covered = same_as_cli(job, node, tmp_path)
    assert covered["disc"]   # (the micro model's mattes are not all empty)
    assert node["status"].value() == "finished: 6 frame(s) tracked (4-9)"
    matte = {n.name(): n for n in node.nodes()}["Matte_o1"]
    assert (matte["first"].value(), matte["last"].value(), matte["frame"].value()) == (3, 8, "frame-1")
