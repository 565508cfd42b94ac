"""core/automask piece by piece (grids, run lengths, boxes, NMS, stability, clean-up), the
generator's contract (progress, cancel, output modes, memory fallbacks, the same masks
whatever the thread count) and ``samroto segment``. Parity with Meta: test_automask_parity.py."""

import gzip
import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from samroto.cli.main import main as cli
from samroto.core.automask import AutoMaskGenerator, Cancelled, FrameTooLargeError, decode_rle, mask_of
from samroto.core.automask import rle
from samroto.core.automask.boxes import masks_to_boxes, near_crop_edge, nms, xyxy_to_xywh
from samroto.core.automask.grid import crop_boxes, layer_grids, point_grid
from samroto.core.automask.masks import remove_small_regions, stability_scores
from test_model_parity import image_data, model  # noqa: F401  (the fixture model and images)

DATA = Path(__file__).parent / "data"
PARITY = DATA / "sam2_parity"
# lets the random-weight micro model's masks through (tests/data/automask/README.md)
SMALL = dict(points_per_side=6, pred_iou_thresh=0.55, stability_score_thresh=0.85, box_nms_thresh=1.0)


@pytest.fixture(scope="module")
def image(image_data):
    return image_data["image"]


def generate(model, image, **kwargs):
    options = {**SMALL, "output_mode": "uncompressed_rle", "precision": "float32", **kwargs}
    return AutoMaskGenerator(model, **options).generate(image)


# -- pieces -------------------------------------------------------------------------------------
def test_point_grid_is_cell_centres_row_by_row():
    grid = point_grid(2)
    assert np.allclose(grid, [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]])
    assert [len(g) for g in layer_grids(8, 2, 2)] == [64, 16, 4]


def test_crop_boxes_are_meta_s():
    """The crops of the recorded 'crops' configuration (150x200, one layer)."""
    with gzip.open(DATA / "automask" / "meta_automask.json.gz", "rt") as f:
        recorded = json.load(f)["configs"]["crops"]["records"]
    boxes, layers = crop_boxes(150, 200, 1, 512 / 1500)
    assert layers == [0, 1, 1, 1, 1] and boxes[0] == [0, 0, 200, 150]
    for record in recorded:
        assert [int(v) for v in _xyxy(record["crop_box"])] in boxes


def _xyxy(xywh):
    x, y, w, h = xywh
    return [x, y, x + w, y + h]


def test_run_lengths_round_trip():
    rng = np.random.default_rng(0)
    masks = rng.random((5, 7, 9)) > 0.5
    masks[1] = True
    masks[2] = False
    masks[3, 0, 0] = True
    masks[4, 0, 0] = False
    for mask, counts in zip(masks, rle.encode(torch.from_numpy(masks))):
        record = rle.to_dict(counts, 7, 9)
        assert np.array_equal(decode_rle(record), mask)
        assert rle.area(counts) == mask.sum()
        assert sum(record["counts"]) == mask.size
        assert (record["counts"][0] == 0) == bool(mask[0, 0])  # a run of zeros first, column by column
    assert rle.encode(torch.zeros(0, 4, 4, dtype=torch.bool)) == []


def test_boxes_of_masks():
    rng = np.random.default_rng(1)
    masks = rng.random((6, 11, 13)) > 0.93
    masks[0] = False
    boxes = masks_to_boxes(torch.from_numpy(masks)).tolist()
    assert boxes[0] == [0, 0, 0, 0]
    for mask, box in zip(masks[1:], boxes[1:]):
        ys, xs = np.nonzero(mask)
        assert box == [xs.min(), ys.min(), xs.max(), ys.max()]
    assert xyxy_to_xywh(torch.tensor([2.0, 3.0, 10.0, 5.0])) == [2.0, 3.0, 8.0, 2.0]


def _greedy(boxes, scores, threshold):
    order = np.argsort(-scores, kind="stable")
    keep, dropped = [], set()
    for i in order:
        if i in dropped:
            continue
        keep.append(int(i))
        for j in order:
            x0, y0 = max(boxes[i][0], boxes[j][0]), max(boxes[i][1], boxes[j][1])
            x1, y1 = min(boxes[i][2], boxes[j][2]), min(boxes[i][3], boxes[j][3])
            inter = max(0, x1 - x0) * max(0, y1 - y0)
            area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
            if inter / (area(boxes[i]) + area(boxes[j]) - inter) > threshold:
                dropped.add(j)
    return keep


