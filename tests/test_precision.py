"""bfloat16 compute (core/precision.py): masks agree with float32 on the parity fixture,
and the precision rule (what "auto" picks, bad values, the CPU matmul flag) holds."""

import numpy as np
import pytest
import torch
# the parity replay's fixture files, model and calls (tests/ is on sys.path)
from parity_replay import MODEL_DIR as DATA
from parity_replay import Recording, call, load_model, session_options

from samroto.core import precision
from samroto.core.image_predictor import ImagePredictor
from samroto.core.model.build import build_model
from samroto.core.precision import compute_precision, resolve_precision
from samroto.core.video import VideoSession

MIN_IOU = 0.99


def iou(a, b):
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else np.logical_and(a, b).sum() / union


@pytest.fixture(scope="module")
def model():
    return load_model()


@pytest.fixture(scope="module")
def recorded():
    return Recording("sam2_parity").arrays


@pytest.fixture(scope="module")
def ops():
    return Recording("sam2_parity").ops


def replay(model, scenario, ops, recorded, dtype):
    frames = torch.from_numpy(recorded["frames_input"])
    height, width = recorded["frames_uint8"].shape[1:3]
    session = VideoSession(model, frames, video_size=(height, width), precision=dtype,
                           **session_options(ops["scenarios"][scenario]["predictor"]))
    masks = []
    for op in ops["scenarios"][scenario]["ops"]:
        masks += [(frame, logits > 0) for frame, _, logits in call(session, op, recorded)]
    return session, masks


@pytest.mark.parametrize("scenario", ["A", "B", "C"])
def test_bfloat16_video_masks_agree_with_float32(scenario, model, ops, recorded):
    _, exact = replay(model, scenario, ops, recorded, "float32")
    session, fast = replay(model, scenario, ops, recorded, "bfloat16")
    assert session.dtype == resolve_precision("bfloat16", torch.device("cpu"))  # float32 where AMX would run
    assert [f for f, _ in fast] == [f for f, _ in exact]
    worst = min(iou(a[k], b[k]) for (_, a), (_, b) in zip(exact, fast) for k in range(len(a)) if a[k].any())
    assert worst >= MIN_IOU, f"scenario {scenario}: worst mask IoU bfloat16 vs float32 {worst:.4f}"


def test_bfloat16_image_masks_agree_with_float32(recorded):
    model = build_model(DATA / "config_image_predictor.yaml", DATA / "checkpoint.pt", device="cpu")
    image = recorded["frames_uint8"][0]
    results = []
    for dtype in ("float32", "bfloat16"):
        predictor = ImagePredictor(model, precision=dtype)
        predictor.set_image(image)
        masks, _, _ = predictor.predict(point_coords=[[image.shape[1] / 2, image.shape[0] / 2]], point_labels=[1])
        results.append(masks > 0)
    assert min(iou(a, b) for a, b in zip(*results)) >= MIN_IOU


def test_auto_picks_bfloat16_only_where_it_is_fast(monkeypatch):
    cpu, cuda, mps = torch.device("cpu"), torch.device("cuda"), torch.device("mps")
    assert resolve_precision("auto", cuda) == torch.bfloat16
    assert resolve_precision(None, mps) == torch.float32
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto", cpu) == torch.bfloat16
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto", cpu) == torch.float32
    assert resolve_precision(torch.float32, cuda) == torch.float32
    with pytest.raises(ValueError, match="precision must be one of auto, float32, bfloat16; got 'half'"):
        resolve_precision("half", cpu)


def test_amx_cpus_compute_in_float32_unless_onednn_is_capped_below_amx(monkeypatch):
    """oneDNN's AMX bfloat16 kernels lost an object on a parity-fixture frame (IoU 0 vs
    float32); AVX512-BF16 kept every mask at IoU >= 0.99. Measured on a Xeon with both."""
    cpu = torch.device("cpu")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert precision.cpu_uses_amx_for_bf16() and not precision.cpu_has_native_bf16()
    assert resolve_precision("auto", cpu) == torch.float32
    assert resolve_precision("bfloat16", cpu) == torch.float32
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
    assert resolve_precision("auto", cpu) == torch.bfloat16
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert resolve_precision("auto", cpu) == torch.float32
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert resolve_precision("auto", cpu) == torch.bfloat16
    assert resolve_precision("bfloat16", cpu) == torch.bfloat16


def test_cpu_matmul_flag_is_restored_after_bfloat16_work():
    matmul = torch.backends.mkldnn.matmul
    before = matmul.fp32_precision
    with compute_precision(torch.bfloat16, torch.device("cpu")):
        assert matmul.fp32_precision == "bf16"
        assert not torch.is_autocast_enabled("cpu")  # tensors stay float32 on a CPU
    assert matmul.fp32_precision == before
    with pytest.raises(RuntimeError):
        with compute_precision(torch.bfloat16, torch.device("cpu")):
            raise RuntimeError("model failed")
    assert matmul.fp32_precision == before
    assert not torch.is_autocast_enabled("cpu")
