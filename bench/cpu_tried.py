"""What was tried to make float32 frames faster on CPUs without bfloat16 products, and
why it was not kept (issue 23; docs/speed.md "What was tried"). Not a test; never in CI.

    env ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 \\
        FBGEMM_ENABLE_INSTRUCTIONS=AVX2 .venv/bin/python bench/cpu_tried.py [--skip-compile]

One thread, CPU time (best of three): robust to other work on the machine, and what a
single core of a farm node spends. Each line names the candidate, its time against the
float32 way samroto computes it, and how far its numbers move (relative L2 error).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import cpu_capability  # noqa: E402

from samroto.core import build_model  # noqa: E402
from samroto.core.model.transformer import attend_in_blocks  # noqa: E402

# one cross-attention of memory attention with a full bank: 4096 queries, 7 x 4096 spatial
# memories + 64 object-pointer tokens, 256 wide; memories 64 wide
N_Q, N_K, WIDTH, MEM = 4096, 28736, 256, 64


def cpu_seconds(fn, rounds=3):
    fn()
    best = float("inf")
    for _ in range(rounds):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def rel_err(got, want):
    return ((got - want).norm() / want.norm()).item()


def report(name, seconds, baseline, err=None, note=""):
    moved = "exact" if err == 0 else ("" if err is None else f"moved {err:.2%}")
    print(f"{name:<58} {seconds:7.3f} s vs {baseline:7.3f} s ({seconds / baseline:4.2f}x)  {moved} {note}",
          flush=True)


def weights_first(q, keys_t, v_in, rows):
    """samroto's CPU attention (core/model/transformer.py): weights formed a block of query rows
    at a time, multiplied into the 64-wide memories before their projection."""
    return attend_in_blocks(q, keys_t, v_in, rows, q.new_empty(q.shape[0], v_in.shape[1]))


def attention_candidates():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(N_Q, WIDTH, generator=g) * WIDTH ** -0.5
    k = torch.randn(N_K, WIDTH, generator=g)
    v_in = torch.randn(N_K, MEM, generator=g)
    keys_t = k.t().contiguous()
    base = cpu_seconds(lambda: weights_first(q, keys_t, v_in, 144))
    print(f"memory attention, one cross-attention ({N_Q} x {N_K}, {WIDTH} wide, values {MEM} wide); "
          f"samroto: weights-first in blocks of 144 query rows: {base:.3f} s")
    for rows in (16, 32, 64, 288):
        report(f"  weights-first in blocks of {rows} rows", cpu_seconds(lambda: weights_first(q, keys_t, v_in, rows)),
               base, 0)
    fused = cpu_seconds(lambda: F.scaled_dot_product_attention(q[None, None], k[None, None], v_in[None, None],
                                                               scale=1.0))
    report("  PyTorch's fused CPU attention, 64-wide values", fused, base)

    product = cpu_seconds(lambda: torch.mm(q, keys_t))
    want = torch.mm(q, keys_t)
    with warnings.catch_warnings():  # quantized tensors are deprecated in torch >= 2.10; measured all the same
        warnings.simplefilter("ignore")
        scales = k.abs().amax(1) / 127
        k8 = torch.quantize_per_channel(k, scales, torch.zeros(N_K, dtype=torch.long), 0, torch.qint8)
        packed = torch.ops.quantized.linear_prepack(k8, None)
        got = torch.ops.quantized.linear_dynamic(q, packed, True)
        int8 = cpu_seconds(lambda: torch.ops.quantized.linear_dynamic(q, packed, True))
    report("  q k^T in int8 (FBGEMM, per-key scales) vs float32 q k^T", int8, product, rel_err(got, want))
    q8 = torch.randint(-127, 127, (N_Q, WIDTH), dtype=torch.int8, generator=g)
    k8t = torch.randint(-127, 127, (WIDTH, N_K), dtype=torch.int8, generator=g)
    report("  torch._int_mm int8 product vs float32 q k^T", cpu_seconds(lambda: torch._int_mm(q8, k8t)), product)
    k8 = k8t.t().contiguous()
    report("  torch._int_mm, keys row-major (oneDNN's fast NT layout)", cpu_seconds(lambda: torch._int_mm(q8, k8.t())),
           product)
    got = int8_scores_first(q, k, v_in, 144)
    report("  weights-first with q k^T in int8 (scales per query and key)",
           cpu_seconds(lambda: int8_scores_first(q, k, v_in, 144)), base, rel_err(got, weights_first(q, keys_t, v_in, 144)))


def quantize_rows(x):
    """Symmetric int8 with one scale per row."""
    scale = x.abs().amax(-1).clamp_min_(1e-12).div_(127.0)
    return torch.div(x, scale[:, None]).round_().to(torch.int8), scale


def fake_quantized(x):
    x8, scale = quantize_rows(x)
    return x8.float() * scale[:, None]


def int8_scores_first(q, k, v_in, rows):
    """weights_first with q k^T as an int8 product (oneDNN's s8 x s8 -> s32 GEMM), turned back
    to float32 with the row scales before the softmax."""
    k8, k_scale = quantize_rows(k)
    out = q.new_empty(q.shape[0], v_in.shape[1])
    for s in range(0, q.shape[0], rows):
        q8, q_scale = quantize_rows(q[s:s + rows])
        scores = torch.mul(torch._int_mm(q8, k8.t()), k_scale).mul_(q_scale[:, None])
        torch.mm(scores.softmax(-1), v_in, out=out[s:s + rows])
    return out


def int8_fidelity():
    """Worst mask IoU against float32 over the parity fixture's scenarios A-C (what
    tests/test_precision.py asks of any lower precision: >= 0.99) with memory attention's
    q k^T quantised to int8 per row: queries, keys, or both."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from parity_replay import Recording, load_model
    from test_precision import iou, replay

    from samroto.core.model import transformer

    model, recording = load_model(), Recording("sam2_parity")
    exact = {s: replay(model, s, recording.ops, recording.arrays, "float32")[1] for s in "ABC"}
    plain = transformer.Attention._attend_values_late
    print("memory attention's q k^T in int8 (per-row scales), parity fixture, worst mask IoU vs float32 "
          "(lower precisions must keep >= 0.99):")
    for sides in ("q", "k", "qk"):
        def quantized(self, q, k, v_in, sides=sides):
            if "q" in sides:
                q = fake_quantized(q.reshape(-1, q.shape[-1])).view_as(q)
            if "k" in sides:
                k = fake_quantized(k.reshape(-1, k.shape[-1])).view_as(k)
            return plain(self, q, k, v_in)

        transformer.Attention._attend_values_late = quantized
        try:
            worst = []
            for s in "ABC":
                _, fast = replay(model, s, recording.ops, recording.arrays, "float32")
                worst.append(min(iou(a[o], b[o]) for (_, a), (_, b) in zip(exact[s], fast)
                                 for o in range(len(a)) if a[o].any()))
        finally:
            transformer.Attention._attend_values_late = plain
        print(f"  {'queries and keys' if sides == 'qk' else {'q': 'queries', 'k': 'keys'}[sides]} quantised: "
              + ", ".join(f"{s} {w:.4f}" for s, w in zip("ABC", worst)), flush=True)


