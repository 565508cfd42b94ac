"""The bridge's ``segment`` op against a real ``samroto serve`` (the micro fixture model): the
same masks as ``samroto segment`` on the same frame, as files (EXR layers, per-mask PNGs that
are mask prompts, JSON, overlay) or inline run lengths, with progress events and cancel."""

import json
from pathlib import Path

import numpy as np
import pytest

from samroto.bridge.client import BadRequest, Cancelled, Client, FrameOutOfRange
from samroto.cli.main import main as cli
from samroto.core.automask import decode_rle
from test_bridge_server import FIXTURE, PLATE, Bridge

FRAME = 1002
# thresholds that let the random-weight micro model's masks through (tests/data/automask/README.md)
OPTIONS = {"points_per_side": 12, "pred_iou_thresh": 0.3, "stability_score_thresh": 0.4, "mask_threshold": 12.0}


@pytest.fixture(scope="module")
def bridge(tmp_path_factory):
    b = Bridge(tmp_path_factory.mktemp("cfg")).start()
    yield b
    b.stop()
    assert b.proc.returncode == 0, (b.config_dir / "serve.log").read_text()


@pytest.fixture(scope="module")
def client(bridge):
    c = Client.connect(config_dir=str(bridge.config_dir), start=False)
    yield c
    c.close()


@pytest.fixture(scope="module")
def session(client):
    return client.open_session(str(PLATE / "plate.%04d.png"), first=1001, last=1008)


def segment(client, **fields):
    """(events, reply) of one segment request."""
    events = [header for header, _ in client.stream("segment", **fields)]
    return events, client._last_reply[0]


@pytest.fixture(scope="module")
def by_cli(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli")
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in OPTIONS.items()]
    assert cli(["segment", str(PLATE / "plate.%04d.png"), "--frame", str(FRAME), "--out", str(out),
                "--model", str(FIXTURE / "config.yaml"), "--checkpoint", str(FIXTURE / "checkpoint.pt"),
                "--device", "cpu", "--precision", "float32", "--mask-files", "--quiet", *flags]) == 0
    return out, json.loads((out / f"masks.{FRAME}.json").read_text())


@pytest.fixture(scope="module")
def by_bridge(client, session, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bridge")
    events, reply = segment(client, session=session.id, frame=FRAME, options=OPTIONS,
                            masks={"transport": "file", "folder": str(folder), "mask_files": True})
    return folder, events, reply


def read_png_mask(path):
    import cv2

    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED) > 0


def test_the_bridge_finds_what_samroto_segment_finds(by_bridge, by_cli):
    _, _, reply = by_bridge
    _, listing = by_cli
    assert reply["count"] == len(reply["masks"]) == len(listing["masks"]) > 1
    for ours, theirs in zip(reply["masks"], listing["masks"]):
        assert (ours["id"], ours["layer"], ours["bbox"]) == (theirs["id"], theirs["layer"], theirs["bbox"])
        assert abs(ours["area"] - theirs["area"]) <= 1
        for key in ("predicted_iou", "stability_score"):
            assert abs(ours[key] - theirs[key]) < 1e-4
        a, b = read_png_mask(ours["file"]), read_png_mask(theirs["file"])
        assert a.shape == (80, 112) and (a ^ b).sum() <= 1 and a.sum() == ours["area"]


def test_files_progress_and_listing(by_bridge):
    import OpenImageIO as oiio

    folder, events, reply = by_bridge
    progress = [e for e in events if e.get("event") == "progress"]
    assert len(progress) >= 2 and all(e["frame"] == FRAME for e in progress)
    assert [e["done"] for e in progress] == sorted(e["done"] for e in progress)
    assert progress[-1]["done"] == progress[-1]["total"] == OPTIONS["points_per_side"] ** 2
    files = reply["files"]
    assert set(files) == {"exr", "overlay", "json"} and all(Path(p).parent == folder for p in files.values())
    spec = oiio.ImageInput.open(files["exr"]).spec()
    assert (spec.width, spec.height) == (112, 80)
    assert list(spec.channelnames) == ["A"] + [f"mask{i:03d}.A" for i in range(1, reply["count"] + 1)]
    listing = json.loads(Path(files["json"]).read_text())
    assert listing["masks"] == reply["masks"] and listing["frame"] == FRAME
    assert Path(files["overlay"]).stat().st_size > 0


