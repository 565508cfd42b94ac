"""The interactive loop (issue 18): a prompt on a frame gives that frame's matte at once from
its cached image features; SAM 2's three candidates for a single click, a chosen one made
that frame's mask prompt (what tracking then uses, also after a rebuild from the host's
prompts); a correction on a tracked frame re-tracked from there keeping the frames before
it. Core (VideoSession, core.shot) and the bridge (an in-process BridgeServer on the micro
fixture model, driven by the stdlib client)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from samroto.core.io import open_frames
from samroto.core.model.build import build_model
from samroto.core.prompts import from_dict, validate
from samroto.core.shot import choose_candidate, prompt_frame, read_mask
from samroto.core.video import VideoSession
from live_bridge import HERO, in_process_bridge

DATA = Path(__file__).parent / "data" / "sam2_parity"
W, H, N, FIRST = 112, 80, 8, 1001  # tests/data/bridge: a plate the micro model finds objects in
PLATE = str(Path(__file__).parent / "data" / "bridge" / "plate.%04d.png")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(DATA / "config.yaml", DATA / "checkpoint.pt", device="cpu")


@pytest.fixture(scope="module")
def plate():
    return PLATE


def click(frame, x, y, obj=1, name="disc", label=1):
    prompts = from_dict({"version": 1, "objects": [{"id": obj, "name": name, "prompts": [
        {"frame": frame, "points": [[x, y]], "labels": [label]}]}]})
    return prompts


def disc_at(i):
    return HERO if i != 3 else (40.0, 50.0)


# ---------------------------------------------------------------- core


def test_second_click_on_a_frame_runs_no_encoder_and_equals_a_new_session(model, plate):
    frames = open_frames(plate)
    session = VideoSession(model, frames, precision="float32")
    x, y = disc_at(2)
    first = prompt_frame(session, click(1003, x, y), frames)
    assert first.encoded and first.encoder_runs == 1 and not first.correction
    assert first.candidates is not None  # one click: SAM 2's three masks
    logits, ious, best = first.candidates
    assert logits.shape == (3, 64, 64) and ious.shape == (3,) and best == int(np.argmax(ious))
    assert np.array_equal(logits[best], first.logits[0])  # the prompt gave the best one

    two = from_dict({"version": 1, "objects": [{"id": 1, "name": "disc", "prompts": [
        {"frame": 1003, "points": [[x, y], [5, 5]], "labels": [1, 0]}]}]})
    second = prompt_frame(session, two, frames)
    assert not second.encoded and second.encoder_runs == 1  # the frame's features were cached
    assert second.candidates is None  # two points: one mask
    # set afresh: exactly what a new session makes of the same prompts (a track writes that)
    fresh = VideoSession(model, frames, precision="float32")
    assert np.array_equal(prompt_frame(fresh, two, frames).logits, second.logits)


def test_a_chosen_candidate_is_the_frames_mask_prompt(model, plate, tmp_path):
    frames = open_frames(plate)
    session = VideoSession(model, frames, precision="float32")
    x, y = disc_at(0)
    got = prompt_frame(session, click(1001, x, y), frames)
    logits, ious, best = got.candidates
    pick = (best + 1) % 3
    path = tmp_path / "disc.cand.1001.png"
    obj_ids, chosen, mask = choose_candidate(session, frames, 1001, 1, pick, mask_path=path)
    big = torch.nn.functional.interpolate(torch.as_tensor(logits)[:, None], size=(H, W), mode="bilinear",
                                          align_corners=False)[:, 0].numpy()
    assert np.array_equal(mask, big[pick] > 0)
    assert np.array_equal(read_mask(path, W, H), mask)  # the file the host stores reads back the same
    assert session.candidates(0, 1, low_res=True) is not None  # another one may still be chosen
    tracked = [lg for _, _, lg in session.propagate(low_res=True)]
    # the same mask prompt from the file, in a new session: the same track
    fresh = VideoSession(model, frames, precision="float32")
    doc = from_dict({"version": 1, "objects": [{"id": 1, "name": "disc", "prompts": [
        {"frame": 1001, "mask": str(path)}]}]})
    validate(doc, frames.frame_numbers, W, H)
    from samroto.core.shot import apply_prompts
    list(apply_prompts(fresh, doc, frames, low_res=True))
    again = [lg for _, _, lg in fresh.propagate(low_res=True)]
    assert all(np.array_equal(a, b) for a, b in zip(tracked, again))
    with pytest.raises(ValueError, match="candidate must be 0..2"):
        session.choose_candidate(0, 1, 3)


# ---------------------------------------------------------------- the bridge


@pytest.fixture(scope="module")
def bridge(model, tmp_path_factory):
    """An in-process bridge on the micro model (mattes: SAM 2's own decision)."""
    with in_process_bridge(tmp_path_factory.mktemp("cfg"), model) as config:
        yield config


@pytest.fixture
def client(bridge):
    from samroto.bridge.client import Client

    c = Client.connect(config_dir=str(bridge))
    yield c
    c.close()


def read(path):
    return np.asarray(read_mask(path, W, H), np.float32)


def test_prompt_frame_on_the_bridge(client, plate, tmp_path):
    from samroto.bridge.client import BadPrompts, BadRequest, FrameOutOfRange

    session = client.open_session(plate)
    x, y = disc_at(1)
    mattes = {"transport": "file", "pattern": str(tmp_path / "{name}.%04d.png"), "format": "png"}
    cands = {"transport": "file", "pattern": str(tmp_path / "cand" / "{name}.%04d.png"), "format": "png"}
    reply, got, candidates = session.prompt_frame(1002, 1, {"points": [[x, y]], "labels": [1]}, name="disc",
                                                  mattes=mattes, candidates=cands)
    assert reply["encoded"] and reply["encoder_runs"] == 1 and not reply["correction"]
    assert [c["index"] for c in reply["candidates"]] == [0, 1, 2] and reply["best"] in (0, 1, 2)
    assert all(0 < c["iou"] < 2 for c in reply["candidates"])
    assert [m.frame for m in got] == [1002] and got[0].paths == [str(tmp_path / "disc.1002.png")]
    assert [o["name"] for o in candidates.objects] == ["disc_candidate1", "disc_candidate2", "disc_candidate3"]
    assert [o["iou"] for o in candidates.objects] == [c["iou"] for c in reply["candidates"]]
    best = read(candidates.paths[reply["best"]])
    assert np.array_equal(read(got[0].paths[0]), best)  # the frame's matte is the best candidate

    # a second click on the same frame: no image encoder; a box on another frame: one more
    reply2, got2, none = session.prompt_frame(1002, 1, {"points": [[x, y], [2, 2]], "labels": [1, 0]},
                                              mattes=mattes, candidates=cands)
    assert not reply2["encoded"] and reply2["encoder_runs"] == 1 and reply2["candidates"] == [] and none is None
    info = session.session_info()
    assert info["encoder_runs"] == 1 and info["features"]["hits"] >= 1 and info["prompted"] == [1002]
    assert info["objects"] == [{"id": 1, "name": "disc"}]

    with pytest.raises(BadPrompts):
        session.prompt_frame(1002, 1, {"points": [[x, y]]})
    with pytest.raises(BadPrompts, match="outside"):
        session.prompt_frame(1002, 1, {"points": [[W + 50, y]], "labels": [1]})
    with pytest.raises(FrameOutOfRange):
        session.prompt_frame(999, 1, {"points": [[x, y]], "labels": [1]})
    with pytest.raises(BadRequest, match="candidates"):  # two points made one mask
        session.choose_candidate(1002, 1, 1)
    assert client.ping() == {} or True


def test_choosing_candidate_changes_the_track_and_survives_a_rebuild(client, plate, tmp_path):
    x, y = disc_at(0)
    click1 = {"points": [[x, y]], "labels": [1]}
    inline = {"transport": "inline", "dtype": "float32"}

    plain = client.open_session(plate)
    reply, _, _ = plain.prompt_frame(1001, 1, click1, name="disc")
    default = to_arrays(plain.propagate(direction="forward", mattes=inline))
    pick = (reply["best"] + 1) % 3

    session = client.open_session(plate)
    session.prompt_frame(1001, 1, click1, name="disc")
    mask = str(tmp_path / "disc.mask.1001.png")
    chosen, got = session.choose_candidate(1001, 1, pick, mask=mask, mattes=inline)
    assert chosen["mask"] == mask and chosen["candidate"] == pick and Path(mask).is_file()
    assert chosen["encoder_runs"] == 1  # choosing runs no image encoder
    tracked = to_arrays(session.propagate(direction="forward", mattes=inline))
    assert tracked.keys() == default.keys()
    assert any(not np.array_equal(tracked[f], default[f]) for f in tracked)  # the choice changed the track
    chosen_mask, got_mask = read_mask(mask, W, H), tracked[1001][0] > 0.5
    assert (chosen_mask & got_mask).sum() / (chosen_mask | got_mask).sum() > 0.9  # the frame shows that candidate

    # the host stores the chosen mask as the frame's prompt: a new session gives the same track
    rebuilt = client.open_session(plate)
    rebuilt.add_prompts({"version": 1, "objects": [{"id": 1, "name": "disc", "prompts": [
        {"frame": 1001, "mask": mask}]}]})
    again = to_arrays(rebuilt.propagate(direction="forward", mattes=inline))
    assert all(np.array_equal(again[f], tracked[f]) for f in tracked)


def to_arrays(events):
    out = {}
    for e in events:
        if e.matte is not None:
            m = e.matte
            out[e.frame] = np.frombuffer(m.data, np.float32).reshape(m.shape)
    return out


def test_a_correction_re_tracks_from_there_and_keeps_the_frames_before(client, plate):
    """On a live session: track, correct a tracked frame (answered at once, using the object's
    memory), propagate forward from it: only it and later frames are tracked again."""
    inline = {"transport": "inline", "dtype": "float32", "values": "logits"}
    session = client.open_session(plate)
    x, y = disc_at(0)
    session.prompt_frame(1001, 1, {"points": [[x, y]], "labels": [1]}, name="disc")
    before = to_arrays(session.propagate(direction="forward", mattes=inline))
    assert sorted(before) == list(range(1001, 1001 + N))
    cx, cy = disc_at(3)
    reply, got, _ = session.prompt_frame(1004, 1, {"points": [[cx, cy], [3, 3]], "labels": [1, 0]},
                                         mattes=inline)
    assert reply["correction"] and not reply["encoded"]  # tracked: features cached, memory used
    after = to_arrays(session.propagate(direction="forward", start=1004, mattes=inline))
    assert sorted(after) == list(range(1004, 1001 + N))  # the frames before the correction are not touched
    assert np.array_equal(after[1004], to_arrays_one(got))
    assert any(not np.array_equal(after[f], before[f]) for f in range(1005, 1001 + N))
    info = session.session_info()
    assert info["prompted"] == [1001, 1004] and info["encoder_runs"] == N  # every frame encoded once


def to_arrays_one(mattes):
    (m,) = mattes
    return np.frombuffer(m.data, np.float32).reshape(m.shape)
