"""AutoMaskGenerator vs Meta's SAM2AutomaticMaskGenerator (sam2 1.1.0): five recorded
configurations on the parity fixture's model and image_data (tests/data/automask/README.md says
which and why), replayed against both recordings (AVX-512 and AVX2 kernels). The comparison
can fail: a filter threshold 10% off changes what is found."""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from samroto.core.automask import AutoMaskGenerator, decode_rle
from test_model_parity import image_data, model  # noqa: F401  (the fixture model and images)
from test_video_parity import AVX2_KERNELS, _has_avx2

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
RECORDINGS = {"avx512": DATA / "automask" / "meta_automask.json.gz",
              "avx2": DATA / "automask" / "meta_automask_avx2.json.gz"}

MIN_MASK_IOU = 0.99
SCORE_TOL = 1e-3  # predicted_iou and stability_score
BOX_TOL = 1.0  # pixels
POINT_TOL = 1e-4  # pixels
# Meta's own two recordings differ by one pixel of one mask ('filters'): a logit within
# float32 noise of the threshold; an area may move by that much
AREA_TOL = (1, 1e-3)  # pixels, plus this fraction of the area


def load(path):
    with gzip.open(path, "rt") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def recordings():
    return {name: load(path) for name, path in RECORDINGS.items()}


def generate(model, image_data, config, **changes):
    kwargs = {**config["kwargs"], **changes}
    gen = AutoMaskGenerator(model, output_mode="uncompressed_rle", precision="float32", **kwargs)
    return gen.generate(image_data[config["image"]])


def differences(ours, theirs):
    """What is beyond the tolerances between two lists of records (empty: the same masks)."""
    if len(ours) != len(theirs):
        return [f"{len(ours)} masks, recorded {len(theirs)}"]
    out = []
    for i, (a, b) in enumerate(zip(ours, theirs)):
        ma, mb = decode_rle(a["segmentation"]), decode_rle(b["segmentation"])
        union = (ma | mb).sum()
        iou = (ma & mb).sum() / union if union else 1.0
        if iou < MIN_MASK_IOU:
            out.append(f"mask {i}: IoU {iou:.4f}")
        if abs(a["area"] - b["area"]) > AREA_TOL[0] + AREA_TOL[1] * b["area"]:
            out.append(f"mask {i}: area {a['area']}, recorded {b['area']}")
        if max(abs(x - y) for x, y in zip(a["bbox"], b["bbox"])) > BOX_TOL:
            out.append(f"mask {i}: bbox {a['bbox']}, recorded {b['bbox']}")
        for key in ("predicted_iou", "stability_score"):
            if not abs(a[key] - b[key]) <= SCORE_TOL:
                out.append(f"mask {i}: {key} {a[key]:.6f}, recorded {b[key]:.6f}")
        if max(abs(x - y) for x, y in zip(a["point_coords"][0], b["point_coords"][0])) > POINT_TOL:
            out.append(f"mask {i}: point {a['point_coords']}, recorded {b['point_coords']}")
        if a["crop_box"] != b["crop_box"]:
            out.append(f"mask {i}: crop {a['crop_box']}, recorded {b['crop_box']}")
    return out


CONFIGS = ["filters", "nms", "crops", "m2m", "single"]


@pytest.mark.parametrize("recording", sorted(RECORDINGS))
@pytest.mark.parametrize("name", CONFIGS)
def test_same_masks_as_meta(name, recording, recordings, model, image_data, one_torch_thread):
    config = recordings[recording]["configs"][name]
    ours = generate(model, image_data, config)
    assert ours, "the recording has masks"
    assert differences(ours, config["records"]) == []


def test_the_recordings_exercise_what_they_say(recordings):
    """crops: a mask from a crop layer comes out; nms: masks with other boxes survive suppression."""
    configs = recordings["avx512"]["configs"]
    assert {tuple(r["crop_box"]) for r in configs["crops"]["records"]} > {(0.0, 0.0, 200.0, 150.0)}
    assert len({tuple(r["bbox"]) for r in configs["nms"]["records"]}) == len(configs["nms"]["records"]) > 1
    for name in CONFIGS:
        margins = configs[name]["margins"]
        assert margins["min_abs_iou_minus_thresh"] > 5e-4 and margins["min_abs_stability_minus_thresh"] > 2e-4


def test_meta_recordings_agree_within_the_tolerances(recordings):
    """The tolerances hold Meta's own spread between AVX-512 and AVX2 kernels."""
    for name in CONFIGS:
        a, b = (recordings[r]["configs"][name]["records"] for r in ("avx512", "avx2"))
        assert differences(a, b) == [], name


@pytest.mark.parametrize("name, threshold, factor", [
    ("filters", "pred_iou_thresh", 1.1), ("filters", "pred_iou_thresh", 0.9),
    ("filters", "stability_score_thresh", 1.1), ("m2m", "stability_score_thresh", 0.9),
    ("nms", "box_nms_thresh", 1.1), ("nms", "box_nms_thresh", 0.9),
])
def test_a_threshold_ten_percent_off_fails_the_comparison(name, threshold, factor, recordings, model, image_data,
                                                          one_torch_thread):
    config = recordings["avx512"]["configs"][name]
    value = config["kwargs"].get(threshold, 0.7) * factor
    assert differences(generate(model, image_data, config, **{threshold: value}), config["records"])


@pytest.mark.skipif(os.environ.get("ATEN_CPU_CAPABILITY") == "avx2", reason="this run is the AVX2 one")
@pytest.mark.skipif(not _has_avx2(), reason="not an x86-64 CPU with AVX2: there is no AVX2 kernel path to force")
def test_parity_holds_on_the_avx2_kernel_paths():
    """The comparison again with PyTorch's, oneDNN's and MKL's AVX2 kernels forced (an AVX2-only CPU),
    against the AVX-512 recording: the other kernel path's (bitwise the same) is not rerun."""
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k",
                          "same_masks and avx512",
                          "tests/test_automask_parity.py"], cwd=ROOT, env={**os.environ, **AVX2_KERNELS},
                         capture_output=True, text=True)
    assert run.returncode == 0, f"automask parity on the AVX2 kernel paths failed:\n{run.stdout[-6000:]}"