def test_inline_run_lengths_are_the_same_masks(client, session, by_bridge):
    _, _, files = by_bridge
    _, reply = segment(client, session=session.id, frame=FRAME, options=OPTIONS, masks={"transport": "inline"})
    assert [m["bbox"] for m in reply["masks"]] == [m["bbox"] for m in files["masks"]]
    for inline, on_disk in zip(reply["masks"], files["masks"]):
        assert inline["rle"]["size"] == [80, 112]
        assert np.array_equal(decode_rle(inline["rle"]), read_png_mask(on_disk["file"]))


def test_cancel_stops_it_and_the_session_goes_on(client, session):
    stream = client.stream("segment", session=session.id, frame=1001,
                           options={"points_per_side": 32, "points_per_batch": 1}, masks={"transport": "none"})
    first = next(stream)[0]
    assert first["event"] == "progress" and first["done"] < first["total"]
    client.send_cancel(session=session.id)
    with pytest.raises(Cancelled):
        for _ in stream:
            pass
    _, reply = segment(client, session=session.id, frame=1001, options={"points_per_side": 4})
    assert reply["frame"] == 1001 and "files" not in reply


@pytest.mark.parametrize("fields, error", [
    ({"frame": 999}, FrameOutOfRange),
    ({"options": {"points_per_side": 0}}, BadRequest),
    ({"options": {"pred_iou": 0.5}}, BadRequest),
    ({"options": {"use_m2m": 1}}, BadRequest),
    ({"masks": {"transport": "file", "folder": "relative/dir"}}, BadRequest),
    ({"masks": {"transport": "file", "folder": "/tmp", "stem": "../x"}}, BadRequest),
    ({"masks": {"transport": "shm"}}, BadRequest),
])
def test_bad_requests_are_refused(client, session, fields, error):
    with pytest.raises(error):
        segment(client, **{"session": session.id, "frame": FRAME, **fields})


# --- the host kit's Segment Everything (LiveSession.segment, prompts_from_masks) ----------------

from samroto.bridge import hostkit  # noqa: E402


@pytest.fixture(scope="module")
def live(bridge, tmp_path_factory):
    folder = tmp_path_factory.mktemp("live")
    session = hostkit.LiveSession(lambda: Client.connect(config_dir=str(bridge.config_dir), start=False),
                                  str(PLATE / "plate.%04d.png"), 1001, 1008, str(folder))
    yield session
    session.close()


@pytest.fixture(scope="module")
def auto(live):
    steps = []
    masks = live.segment(FRAME, OPTIONS, progress=lambda done, total: steps.append((done, total)))
    return masks, steps


def test_kit_segment_records_are_the_masks_on_disk(auto, by_cli):
    masks, steps = auto
    _, listing = by_cli
    assert isinstance(masks, list) and len(masks) == len(listing["masks"]) > 1
    assert (masks.frame, masks.width, masks.height) == (FRAME, 112, 80) and Path(masks.overlay).is_file()
    assert [m.index for m in masks] == list(range(1, len(masks) + 1))
    assert steps[-1] == (OPTIONS["points_per_side"] ** 2,) * 2 and [d for d, _ in steps] == sorted(d for d, _ in steps)
    for mask, theirs in zip(masks, listing["masks"]):
        pixels = read_png_mask(mask.mask_path)
        ys, xs = np.nonzero(pixels)
        assert mask.bbox == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)  # pixel edges around it
        assert mask.area == pixels.sum() and abs(mask.area - theirs["area"]) <= 1
        assert abs(mask.predicted_iou - theirs["predicted_iou"]) < 1e-4
        assert abs(mask.stability_score - theirs["stability_score"]) < 1e-4
        assert mask.frame == FRAME
        # the hit test (run lengths, stdlib) agrees with the PNG at every pixel
        hits = np.array([[mask.contains(x + 0.5, y + 0.5) for x in range(112)] for y in range(80)])
        assert np.array_equal(hits, pixels)


