"""Peak host RSS (and CUDA memory) of a VideoSession as the clip grows: must stay flat.

    python bench/bench_video_memory.py [--lengths 100 1000 10000] [--device cpu|cuda]

Each length runs in its own process (peak RSS is per process), on a generated clip of tiny
frames made on demand (the clip itself is never held), with the micro fixture model
(tests/data/sam2_parity), 2 objects, forward propagation, results handed out and dropped.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "sam2_parity"


class LazyClip(Sequence):
    """Frame i made when asked: a disc moving over a gradient (uint8 HxWx3)."""

    def __init__(self, length, width=64, height=48):
        import numpy as np

        self.length, self.width, self.height = length, width, height
        y, x = np.mgrid[0:height, 0:width]
        self._x, self._y = x, y
        self._base = np.stack([x * 255 // width, y * 255 // height, np.full_like(x, 90)], -1).astype(np.uint8)

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        import numpy as np

        if not 0 <= i < self.length:
            raise IndexError(i)
        cx = 16 + (i % 64) * 0.5
        img = self._base.copy()
        img[(self._x - cx) ** 2 + (self._y - 24) ** 2 < 100] = (240, 140, 40)
        return img


def current_rss_mib():
    """Resident set size now (Linux /proc; elsewhere the peak so far)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(length, device):
    import torch

    from samroto.core.model.build import build_model
    from samroto.core.video import VideoSession

    torch.set_num_threads(int(os.environ.get("SAMROTO_BENCH_THREADS", "2")))
    model = build_model(DATA / "config.yaml", DATA / "checkpoint.pt", device=device)
    session = VideoSession(model, LazyClip(length), feature_cache_bytes=16 << 20, results_cache_bytes=8 << 20)
    session.add_prompt(0, 1, points=[[20, 24]], labels=[1])
    session.add_prompt(0, 2, box=[30, 5, 60, 40])
    start = time.perf_counter()
    n = 0
    for _ in session.propagate():
        n += 1
        if n % 1000 == 0:  # the curve inside one run: current RSS every 1000 frames
            print(f"  {n:>6} frames: RSS {current_rss_mib():8.1f} MiB", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - start
    out = {"frames": n, "seconds": round(elapsed, 2), "ms_per_frame": round(1000 * elapsed / n, 2),
           "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
           "session_bytes": session.memory_bytes()}
    if device.startswith("cuda"):
        out["cuda_peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lengths", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--worker", type=int)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.device)
    rows = []
    for length in args.lengths:
        proc = subprocess.run([sys.executable, __file__, "--worker", str(length), "--device", args.device],
                              stdout=subprocess.PIPE, text=True, check=True)
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"{length:>6} frames: peak RSS {row['peak_rss_mib']:8.1f} MiB  "
              f"{row['ms_per_frame']:7.2f} ms/frame  session {row['session_bytes']}"
              + (f"  cuda peak {row['cuda_peak_mib']} MiB" if "cuda_peak_mib" in row else ""), flush=True)
    if len(rows) > 1:
        print(f"peak RSS ratio longest/second-longest: {rows[-1]['peak_rss_mib'] / rows[-2]['peak_rss_mib']:.3f}")


if __name__ == "__main__":
    main()
