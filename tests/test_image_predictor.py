"""ImagePredictor vs Meta's SAM2ImagePredictor: every call of the fixture's
image_predictor_ops.json replayed generically (so a new fixture of the same format, with
another architecture, image and prompts, is checked by the same code)."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from samroto.core.image_predictor import ImagePredictor
from samroto.core.model.build import build_model

PARITY = Path(__file__).parent / "data" / "sam2_parity"
OPS = json.loads((PARITY / "image_predictor_ops.json").read_text())["ops"]
ATOL = 1e-3  # on logits and scores
MASK_MARGIN = 1e-3  # thresholded masks must agree wherever |recorded logit| > this


@pytest.fixture(scope="module")
def data():
    return np.load(PARITY / "image_predictor.npz")


@pytest.fixture(scope="module")
def model():
    return build_model(PARITY / "config_image_predictor.yaml", PARITY / "checkpoint.pt", device="cpu")


class DecoderTap:
    """Records MaskDecoder.predict_masks outputs (raw, all tokens) without changing them."""

    def __init__(self, decoder):
        self.decoder = decoder
        self.calls = []

    def __enter__(self):
        original = self.decoder.predict_masks

        def tapped(*args, **kwargs):
            out = original(*args, **kwargs)
            self.calls.append([t.detach().clone() for t in out])
            return out

        self.decoder.predict_masks = tapped
        return self

    def __exit__(self, *exc):
        del self.decoder.predict_masks  # back to the class method


def resolve_value(value, data):
    """An ops-file argument: plain JSON, or an npz expression like 'key[1][None]'."""
    if not isinstance(value, str):
        return value
    match = re.fullmatch(r"(\w+)((?:\[(?:-?\d+|None)\])*)", value)
    assert match and match.group(1) in data.files, f"cannot resolve {value!r}"
    array = data[match.group(1)]
    for index in re.findall(r"\[(-?\d+|None)\]", match.group(2)):
        array = array[None] if index == "None" else array[int(index)]
    return array


def check_logits(ours, recorded):
    assert ours.shape == recorded.shape, (ours.shape, recorded.shape)
    diff = float(np.abs(ours.astype(np.float32) - recorded).max())
    assert diff <= ATOL, f"max abs diff {diff}"


def check_masks(ours, recorded_masks, recorded_logits):
    assert ours.shape == recorded_masks.shape
    confident = np.abs(recorded_logits) > MASK_MARGIN
    assert np.array_equal(ours.astype(bool)[confident], recorded_masks[confident])


def check_decoder(tap_calls, name, data):
    """The op's decoder call (raw masks/IoU of all tokens, object score) when recorded."""
    keys = [f"{name}_dec_all_masks", f"{name}_dec_all_iou", f"{name}_object_score_logits"]
    if not all(k in data.files for k in keys):
        return
    masks, iou, _, score = tap_calls[0]
    for ours, key in zip((masks, iou, score), keys):
        check_logits(ours.numpy(), data[key])


def image_names(call):
    # "SAM2ImagePredictor.set_image_batch([image, batch_image_1]); predict_batch"
    return re.search(r"set_image_batch\(\[([^\]]*)\]\)", call).group(1).replace(" ", "").split(",")


@pytest.mark.parametrize("op", OPS, ids=[op["name"] for op in OPS])
def test_replay_official_call(op, model, data):
    predictor = ImagePredictor(model, precision="float32")
    kwargs = {k: resolve_value(v, data) for k, v in op["kwargs"].items()}
    outputs = op["outputs"]
    if op["call"] == "SAM2ImagePredictor.predict":
        predictor.set_image(data["image"])
        with DecoderTap(model.sam_mask_decoder) as tap:
            logits, iou, low = predictor.predict(return_logits=True, **kwargs)
        masks, iou2, low2 = predictor.predict(return_logits=False, **kwargs)
        check_logits(logits, data[outputs[0]])
        check_masks(masks, data[outputs[1]], data[outputs[0]])
        # Meta's dtype: float32 0/1
        assert masks.dtype == np.float32 and set(np.unique(masks)) <= {0.0, 1.0}
        for ours in (iou, iou2):
            check_logits(ours, data[outputs[2]])
        for ours in (low, low2):
            check_logits(ours, data[outputs[3]])
        check_decoder(tap.calls, op["name"], data)
    elif "predict_batch" in op["call"]:
        images = [data[name] for name in image_names(op["call"])]
        predictor.set_image_batch(images)
        if "batch_image_embed" in data.files:
            check_logits(predictor.get_image_embedding().numpy(), data["batch_image_embed"])
        logits, ious, lows = predictor.predict_batch(return_logits=True, **kwargs)
        masks, _, _ = predictor.predict_batch(return_logits=False, **kwargs)
        assert len(logits) == len(images) == len(outputs) // 4
        for i in range(len(images)):
            logit_key, mask_key, iou_key, low_key = outputs[4 * i: 4 * i + 4]
            check_logits(logits[i], data[logit_key])
            check_masks(masks[i], data[mask_key], data[logit_key])
            check_logits(ious[i], data[iou_key])
            check_logits(lows[i], data[low_key])
    else:
        pytest.fail(f"unknown call in the ops file: {op['call']}")


def test_embedding_is_computed_once_per_image(model, data):
    predictor = ImagePredictor(model, precision="float32")
    calls = []
    hook = model.image_encoder.register_forward_hook(lambda *a: calls.append(1))
    try:
        predictor.set_image(data["image"])
        for _ in range(3):
            predictor.predict(point_coords=[[50, 60]], point_labels=[1])
        predictor.predict(box=[10, 10, 100, 90], multimask_output=False)
    finally:
        hook.remove()
    assert len(calls) == 1


def test_normalize_coords_false_takes_fractions(model, data):
    predictor = ImagePredictor(model, precision="float32")
    predictor.set_image(data["image"])
    height, width = data["image"].shape[:2]
    pixels = predictor.predict(point_coords=[[71.4, 54.0]], point_labels=[1], return_logits=True)
    fractions = predictor.predict(point_coords=[[71.4 / width, 54.0 / height]], point_labels=[1],
                                  return_logits=True, normalize_coords=False)
    check_logits(fractions[0], pixels[0])


def test_clear_errors(model, data):
    predictor = ImagePredictor(model, precision="float32")
    with pytest.raises(RuntimeError, match="set_image"):
        predictor.predict(point_coords=[[1, 2]], point_labels=[1])
    with pytest.raises(ValueError, match="uint8"):
        predictor.set_image(data["image"].astype(np.float32))
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        predictor.set_image(data["image"][..., 0])
    predictor.set_image(data["image"])
    with pytest.raises(ValueError, match="point_labels"):
        predictor.predict(point_coords=[[1, 2]])
    with pytest.raises(ValueError, match="point_coords"):
        predictor.predict(point_coords=[[1, 2], [3, 4]], point_labels=[1])
    with pytest.raises(ValueError, match="mask_input"):
        predictor.predict(point_coords=[[1, 2]], point_labels=[1], mask_input=np.zeros((1, 10, 10)))
    with pytest.raises(ValueError, match="box"):
        predictor.predict(box=[1, 2, 3])
    predictor.set_image_batch([data["image"], data["batch_image_1"]])
    with pytest.raises(RuntimeError, match="predict_batch"):
        predictor.predict(point_coords=[[1, 2]], point_labels=[1])
