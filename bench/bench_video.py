"""Per-frame propagation time and peak RSS for 1 and 3 objects, and the time to
re-propagate after a correction with and without the image-feature cache.

    python bench/bench_video.py [--frames 40] [--config CONFIG.yaml --checkpoint FILE] [--device cpu]

Defaults to the micro fixture model (tests/data/sam2_parity) on a generated 320x180 clip;
give a real config/checkpoint for real numbers. Each case runs in its own process so its
peak RSS is its own.
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "sam2_parity"
PROMPTS = [dict(points=[[80, 70]], labels=[1]), dict(box=[150, 80, 260, 170]), dict(points=[[40, 30]], labels=[1])]


def worker(case, args):
    import torch

    from samroto.core import sample
    from samroto.core.model.build import build_model
    from samroto.core.video import VideoSession

    model = build_model(args.config, args.checkpoint, device=args.device)
    frames = sample.make_frames(args.frames, 320, 180)
    objects = 3 if case == "objects3" else 1
    cache = 0 if case == "nocache" else 1 << 30
    session = VideoSession(model, frames, feature_cache_bytes=cache)
    for obj in range(objects):
        session.add_prompt(0, obj + 1, **PROMPTS[obj])
    t0 = time.perf_counter()
    n = sum(1 for _ in session.propagate())
    first = time.perf_counter() - t0
    out = {"case": case, "objects": objects, "frames": n, "ms_per_frame": round(1000 * first / n, 1)}
    if case in ("cache", "nocache"):
        # a correction mid-shot, then propagate again from the first prompt
        session.add_prompt(args.frames // 2, 1, points=[[80, 70], [30, 150]], labels=[1, 0])
        t0 = time.perf_counter()
        sum(1 for _ in session.propagate())
        out["repropagate_s"] = round(time.perf_counter() - t0, 2)
        out["feature_cache_hits"] = session.features.hits
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--config", default=str(DATA / "config.yaml"))
    ap.add_argument("--checkpoint", default=str(DATA / "checkpoint.pt"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--worker")
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args)
    for case in ("objects1", "objects3", "cache", "nocache"):
        cmd = [sys.executable, __file__, "--worker", case, "--frames", str(args.frames), "--config", args.config,
               "--checkpoint", args.checkpoint, "--device", args.device]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        print(proc.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
