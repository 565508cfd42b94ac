"""Finishing cost per frame at 1080p and 4K, on the CPU and (when present) CUDA / MPS.

    python bench/bench_finishing.py [--frames 5] [--device cpu,cuda] [--sizes 1080p,4k]

For each device and size it times, per frame, one object: bilinear upsampling (SAM 2's
own), guided refinement, the clean-up, temporal smoothing, grow/shrink + feather + choke,
the whole default pipeline and the whole pipeline with every control on; and spline
extraction of the finished matte. Inputs are generated (a moving disc on a textured plate,
256x256 logits as SAM 2 gives them). Prints a table; ``--json`` writes the numbers too.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from samroto.core.finishing import synthetic as S
from samroto.core.finishing.cleanup import clean_matte
from samroto.core.finishing.edges import apply_edges
from samroto.core.finishing.pipeline import Finisher
from samroto.core.finishing.refine import bilinear_alpha, refine_alpha
from samroto.core.finishing.temporal import TemporalStabilizer
from samroto.core.splines import matte_to_shapes

SIZES = {"1080p": (1080, 1920), "4k": (2160, 3840)}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    elif device.type == "mps":
        torch.mps.synchronize()


def _time(fn, device, frames):
    fn(0)                                  # warm-up (allocations, kernels)
    _sync(device)
    t0 = time.perf_counter()
    for i in range(frames):
        fn(i + 1)
    _sync(device)
    return (time.perf_counter() - t0) / frames * 1000.0


def bench(device: torch.device, size: str, frames: int) -> dict:
    h, w = SIZES[size]
    gts = [S.disc_alpha(h, w, w * 0.4 + 6 * i, h * 0.5, h * 0.3) for i in range(frames + 1)]
    plates = [torch.from_numpy(S.composite(g, seed=i)).to(device) for i, g in enumerate(gts)]
    logits = [torch.from_numpy(S.sam_like_logits(g, 256)).to(device) for g in gts]
    alpha = refine_alpha(logits[0], plates[0])
    stab = TemporalStabilizer(0.7)
    default = Finisher(None, device=device)
    full = Finisher(None, device=device, hole_area=200, speck_area=200, keep_largest=True,
                    temporal_strength=0.7, grow=2, feather=3, choke=1)
    rows = {
        "bilinear (SAM 2)": lambda i: bilinear_alpha(logits[i], (h, w)),
        "guided refine": lambda i: refine_alpha(logits[i], plates[i]),
        "clean-up (holes+specks+largest)": lambda i: clean_matte(alpha, 200, 200, True),
        "temporal": lambda i: stab(alpha, plates[i], 1000 + i),
        "grow+feather+choke": lambda i: apply_edges(alpha, 2, 3, 1),
        "pipeline, defaults": lambda i: default.finish(logits[i], plates[i], 1000 + i),
        "pipeline, everything on": lambda i: full.finish(logits[i], plates[i], 1000 + i),
    }
    out = {name: _time(fn, device, frames) for name, fn in rows.items()}
    matte = alpha.cpu().numpy()
    t0 = time.perf_counter()
    shapes = matte_to_shapes(matte)
    out["splines (per frame, CPU)"] = (time.perf_counter() - t0) * 1000.0
    out["_points"] = [len(s) for s in shapes]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--device", default="", help="comma list (default: cpu plus cuda/mps when present)")
    ap.add_argument("--sizes", default="1080p,4k")
    ap.add_argument("--json", default="", help="also write the numbers to this file")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args()
    devices = args.device.split(",") if args.device else ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) + (
        ["mps"] if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available() else [])
    if args.threads:
        torch.set_num_threads(args.threads)
    results = {}
    for dev in devices:
        device = torch.device(dev)
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu x{torch.get_num_threads()} threads"
        for size in args.sizes.split(","):
            r = bench(device, size, args.frames)
            results[f"{dev}/{size}"] = r
            print(f"\n{dev} ({name}), {size}, ms per frame, one object:")
            for k, v in r.items():
                if not k.startswith("_"):
                    print(f"  {k:34s} {v:9.1f}")
            print(f"  spline points per shape: {r['_points']}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
