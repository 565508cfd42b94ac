"""core/shot: the one mask reader, the one start-frame rule, prompts into a session with
rollback, and the runner (finished mattes frame by frame)."""

from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest
import torch

from samroto.core import sample
from samroto.core.io import open_frames
from samroto.core.model.build import build_model
from samroto.core.prompts import from_dict, validate
from samroto.core.shot import MaskPromptError, Pass, RangeError, apply_prompts, plan_passes, read_mask, track
from samroto.core.video import VideoSession

DATA = Path(__file__).parent / "data" / "sam2_parity"
W, H = 64, 48


def write_image(path, pixels):
    pixels = np.ascontiguousarray(pixels, dtype=np.float32)
    spec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], pixels.shape[2] if pixels.ndim == 3 else 1,
                          oiio.HALF if str(path).endswith(".exr") else oiio.UINT8)
    out = oiio.ImageOutput.create(str(path))
    out.open(str(path), spec)
    out.write_image(pixels)
    out.close()
    return str(path)


# ---------------------------------------------------------------- read_mask


def rgba_mask():
    """Colour in 80 pixels, alpha in 40 of them: a roto export whose colour spills."""
    pixels = np.zeros((H, W, 4), np.float32)
    pixels[10:18, 10:20, :3] = 1.0  # 80 pixels of colour
    pixels[10:14, 10:20, 3] = 1.0  # 40 of alpha
    return pixels


@pytest.mark.parametrize("ext", ["png", "exr", "tif"])
def test_mask_reads_alpha_when_there_is_one(tmp_path, ext):
    mask = read_mask(write_image(tmp_path / f"m.{ext}", rgba_mask()), W, H)
    assert mask.shape == (H, W) and mask.dtype == bool
    assert mask.sum() == 40


def test_mask_without_alpha_is_any_channel_above_zero(tmp_path):
    pixels = np.zeros((H, W, 3), np.float32)
    pixels[0:5, 0:4, 1] = 1.0  # green only
    pixels[20, 20, 2] = 0.5
    assert read_mask(write_image(tmp_path / "m.png", pixels), W, H).sum() == 21
    gray = np.zeros((H, W, 1), np.float32)
    gray[1:3, 1:3] = 1.0
    assert read_mask(write_image(tmp_path / "g.exr", gray), W, H).sum() == 4


def test_mask_at_model_size_is_taken(tmp_path):
    pixels = np.ones((32, 32, 1), np.float32)
    assert read_mask(write_image(tmp_path / "m.png", pixels), W, H, model_size=32).shape == (32, 32)


def test_mask_errors_say_what_to_do(tmp_path):
    with pytest.raises(MaskPromptError, match=r"is 32x32; it must be the plate's size 64x48"):
        read_mask(write_image(tmp_path / "m.png", np.ones((32, 32, 1), np.float32)), W, H)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    with pytest.raises(MaskPromptError, match="cannot read mask prompt .*junk.png.*PNG, TIFF or EXR"):
        read_mask(junk, W, H)
    with pytest.raises(MaskPromptError, match="cannot read mask prompt"):
        read_mask(tmp_path / "missing.png", W, H)


# ---------------------------------------------------------------- plan_passes


def test_each_direction_starts_at_the_prompt_furthest_against_it():
    prompted = [3, 6]
    assert plan_passes(10, prompted, "forward") == [Pass(3, False, 7)]
    assert plan_passes(10, prompted, "backward") == [Pass(6, True, 7)]
    assert plan_passes(10, prompted, "both") == [Pass(3, False, 7), Pass(2, True, 3)]
    assert plan_passes(10, [0], "both") == [Pass(0, False, 10)]  # nothing before the first frame
    assert list(Pass(6, True, 7).positions) == [6, 5, 4, 3, 2, 1, 0]


def test_ranges_and_explicit_starts():
    # only prompts inside the range count; the passes stop at its ends
    assert plan_passes(20, [2, 8, 15], "both", first=5, last=12) == [Pass(8, False, 5), Pass(7, True, 3)]
    assert plan_passes(20, [2, 8, 15], "backward", first=5, last=17) == [Pass(15, True, 11)]
    assert plan_passes(20, [2], "forward", start=4, first=4, last=6) == [Pass(4, False, 3)]


@pytest.mark.parametrize("kwargs, message", [
    ({"direction": "sideways"}, "direction must be forward, backward or both"),
    ({"prompted": []}, "nothing to track"),
    ({"first": 6, "last": 5}, "starts after it ends"),
    ({"first": 7, "last": 9}, "no prompted frame inside the range"),
    ({"start": 9, "last": 8}, r"the start \(position 9\) is outside the range"),
])
def test_plan_refuses_what_does_not_fit(kwargs, message):
    args = {"num_frames": 10, "prompted": [3], "direction": "both", **kwargs}
    with pytest.raises(RangeError, match=message):
        plan_passes(**args)


# ---------------------------------------------------------------- prompts and the runner


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(DATA / "config.yaml", DATA / "checkpoint.pt", device="cpu")


@pytest.fixture()
def shot(tmp_path):
    return open_frames(sample.write_sample(tmp_path / "plate", 4, W, H))


def test_a_failed_first_prompt_leaves_no_object_and_keeps_earlier_ones(model, shot, tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    prompts = from_dict({"version": 1, "objects": [
        {"id": 1, "name": "a", "prompts": [{"frame": 1001, "points": [[30, 20]], "labels": [1]}]},
        {"id": 2, "name": "b", "prompts": [{"frame": 1002, "mask": str(junk)}]}]})
    validate(prompts, shot.frame_numbers, shot.width, shot.height)
    session = VideoSession(model, shot)
    results = []
    with pytest.raises(MaskPromptError, match=r"object 2 \('b'\), frame 1002: cannot read mask prompt"):
        for result in apply_prompts(session, prompts, shot):
            results.append(result)
    assert [r[0] for r in results] == [1001]  # that frame's mattes came at once
    assert session.obj_ids == [1]


def test_runner_yields_finished_mattes_in_processing_order(model, shot):
    prompts = from_dict({"version": 1, "objects": [
        {"id": 1, "name": "a", "prompts": [{"frame": 1002, "box": [10, 10, 40, 30]}]}]})
    session = VideoSession(model, shot)
    list(apply_prompts(session, prompts, shot, low_res=True))
    passes = plan_passes(len(shot), [1], "both")
    results = list(track(session, shot, passes))
    assert [r.frame for r in results] == [1002, 1003, 1004, 1001]
    assert [r.done for r in results] == [1, 2, 3, 4] and {r.total for r in results} == {4}
    for r in results:
        assert r.values.shape == (1, H, W) and r.values.dtype == np.float32
        # no finisher: SAM 2's own decision, logits upsampled and thresholded
        big = torch.nn.functional.interpolate(torch.as_tensor(r.logits)[:, None], size=(H, W), mode="bilinear",
                                              align_corners=False)[:, 0].numpy()
        assert np.array_equal(r.values, (big > 0).astype(np.float32))
    logits = list(track(session, shot, passes, values="logits"))  # tracked again: the same decisions
    for alpha, raw in zip(results, logits):
        assert raw.values.shape == (1, H, W) and np.array_equal(raw.values > 0, alpha.values > 0)
