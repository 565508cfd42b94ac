"""Parity with Meta's SAM 2 video predictor on every CPU: Meta's recorded calls (scenarios
A, B, C) replayed on a VideoSession, against each recording (tests/data/sam2_parity*, made
on different CPUs), step-wise (teacher-forced, tight) and end to end (within the
reference's own spread across CPUs). The replay and the tolerances: tests/parity_replay.py;
the measurements behind them: docs/video.md."""

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from parity_replay import MODES, RECORDINGS, SCENARIOS, TOLERANCES, Recording, exceeded, load_model, replay

ROOT = Path(__file__).resolve().parents[1]
# what an AVX2-only CPU runs: torch's own kernels, oneDNN, and MKL (torch's float32 matrix
# products), which picks its kernels by itself and ignores the first two
AVX2_KERNELS = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
PARITY_TESTS = ["tests/test_video_parity.py", "tests/test_model_parity.py", "tests/test_image_predictor.py"]


@pytest.fixture(scope="module")
def model():
    return load_model()


@pytest.fixture(scope="module")
def recordings():
    return {name: Recording(name) for name in RECORDINGS}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("name", RECORDINGS)
def test_replay(name, scenario, mode, model, recordings):
    per_call = replay(model, recordings[name], scenario, stepwise=mode == "step-wise")
    assert per_call, f"{name} {scenario}: nothing replayed"
    for label, figures in per_call:
        over = exceeded(figures, TOLERANCES[mode])
        assert not over, f"{name} {label} ({mode}): " + "; ".join(over)


@pytest.mark.parametrize("weight", ["memory_attention.layers.1.cross_attn_image.v_proj.weight",
                                    "memory_encoder.fuser.layers.0.pwconv2.weight"])
def test_step_wise_parity_catches_a_one_percent_weight_change(weight, recordings):
    """The step-wise test can fail: one weight of memory attention or the memory encoder
    1% off is beyond its tolerances, on every recording that holds every memory."""
    changed = load_model()
    with torch.no_grad():
        changed.get_parameter(weight).mul_(1.01)
    for name in ("sam2_parity_avx2", "sam2_parity_avx512", "sam2_parity_avx2_capped"):
        over = [o for _, figures in replay(changed, recordings[name], "A", stepwise=True)
                for o in exceeded(figures, TOLERANCES["step-wise"])]
        assert over, f"{name}: a 1% change of {weight} passed the step-wise tolerances"


def _has_avx2():
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        return " avx2" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


@pytest.mark.skipif(os.environ.get("ATEN_CPU_CAPABILITY") == "avx2", reason="this run is the AVX2 one")
@pytest.mark.skipif(not _has_avx2(), reason="not an x86-64 CPU with AVX2: there is no AVX2 kernel path to force")
def test_parity_holds_on_the_avx2_kernel_paths():
    """The parity tests again with PyTorch's, oneDNN's and MKL's AVX2 kernels forced (what an
    AVX2-only CPU runs), so a change that passes only on this kind of CPU fails here."""
    env = {**os.environ, **AVX2_KERNELS}
    capability = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                                env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert capability == "AVX2", f"ATEN_CPU_CAPABILITY=avx2 gave {capability}"
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *PARITY_TESTS],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, f"parity on the AVX2 kernel paths failed:\n{run.stdout[-6000:]}\n{run.stderr[-2000:]}"
