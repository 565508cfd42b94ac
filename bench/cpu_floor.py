"""How fast a SAM 2 frame can possibly be on this CPU in float32 (issue 23). Not a test; never in CI.

    .venv/bin/python bench/cpu_floor.py [--objects 1 3] [--threads 2] [--meta-seconds 1=5.31 3=11.9]

Counts the floating-point work of one steady-state tracked frame (memory bank full) with
torch's FlopCounterMode (matrix products, attention, convolutions: what dominates SAM 2),
on the real ``sam2.1_hiera_t`` architecture at 1024 with random weights, split by part
(image encoder, memory attention, the rest); then measures the float32 matrix-product
rate this CPU reaches on the kernel path in use (one large product per thread count, best
of three). Work / rate is the time a frame cannot go below in float32 even if every
operation ran at the matrix-product rate. With ``--meta-seconds`` (Meta's measured seconds
per frame by object count, from compare_official.py on the same kernel path) it prints the
best ratio to Meta that float32 could reach. Run it with compare_official.py's AVX2_ENV to
see the AVX2 path.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import FULL_MEMORY_FROM, cpu_capability  # noqa: E402

from samroto.core import VideoSession, build_model, open_frames  # noqa: E402


def _attention_flops(query, key, value, *args, out_shape=None, **kwargs):
    """q k^T and weights x values of a fused attention kernel (FlopCounterMode passes shapes)."""
    *batch, n_q, d = query
    n_k, d_v = key[-2], value[-1]
    return 2 * int(np.prod(batch)) * n_q * n_k * (d + d_v)


# fused attention that FlopCounterMode does not count on a CPU by itself (Hiera's windows
# and global blocks, memory attention's self-attention)
FUSED_ATTENTION = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _attention_flops}
PARTS = {"image encoder": "ImageEncoder", "memory attention": "MemoryAttention"}


def frame_flops(model, n_objects, frames=FULL_MEMORY_FROM + 1, size=(640, 360)):
    """FLOPs of the last frame of a propagation long enough to fill the memory bank, by part."""
    rng = np.random.default_rng(0)
    pixels = [rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8) for _ in range(frames)]
    session = VideoSession(model, open_frames(pixels), precision="float32")
    for k in range(n_objects):
        session.add_prompt(0, k + 1, points=[[size[0] * (k + 1) / (n_objects + 1), size[1] / 2]], labels=[1])
    steps = session.propagate()
    for _ in range(frames - 1):
        next(steps)
    counter = FlopCounterMode(display=False, custom_mapping=FUSED_ATTENTION)
    with counter:
        next(steps)
    by_module = counter.get_flop_counts()
    total = sum(by_module["Global"].values())
    parts = {}
    for name, module in PARTS.items():  # FlopCounterMode names modules by their class
        parts[name] = sum(by_module.get(module, {}).values())
    parts["rest"] = total - sum(parts.values())
    return total, parts


def matmul_rate(threads, n=2048, rounds=3):
    """float32 FLOP/s of an n x n x n product on this many threads (best of ``rounds``)."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(rounds))
    return 2 * n ** 3 / best


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objects", type=int, nargs="+", default=[1, 3])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--meta-seconds", nargs="*", default=[], metavar="OBJECTS=SECONDS",
                    help="Meta's measured seconds per frame, e.g. 1=5.31 3=11.9")
    args = ap.parse_args()
    meta = {int(k): float(v) for k, v in (item.split("=") for item in args.meta_seconds)}

    model = build_model("sam2.1_hiera_tiny", device="cpu")
    rate = matmul_rate(args.threads)
    print(f"kernel path {cpu_capability()}, {args.threads} threads: float32 matrix products at "
          f"{rate / 1e9:.0f} GFLOP/s")
    with torch.inference_mode():
        for n in args.objects:
            total, parts = frame_flops(model, n)
            floor = total / rate
            line = (f"{n} object(s): {total / 1e9:.0f} GFLOP a frame ("
                    + ", ".join(f"{k} {v / 1e9:.0f}" for k, v in parts.items())
                    + f"); float32 floor {floor:.2f} s a frame")
            if n in meta:
                line += f"; Meta measured {meta[n]:.2f} s: best possible ratio {floor / meta[n]:.2f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