def test_kit_mask_at_picks_the_smallest_mask_under_a_click(auto):
    masks, _ = auto
    for mask in masks:
        pixels = read_png_mask(mask.mask_path)
        ys, xs = np.nonzero(pixels)
        x, y = xs[len(xs) // 2] + 0.5, ys[len(ys) // 2] + 0.5
        picked = hostkit.mask_at(masks, x, y)
        under = [m for m in masks if read_png_mask(m.mask_path)[int(y), int(x)]]
        assert picked is not None and picked.area == min(m.area for m in under)
        assert hostkit.mask_at(masks, x, y, skip={m.index for m in under}) is None
    assert hostkit.mask_at(masks, -5, -5) is None


def test_kit_cancel_stops_segment_and_the_session_goes_on(live):
    import threading

    cancel = threading.Event()
    seen = []

    def progress(done, total):
        seen.append(done)
        cancel.set()  # the artist presses Esc after the first step

    with pytest.raises(hostkit.HostError) as err:
        live.segment(1001, {"points_per_side": 32, "points_per_batch": 1}, progress=progress, cancelled=cancel)
    assert err.value.code == "cancelled" and seen and seen[-1] < 32 * 32
    assert len(live.segment(1001, {"points_per_side": 4})) >= 0  # the same session answers again


def test_kit_bad_options_are_a_host_error_saying_what(live):
    with pytest.raises(hostkit.HostError) as err:
        live.segment(FRAME, {"points_per_sid": 8})
    assert err.value.code == "bad_request" and "points_per_sid" in err.value.message


def test_prompts_from_masks_makes_each_chosen_mask_an_objects_prompt(auto):
    masks, _ = auto
    chosen = [masks[1], masks[0]]
    objects = hostkit.prompts_from_masks(chosen, FRAME, first_object_id=5, names=["car", None])
    assert objects == [{"id": 5, "name": "car", "masks": [(FRAME, masks[1].mask_path)]},
                       {"id": 6, "name": "obj6", "masks": [(FRAME, masks[0].mask_path)]}]
    document = hostkit.prompts_document(objects)
    assert document["objects"][0]["prompts"] == [{"frame": FRAME, "mask": masks[1].mask_path}]
    with pytest.raises(hostkit.HostError):
        hostkit.prompts_from_masks([hostkit.AutoMask(3, (0, 0, 1, 1), 1, 0.9, 0.9, None)], FRAME)


# --- segment reuses the session's cached image features -----------------------------------------

def test_segment_reuses_the_sessions_features_and_the_encoder_does_not_run_again(tmp_path, by_cli):
    """An in-process bridge whose image encoder is watched (a forward hook counts its real
    runs): a frame clicked on is not encoded again by segment, and a frame segmented is not
    encoded again by the clicks that follow; the masks are those of samroto segment."""
    from live_bridge import in_process_bridge, micro_model

    model = micro_model()
    runs = []
    model.image_encoder.register_forward_hook(lambda *_: runs.append(1))
    with in_process_bridge(tmp_path / "cfg", model) as config_dir:
        with Client.connect(config_dir=config_dir, start=False) as c:
            s = c.open_session(str(PLATE / "plate.%04d.png"), first=1001, last=1008)
            reply, _, _ = s.prompt_frame(1001, 1, {"points": [[60.0, 40.0]], "labels": [1]})
            assert reply["encoded"] and len(runs) == 1
            first = s.segment(1001, options=OPTIONS)
            assert (first["encoded"], first["encoder_runs"], len(runs)) == (False, 1, 1)

            got = s.segment(FRAME, options=OPTIONS, masks={"transport": "inline"})
            assert (got["encoded"], got["encoder_runs"], len(runs)) == (True, 2, 2)
            again = s.segment(FRAME, options=OPTIONS, masks={"transport": "inline"})
            assert (again["encoded"], again["encoder_runs"], len(runs)) == (False, 2, 2)
            reply, _, _ = s.prompt_frame(FRAME, 2, {"points": [[30.0, 20.0]], "labels": [1]})
            assert not reply["encoded"] and len(runs) == 2
            assert s.session_info()["encoder_runs"] == 2
    # the cached features give the very masks the image encoder gives (float32)
    _, listing = by_cli
    for mine, theirs, cached in zip(got["masks"], listing["masks"], again["masks"]):
        assert mine["bbox"] == theirs["bbox"] == cached["bbox"] and mine["rle"] == cached["rle"]
        assert np.array_equal(decode_rle(mine["rle"]), read_png_mask(theirs["file"]))
    assert len(got["masks"]) == len(listing["masks"])
