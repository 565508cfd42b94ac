"""Numeric precision: one rule for the whole engine.

``float32`` computes what Meta's implementation computes on a CPU (to the bit for images,
within 2e-3 for video logits). ``bfloat16`` is how SAM 2 runs on GPUs (autocast). On a CPU with
native bfloat16 dot products (AVX512-BF16 or AMX) it means float32 tensors multiplied in
bfloat16: a tracked frame takes about 0.6x the time, and masks agree with float32 at
IoU >= 0.99 (tests/test_precision.py). Without that hardware it would be slower, so
``auto`` picks it only where the hardware has it. oneDNN's AMX kernels (Intel Sapphire
Rapids and later) do not keep that agreement: on the parity fixture they moved masks to
IoU 0.95 and lost an object on one frame (IoU 0), so where oneDNN would use AMX a CPU
computes in float32, whatever was asked (cap oneDNN with ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16
to use the AVX512-BF16 kernels instead).
"""

from __future__ import annotations

import contextlib
import logging
import os

import torch

PRECISIONS = ("auto", "float32", "bfloat16")


# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) that keep its AVX512-BF16 kernels but not AMX
_CAPS_BELOW_AMX = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512")
log = logging.getLogger("samroto.precision")


def _cpu_check(name: str) -> bool:
    check = getattr(torch.cpu, name, None)
    return bool(check is not None and check())


def cpu_uses_amx_for_bf16() -> bool:
    """True when oneDNN would multiply bfloat16 with AMX tiles on this CPU."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    return _cpu_check("_is_amx_tile_supported") and cap not in _CAPS_BELOW_AMX and not cap.startswith(("AVX2", "SSE"))


def cpu_has_native_bf16() -> bool:
    """True when this CPU multiplies bfloat16 in hardware with kernels that keep masks
    (AVX512-BF16, not AMX: see the module docstring)."""
    return _cpu_check("_is_avx512_bf16_supported") and not cpu_uses_amx_for_bf16() and \
        not os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper().startswith(("AVX2", "SSE"))


def resolve_precision(precision: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``auto`` (or None): bfloat16 on CUDA and on CPUs with native bfloat16, else float32."""
    if isinstance(precision, torch.dtype):
        precision = str(precision).removeprefix("torch.")
    precision = precision or "auto"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if precision == "auto":
        if device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16()):
            return torch.bfloat16
        return torch.float32
    if precision == "bfloat16" and device.type == "cpu" and cpu_uses_amx_for_bf16():
        log.warning("precision bfloat16: oneDNN's AMX kernels on this CPU move masks too far from float32 "
                    "(docs/speed.md); computing in float32. ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 gives "
                    "bfloat16 without AMX, but measured no faster than float32 on such a CPU.")
        return torch.float32
    return getattr(torch, precision)


@contextlib.contextmanager
def compute_precision(dtype: torch.dtype, device: torch.device):
    """Run the enclosed model calls in ``dtype`` on ``device``.

    GPUs: autocast, as Meta runs SAM 2. CPUs: tensors stay float32 and oneDNN multiplies
    them in bfloat16 with float32 accumulation (the CPU's TF32). Full bfloat16 autocast
    on a CPU is no faster for attention and moves masks much more (IoU 0.92 vs 0.999 on
    the parity fixture), so it is not used there."""
    if dtype == torch.float32:
        yield
        return
    if device.type != "cpu":
        with torch.autocast(device.type, dtype=dtype):
            yield
        return
    matmul = getattr(getattr(torch.backends, "mkldnn", None), "matmul", None)
    before = getattr(matmul, "fp32_precision", None)
    if before is None:  # a torch without the switch: plain float32
        yield
        return
    matmul.fp32_precision = "bf16"
    try:
        yield
    finally:
        matmul.fp32_precision = before