@pytest.mark.parametrize("threshold", [0.3, 0.7])
def test_nms_is_greedy_by_score(threshold):
    rng = np.random.default_rng(2)
    corners = rng.integers(0, 50, (40, 2))
    boxes = np.concatenate([corners, corners + rng.integers(5, 30, (40, 2))], axis=1).astype(np.float32)
    scores = rng.random(40).astype(np.float32)
    kept = nms(torch.from_numpy(boxes), torch.from_numpy(scores), threshold).tolist()
    assert kept == _greedy(boxes, scores, threshold)
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).tolist() == []
    same = torch.tensor([[0.0, 0.0, 10.0, 10.0]] * 2)
    assert len(nms(same, torch.tensor([0.5, 0.4]), 1.0)) == 2  # IoU 1 is not above 1.0


def test_near_crop_edge_ignores_image_edges():
    boxes = torch.tensor([[0, 0, 30, 30], [5, 5, 95, 30], [40, 40, 60, 60]])  # crop pixels
    assert near_crop_edge(boxes, [0, 0, 100, 100], [0, 0, 400, 400]).tolist() == [False, True, False]
    assert near_crop_edge(boxes, [0, 0, 100, 100], [0, 0, 100, 100]).tolist() == [False, False, False]


def test_stability_is_the_iou_of_two_thresholds():
    logits = torch.tensor([[[3.0, 0.5, -0.5, -3.0]], [[-2.0, -2.0, -2.0, -2.0]]])
    scores = stability_scores(logits, 0.0, 1.0)
    assert scores[0].item() == pytest.approx(1 / 3) and torch.isnan(scores[1])


def test_small_holes_and_specks_go():
    logits = torch.full((1, 12, 12), -5.0)
    logits[0, 2:10, 2:10] = 5.0
    logits[0, 5, 5] = -5.0  # a hole of one pixel
    logits[0, 0, 11] = 5.0  # a speck of one pixel
    clean = remove_small_regions(logits, 2, 0.0)[0]
    assert clean[5, 5] > 0 and clean[0, 11] < 0 and (clean[2:10, 2:10] > 0).all()
    assert torch.equal(remove_small_regions(logits, 0, 0.0), logits)


# -- the generator ------------------------------------------------------------------------------
def test_progress_and_cancel(model, image):
    seen = []
    generator = AutoMaskGenerator(model, **SMALL, precision="float32")
    records = generator.generate(image, progress=lambda done, total: seen.append((done, total)))
    assert records and seen[-1] == (36, 36) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    stop = threading.Event()

    def stop_at_first(done, total):
        stop.set()

    with pytest.raises(Cancelled):
        AutoMaskGenerator(model, **SMALL).generate(image, progress=stop_at_first, cancel=stop)
    with pytest.raises(Cancelled):
        AutoMaskGenerator(model, **SMALL).generate(image, cancel=lambda: True)


def test_output_modes_and_records(model, image):
    as_rle = generate(model, image)
    as_masks = generate(model, image, output_mode="binary_mask")
    assert len(as_rle) == len(as_masks) > 3
    for a, b in zip(as_rle, as_masks):
        assert b["segmentation"].dtype == bool and b["segmentation"].shape == image.shape[:2]
        assert np.array_equal(mask_of(a), b["segmentation"]) and b["segmentation"].sum() == b["area"]
        assert set(a) == {"segmentation", "area", "bbox", "predicted_iou", "point_coords", "stability_score",
                          "crop_box"}
    try:
        import pycocotools  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pycocotools"):
            AutoMaskGenerator(model, output_mode="coco_rle")


