"""samroto vs Meta's sam2 1.1.0, side by side on this machine (issues 10, 23). Not a test; never in CI.

    .venv/bin/python bench/compare_official.py [--frames 32] [--objects 1 3] [--rounds 1]
        [--precisions float32 auto] [--kernels native avx2] [--lengths 8 16] [--venv DIR]

Installs Meta's package into its own throwaway virtualenv (sam2==1.1.0 from PyPI, built with
SAM2_BUILD_CUDA=0 and --no-build-isolation, torch pinned to the one in use, torchvision
without its compiled ops; ``--venv`` reuses one that holds sam2 1.1.0, such as the oracle's),
builds the real ``sam2.1_hiera_t`` config with random weights once, saves them as an
official checkpoint, and then times both implementations on the same generated JPEG clip,
the same prompts and the same weights, alternating runs. Each run is its own process, so
peak RSS is that implementation's alone. samroto runs once per ``--precisions`` entry
(Meta's always runs float32, as it does on a CPU); ``--lengths`` adds a peak-memory sweep
over shorter clips (one object, no correction).

``--kernels`` runs everything once per CPU kernel path: ``native`` (what this CPU picks) and
``avx2`` (AVX2 kernels on a newer CPU: torch's own kernels, oneDNN, MKL and FBGEMM are each
capped at AVX2 by their environment variable, see AVX2_ENV; every worker reports the path
torch took). Per-frame time is the median over the frames that find SAM 2's memory bank
full (frame 8 on), so a short clip measures the steady state.
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
# An AVX-512 CPU made to run the kernels an AVX2-only CPU gets: torch's own kernels and oneDNN
# obey the first two; MKL (torch's float32 matrix products) and FBGEMM (int8) pick their own
# kernels and need theirs.
AVX2_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
            "MKL_ENABLE_INSTRUCTIONS": "AVX2", "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2"}
KERNEL_ENV = {"native": {}, "avx2": AVX2_ENV}
TORCHVISION_FOR = {"2.13": "0.28", "2.12": "0.27", "2.11": "0.26", "2.10": "0.25", "2.9": "0.24"}


def sh(cmd, **kw):
    print("$", " ".join(map(str, cmd)), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def holds_sam2(python: Path) -> bool:
    """Whether an existing virtualenv already has Meta's sam2 1.1.0 (the oracle's does): reuse it."""
    check = "import importlib.metadata as m; assert m.version('sam2') == '1.1.0'"
    return python.exists() and subprocess.run([str(python), "-c", check], capture_output=True).returncode == 0


def official_venv(root: Path) -> Path:
    import torch

    python = root / "bin" / "python"
    if (root / ".ready").exists() or holds_sam2(python):
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
    """Discs moving over a textured background, as JPEGs named the way Meta's loader wants.
    Returns a click on each disc in frame 0. Objects past the third get a row of their own
    along the bottom; discs wrap around the frame's edges on long clips."""
    import cv2

    rng = np.random.default_rng(0)
    w, h = size
    background = cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), (0, 0), 6)
    extra = range(objects - 3)
    colours = [(220, 40, 40), (40, 200, 60), (50, 80, 230)] + [tuple(int(c) for c in rng.integers(30, 230, 3))
                                                              for _ in extra]
    starts = ([(0.25, 0.35), (0.55, 0.6), (0.75, 0.3)] + [(0.12 + 0.19 * k, 0.82) for k in extra])[:objects]
    points = []
    for t in range(frames):
        img = background.copy()
        for k, (sx, sy) in enumerate(starts):
            cx, cy = int((sx + 0.004 * t) * w) % w, int((sy + 0.002 * t) * h) % h
            cv2.circle(img, (cx, cy), int(0.08 * h) + 6 * (k % 3), colours[k], -1)
            if t == 0:
                points.append([float(cx), float(cy)])
        cv2.imwrite(str(folder / f"{t:05d}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return points


def run_worker(python, script, *args, env=None):
    out = subprocess.run([str(python), str(HERE / script), *map(str, args)], capture_output=True, text=True,
                         env={**os.environ, **(env or {})})
    if out.returncode != 0:
        sys.exit(f"{script} failed (exit {out.returncode}):\n{out.stderr[-4000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"  {script}: {json.dumps(result)}", flush=True)
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--objects", type=int, nargs="+", default=[1, 3])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--precisions", nargs="+", default=["float32", "auto"], choices=["float32", "bfloat16", "auto"])
    ap.add_argument("--kernels", nargs="+", default=["native", "avx2"], choices=sorted(KERNEL_ENV),
                    help="CPU kernel paths to run everything on (native: this CPU's own; avx2: capped at AVX2)")
    ap.add_argument("--lengths", type=int, nargs="*", default=[], help="clip lengths for the peak-memory sweep")
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
    reprop = min(30, args.frames - fix_frame)
    runs = ["official"] + [f"samroto {p}" for p in args.precisions]

    def run(name, job_path, kernels):
        env = KERNEL_ENV[kernels]
        if name == "official":
            return run_worker(official, "official_worker.py", "track", job_path, env=env)
        return run_worker(sys.executable, "samroto_worker.py", job_path, name.split()[1], env=env)

    rows, precisions, took = [], {}, {}
    for kernels in args.kernels:
        for n_obj in args.objects:
            job.update(frames_dir=str(work / "frames"),
                       objects=[{"id": k + 1, "point": points[k]} for k in range(n_obj)],
                       correction={"frame": fix_frame, "point": points[0], "frames": reprop})
            (work / "job.json").write_text(json.dumps(job))
            results = {name: [] for name in runs}
            print(f"{kernels} kernels, {n_obj} object(s):", flush=True)
            for _ in range(args.rounds):  # alternate, so drift in machine load hits every run
                for name in runs:
                    results[name].append(run(name, work / "job.json", kernels))
            for metric in ["per_frame_s", "repropagate_s", "peak_rss_mb"]:
                rows.append((kernels, n_obj, args.frames, metric,
                             {k: min(r[metric] for r in v) for k, v in results.items()}))
            precisions.update({k: v[0].get("precision", "float32") for k, v in results.items()})
            took[kernels] = sorted({r["kernels"] for v in results.values() for r in v})

        for length in sorted(set(args.lengths)):
            clip = work / f"frames_{length}"
            clip.mkdir(exist_ok=True)
            for t in range(length):
                if not (clip / f"{t:05d}.jpg").exists():
                    (clip / f"{t:05d}.jpg").symlink_to(work / "frames" / f"{t:05d}.jpg")
            job.update(frames_dir=str(clip), objects=[{"id": 1, "point": points[0]}], correction=None)
            (work / "job.json").write_text(json.dumps(job))
            print(f"{kernels} kernels, {length} frames, memory sweep:", flush=True)
            best = {name: run(name, work / "job.json", kernels)["peak_rss_mb"] for name in runs}
            rows.append((kernels, 1, length, "peak_rss_mb", best))

    import platform

    import torch

    print(f"\nsam2.1_hiera_t (random weights), 1024x1024 model input, 640x360 JPEG frames, "
          f"{args.threads} threads, CPU, torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; best of {args.rounds}; per frame: median over frames 8 on; "
          f"re-propagation: {reprop} frames from frame {fix_frame} "
          f"after a negative click; official runs float32; samroto precisions: "
          + ", ".join(f"{k} -> {v}" for k, v in precisions.items() if k != "official")
          + "; kernel paths torch reported: " + ", ".join(f"{k} -> {'/'.join(v)}" for k, v in took.items()))
    others = runs[1:]
    print(f"{'kernels':>7} {'objects':>7} {'frames':>6} {'metric':<14} {'official':>9} "
          + " ".join(f"{n:>17} {'ratio':>5}" for n in others))
    for kernels, n_obj, frames, metric, best in rows:
        o = best["official"]
        print(f"{kernels:>7} {n_obj:>7} {frames:>6} {metric:<14} {o:>9.3f} "
              + " ".join(f"{best[n]:>17.3f} {best[n] / o:>5.2f}" for n in others))


if __name__ == "__main__":
    main()