def encoder_candidates(skip_compile):
    model = build_model("sam2.1_hiera_tiny", device="cpu")  # random weights: time and drift only
    encoder = model.image_encoder
    image = torch.randn(1, 3, 1024, 1024, generator=torch.Generator().manual_seed(0))

    def features(module):
        return module(image)["vision_features"]

    with torch.inference_mode():
        want = features(encoder)
        base = cpu_seconds(lambda: features(encoder))
        print(f"image encoder (sam2.1_hiera_t at 1024), float32: {base:.3f} s")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            int8 = torch.ao.quantization.quantize_dynamic(encoder, {torch.nn.Linear}, dtype=torch.qint8)
        report("  int8 dynamic quantisation of its Linear layers (FBGEMM)", cpu_seconds(lambda: features(int8)),
               base, rel_err(features(int8), want))
        if not skip_compile:
            compiled = torch.compile(encoder)
            t0 = time.perf_counter()
            got = features(compiled)
            took = time.perf_counter() - t0
            report("  torch.compile (inductor)", cpu_seconds(lambda: features(compiled)), base, rel_err(got, want),
                   f"(first call {took:.0f} s)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-compile", action="store_true", help="leave out torch.compile (needs a C++ compiler)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.backends.quantized.engine = "fbgemm"
    print(f"kernel path {cpu_capability()}, 1 thread, CPU seconds, best of 3")
    attention_candidates()
    int8_fidelity()
    encoder_candidates(args.skip_compile)


if __name__ == "__main__":
    main()