def test_the_same_masks_whatever_the_thread_count(model, image):
    """On a CPU every decoder call runs single-threaded (on a worker per thread), so the masks
    do not depend on the machine's thread count; the image encoder's products do (MKL blocks
    them by thread count: with its AVX2 kernels the scores move in the last float32 bits)."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = generate(model, image)
        torch.set_num_threads(2)
        two = generate(model, image)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert [(r["area"], r["bbox"]) for r in one] == [(r["area"], r["bbox"]) for r in two]
    for a, b in zip(one, two):
        assert a["segmentation"] == b["segmentation"]  # run lengths: the same pixels
        assert a["predicted_iou"] == pytest.approx(b["predicted_iou"], abs=1e-5)
        assert a["stability_score"] == pytest.approx(b["stability_score"], abs=1e-5)


def test_point_grids_give_what_points_per_side_gives(model, image):
    a = generate(model, image)
    b = generate(model, image, points_per_side=None, point_grids=[point_grid(6)])
    assert [r["area"] for r in a] == [r["area"] for r in b]
    with pytest.raises(ValueError, match="exactly one"):
        AutoMaskGenerator(model, point_grids=[point_grid(2)])
    with pytest.raises(ValueError, match="one per layer"):
        AutoMaskGenerator(model, points_per_side=None, point_grids=[point_grid(2)], crop_n_layers=1)


def test_decoder_out_of_memory_halves_the_batch(model, image, monkeypatch, one_torch_thread):
    reference = generate(model, image, decoder_batch=16)
    gen = AutoMaskGenerator(model, **SMALL, output_mode="uncompressed_rle", precision="float32", decoder_batch=16)
    decode = gen.predictor.predict_low_res
    sizes = []

    def small_device(points, *args, **kwargs):
        sizes.append(len(points))
        if len(points) > 4:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return decode(points, *args, **kwargs)

    monkeypatch.setattr(gen.predictor, "predict_low_res", small_device)
    records = gen.generate(image)
    assert sizes[:3] == [16, 8, 4] and max(sizes[3:]) == 4
    assert [(r["area"], r["bbox"]) for r in records] == [(r["area"], r["bbox"]) for r in reference]


def test_a_frame_too_large_says_what_to_change(model, image, monkeypatch):
    with pytest.raises(FrameTooLargeError, match="264x176 frame needs .* Segment a smaller copy"):
        AutoMaskGenerator(model, **SMALL, memory_budget=1000).generate(image)
    import samroto.core.automask.generator as generator

    def no_room(*args, **kwargs):
        raise MemoryError("simulated")

    monkeypatch.setattr(generator, "upsample", no_room)
    with pytest.raises(FrameTooLargeError, match="264x176"):
        AutoMaskGenerator(model, **SMALL).generate(image)


# -- samroto segment --------------------------------------------------------------------------
MODEL_ARGS = ["--model", str(PARITY / "config.yaml"), "--checkpoint", str(PARITY / "checkpoint.pt"),
              "--device", "cpu", "--precision", "float32", "--quiet"]
PLATE = str(DATA / "bridge" / "plate.%04d.png")
GRID = ["--points-per-side", "6", "--pred-iou-thresh", "0.3", "--stability-score-thresh", "0.4",
        "--mask-threshold", "12"]


def test_segment_writes_layers_listing_overlay_and_mask_prompts(tmp_path):
    import OpenImageIO as oiio

    from samroto.core.shot.masks import read_mask

    assert cli(["segment", PLATE, "--frame", "1004", "--out", str(tmp_path), "--mask-files", *GRID, *MODEL_ARGS]) == 0
    listing = json.loads((tmp_path / "masks.1004.json").read_text())
    masks = listing["masks"]
    assert masks and listing["frame"] == 1004 and (listing["width"], listing["height"]) == (112, 80)
    channels = oiio.ImageInput.open(str(tmp_path / "masks.1004.exr")).spec().channelnames
    assert list(channels) == ["A"] + [f"{m['layer']}.A" for m in masks]
    assert (tmp_path / "masks.1004.overlay.png").stat().st_size > 0
    for m in masks:
        assert read_mask(m["file"], 112, 80).sum() == m["area"]
        assert set(m) >= {"id", "area", "bbox", "predicted_iou", "stability_score", "point"}


def test_segment_one_file_of_a_sequence_is_that_frame(tmp_path):
    one = str(DATA / "bridge" / "plate.1003.png")
    assert cli(["segment", one, "--out", str(tmp_path), *GRID, *MODEL_ARGS]) == 0
    assert (tmp_path / "masks.1003.json").is_file()


def test_segment_refuses_a_frame_not_there(tmp_path, capsys):
    assert cli(["segment", PLATE, "--frame", "7", "--out", str(tmp_path), *MODEL_ARGS]) == 2
    assert "--frame 7: no such frame" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_segment_ctrl_c_writes_nothing(tmp_path, monkeypatch, capsys):
    def interrupted(self, image, progress=None, cancel=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(AutoMaskGenerator, "generate", interrupted)
    assert cli(["segment", PLATE, "--out", str(tmp_path / "out"), *GRID, *MODEL_ARGS]) == 130
    assert "nothing was written" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
