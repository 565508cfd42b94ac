"""Automatic masks: seconds per frame and peak memory, samroto vs Meta's generator (issue 20).

    .venv/bin/python bench/bench_automask.py [--config sam2.1_hiera_t] [--size 1024]
        [--points-per-side 32] [--precisions float32 auto] [--rounds 1] [--threads N]
        [--all-pass] [--meta-python /work/oracle-venv/bin/python]

Builds the config with seeded random weights, saves them as an official checkpoint (Meta's
format, ``{"model": state_dict}``) in a temporary folder, makes a synthetic size x size
image, and runs each implementation on the same weights and image in its own process (so
peak RSS is that implementation's alone), alternating, ``--rounds`` times; the best of the
rounds is shown. Meta's generator runs from the virtualenv of ``--meta-python`` (Meta's
``sam2`` 1.1.0, ../shared/oracle/setup_venv.sh), in float32 as it does on a CPU. Default
thresholds are Meta's; random weights predict low IoU, so few masks pass them:
``--all-pass`` sets pred_iou_thresh and stability_score_thresh to 0 to time the
full-resolution stage on every mask as well. Not a test; never in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

from compare_official import run_worker

DEFAULT_META = os.environ.get("SAMROTO_ORACLE_PYTHON", "/work/oracle-venv/bin/python")


def make_image(size: int, path: Path) -> None:
    """Blurred noise with a few flat shapes: edges everywhere, some objects."""
    import cv2

    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 255, (size, size, 3), dtype=np.uint8), (0, 0), 6)
    for k in range(6):
        centre = tuple(int(v) for v in rng.integers(size // 8, size - size // 8, 2))
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        cv2.circle(image, centre, int(size * (0.05 + 0.02 * k)), colour, -1)
    np.save(path, image)


def save_checkpoint(config: str, seed: int, path: Path) -> None:
    import torch

    from samroto.core.model.build import build_model

    torch.manual_seed(seed)
    model = build_model(config, device="cpu")
    torch.save({"model": model.state_dict()}, path)


def meta_config(stem: str) -> str:
    return f"configs/{'sam2.1' if stem.startswith('sam2.1') else 'sam2'}/{stem}.yaml"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="sam2.1_hiera_t", help="official config stem (core/configs/)")
    ap.add_argument("--size", type=int, default=1024, help="the image is size x size")
    ap.add_argument("--points-per-side", type=int, default=32)
    ap.add_argument("--precisions", nargs="+", default=["float32", "auto"], choices=["float32", "bfloat16", "auto"])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--all-pass", action="store_true", help="pred_iou_thresh=0, stability_score_thresh=0")
    ap.add_argument("--meta-python", default=DEFAULT_META, help="python of a virtualenv with Meta's sam2 1.1.0")
    ap.add_argument("--no-meta", action="store_true", help="time samroto only")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="samroto-automask-bench-"))
    job = {
        "samroto_config": args.config, "meta_config": meta_config(args.config),
        "checkpoint": str(work / "random.pt"), "image": str(work / "image.npy"), "threads": args.threads,
        "points_per_side": args.points_per_side,
        "thresholds": {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0} if args.all_pass else {},
    }
    save_checkpoint(args.config, 0, Path(job["checkpoint"]))
    make_image(args.size, Path(job["image"]))
    runs = ([] if args.no_meta else ["meta"]) + [f"samroto {p}" for p in args.precisions]
    results = {name: [] for name in runs}
    for _ in range(args.rounds):  # alternate, so drift in the machine's load hits every run
        for name in runs:
            which, _, precision = name.partition(" ")
            path = work / f"job_{which}_{precision or 'meta'}.json"
            path.write_text(json.dumps({**job, "precision": precision or "float32"}))
            python = sys.executable if which == "samroto" else args.meta_python
            results[name].append(run_worker(python, "automask_worker.py", which, path))

    import torch

    print(f"\n{args.config} (random weights), {args.size}x{args.size} image, {args.points_per_side}x"
          f"{args.points_per_side} grid, "
          f"{'every mask passing the filters' if args.all_pass else 'default thresholds'}, "
          f"{args.threads} threads, CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs), "
          f"torch {torch.__version__}; best of {args.rounds}")
    base = min(r["seconds"] for r in results["meta"]) if "meta" in results else None
    base_mem = min(r["peak_rss_mb"] for r in results["meta"]) if "meta" in results else None
    print(f"{'run':<18} {'precision':>9} {'s/frame':>8} {'cpu s':>8} {'ratio':>6} {'peak MiB':>9} {'ratio':>6} "
          f"{'masks':>6}")
    for name, rows in results.items():
        best = min(rows, key=lambda r: r["seconds"])
        mem = min(r["peak_rss_mb"] for r in rows)
        ratio = f"{best['seconds'] / base:.2f}" if base else "-"
        mem_ratio = f"{mem / base_mem:.2f}" if base_mem else "-"
        print(f"{name:<18} {best['precision']:>9} {best['seconds']:>8.1f} {best['cpu_seconds']:>8.1f} {ratio:>6} "
              f"{mem:>9.0f} {mem_ratio:>6} {best['masks']:>6}")


if __name__ == "__main__":
    main()
