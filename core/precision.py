"""Numeric precision: one rule for the whole engine.

``float32`` computes what Meta's implementation computes on a CPU (to the bit for images,
within 2e-3 for video logits). ``bfloat16`` is how SAM 2 runs on GPUs (autocast). On a CPU with
native bfloat16 dot products (AVX512-BF16 or AMX) it means float32 tensors multiplied in
bfloat16: a tracked frame takes about 0.6x the time, and masks agree with float32 at
IoU >= 0.99 (tests/test_precision.py). Without that hardware it would be slower, so
``auto`` picks it only where the hardware has it.
"""

from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("auto", "float32", "bfloat16")


def cpu_has_native_bf16() -> bool:
    """True when this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX)."""
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check is not None and check() for check in checks)


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
