"""samroto vs Meta's sam2 1.1.0, side by side on this machine (issue 10). Not a test; never in CI.

    .venv/bin/python bench/compare_official.py [--frames 40] [--objects 1 3] [--rounds 2]

Installs Meta's package into its own throwaway virtualenv (sam2==1.1.0 from PyPI, built with
SAM2_BUILD_CUDA=0 and --no-build-isolation, torch pinned to the one in use, torchvision
without its compiled ops), builds the real ``sam2.1_hiera_t`` config with random weights
once, saves them as an official checkpoint, and then times both implementations on the
same generated JPEG clip, the same prompts and the same weights, alternating runs. Each
run is its own process, so peak RSS is that implementation's alone.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TORCHVISION_FOR = {"2.13": "0.28", "2.12": "0.27", "2.11": "0.26", "2.10": "0.25", "2.9": "0.24"}


def sh(cmd, **kw):
    print("$", " ".join(map(str, cmd)), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def official_venv(root: Path) -> Path:
    import torch

    python = root / "bin" / "python"
    if (root / ".ready").exists():
        return python
    torch_version = torch.__version__.split("+")[0]
    tv = TORCHVISION_FOR[".".join(torch_version.split(".")[:2])]
    sh([sys.executable, "-m", "venv", "--clear", root])
    pip = [python, "-m", "pip", "install", "--quiet"]
    sh(pip + [f"torch=={torch_version}", "numpy", "pillow", "tqdm", "hydra-core>=1.3.2", "iopath>=0.1.10",
              "setuptools", "wheel"])
    sh(pip + ["--no-deps", f"torchvision=={tv}.*"])
    sh(pip + ["--no-deps", "--no-build-isolation", "sam2==1.1.0"], env={**os.environ, "SAM2_BUILD_CUDA": "0"})
    (root / ".ready").write_text("ok")
    return python


def make_clip(folder: Path, frames: int, size=(640, 360), objects=3):
    """Discs moving over a textured background, as JPEGs named the way Meta's loader wants."""
    import cv2

    rng = np.random.default_rng(0)
    w, h = size
    background = cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), (0, 0), 6)
    colours = [(220, 40, 40), (40, 200, 60), (50, 80, 230)]
    starts = [(0.25, 0.35), (0.55, 0.6), (0.75, 0.3)][:objects]
    points = []
    for t in range(frames):
        img = background.copy()
        for k, (sx, sy) in enumerate(starts):
            cx, cy = int((sx + 0.004 * t) * w), int((sy + 0.002 * t) * h)
            cv2.circle(img, (cx, cy), int(0.08 * h) + 6 * k, colours[k], -1)
            if t == 0:
                points.append([float(cx), float(cy)])
        cv2.imwrite(str(folder / f"{t:05d}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return points


def run_worker(python, script, *args):
    out = subprocess.run([str(python), str(HERE / script), *map(str, args)], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{script} failed (exit {out.returncode}):\n{out.stderr[-4000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"  {script}: {json.dumps(result)}", flush=True)
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--objects", type=int, nargs="+", default=[1, 3])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--venv", type=Path, default=Path.home() / ".cache" / "samroto" / "bench" / "official-venv")
    args = ap.parse_args()

    official = official_venv(args.venv)
    work = Path(tempfile.mkdtemp(prefix="samroto-compare-"))
    (work / "frames").mkdir()
    points = make_clip(work / "frames", args.frames)
    job = {
        "seed": 0, "threads": args.threads, "frames_dir": str(work / "frames"),
        "official_config": "configs/sam2.1/sam2.1_hiera_t.yaml", "samroto_config": "sam2.1_hiera_tiny",
        "checkpoint": str(work / "random_tiny.pt"),
    }
    (work / "job.json").write_text(json.dumps(job))
    run_worker(official, "official_worker.py", "prepare", work / "job.json")

    fix_frame = max(1, args.frames - 31)
    rows = []
    for n_obj in args.objects:
        job.update(objects=[{"id": k + 1, "point": points[k]} for k in range(n_obj)],
                   correction={"frame": fix_frame, "point": points[0], "frames": min(30, args.frames - fix_frame)})
        (work / "job.json").write_text(json.dumps(job))
        results = {"official": [], "samroto": []}
        print(f"{n_obj} object(s):", flush=True)
        for _ in range(args.rounds):  # alternate, so drift in machine load hits both
            results["official"].append(run_worker(official, "official_worker.py", "track", work / "job.json"))
            results["samroto"].append(run_worker(sys.executable, "samroto_worker.py", work / "job.json"))
        best = {k: {m: min(r[m] for r in v) for m in v[0]} for k, v in results.items()}
        rows.append((n_obj, best))

    import platform

    import torch

    print(f"\nsam2.1_hiera_t (random weights), 1024x1024 model input, {args.frames} frames of 640x360, "
          f"{args.threads} threads, CPU float32, torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; best of {args.rounds}; re-propagation: {min(30, args.frames - fix_frame)} frames "
          f"from frame {fix_frame} after a negative click")
    print(f"{'objects':>7} {'metric':<22} {'official':>10} {'samroto':>10} {'ratio':>7}")
    for n_obj, best in rows:
        for metric in ["per_frame_s", "repropagate_s", "peak_rss_mb"]:
            o, s = best["official"][metric], best["samroto"][metric]
            print(f"{n_obj:>7} {metric:<22} {o:>10.3f} {s:>10.3f} {s / o:>7.2f}")


if __name__ == "__main__":
    main()
