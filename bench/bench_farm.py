"""Farm-node throughput on a CPU: one `samroto track` process with every thread, or several
shots at once with fewer threads each. Not a test; never in CI (docs/farm.md quotes it).

    python bench/bench_farm.py [--shots 4] [--frames 8] [--size 640x360] [--layouts 1x2 2x1]

Each layout PxT runs the shots with at most P `samroto track` processes at a time, each
with T threads (OMP_NUM_THREADS), on the real sam2.1_hiera_t architecture at 1024 with
random weights (speed does not depend on the weights). Prints frames per minute for the
node and the peak RSS of the largest process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def random_checkpoint(folder: Path) -> tuple[Path, Path]:
    import torch

    from samroto.core.model.build import build_model

    config = ROOT / "core" / "configs" / "sam2.1_hiera_t.yaml"
    torch.manual_seed(0)
    model = build_model(config, device="cpu")
    path = folder / "tiny_random.pt"
    torch.save({"model": model.state_dict()}, path)
    return config, path


def run_layout(shots, processes, threads, config, checkpoint, out):
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "SAMROTO_FINISH_REFINE": "false"}
    pending, running, peak = list(shots), [], 0
    started = time.perf_counter()
    while pending or running:
        while pending and len(running) < processes:
            plate, prompts, name = pending.pop(0)
            cmd = [sys.executable, "-m", "samroto", "track", plate, "--prompts", prompts, "--model", str(config),
                   "--checkpoint", str(checkpoint), "--device", "cpu", "--precision", "float32", "--quiet",
                   "--out", str(out / f"{processes}x{threads}" / name / "m.%04d.exr")]
            running.append(subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE))
        proc = running[0]
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"samroto track failed: {proc.stderr.read().decode()[-2000:]}")
        peak = max(peak, usage.ru_maxrss / 1024)
        running.pop(0)
    return time.perf_counter() - started, peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=4)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", default="640x360")
    cores = os.cpu_count() or 1
    parser.add_argument("--layouts", nargs="+", default=[f"1x{cores}", f"{cores}x1"] +
                        ([f"{cores // 2}x2"] if cores >= 4 else []), help="PROCESSESxTHREADS")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    from samroto.core import sample

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        config, checkpoint = random_checkpoint(tmp)
        shots = []
        for i in range(args.shots):
            plate = sample.write_sample(tmp / f"sh{i}", args.frames, width, height)
            prompts = tmp / f"sh{i}.json"
            prompts.write_text(json.dumps({"version": 1, "objects": [{"id": 1, "name": "disc", "prompts": [
                {"frame": sample.FIRST_FRAME, "box": [width * 0.1, height * 0.3, width * 0.35, height * 0.6]}]}]}))
            shots.append((plate, str(prompts), f"sh{i}"))
        print(f"{cores} cores; {args.shots} shots x {args.frames} frames at {args.size}, sam2.1_hiera_t at 1024, "
              f"float32, one object")
        print(f"{'layout':>8} {'seconds':>8} {'frames/min':>11} {'peak RSS/process':>17}")
        for layout in args.layouts:
            processes, threads = map(int, layout.split("x"))
            seconds, peak = run_layout(shots, processes, threads, config, checkpoint, tmp / "out")
            frames = args.shots * args.frames
            print(f"{layout:>8} {seconds:8.1f} {frames / seconds * 60:11.1f} {peak:14.0f} MiB", flush=True)
    print(f"(peak RSS of all children so far: {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MiB)")


if __name__ == "__main__":
    main()
