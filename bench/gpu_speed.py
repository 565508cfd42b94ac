"""SAM 2 on a GPU: samroto and Meta's sam2 1.1.0 side by side (issue 23). Not a test; never in CI.

    python bench/gpu_speed.py --out DIR [--budget-s 480] [--sizes tiny small base_plus large]
        [--objects 1 3 8] [--frames 60] [--lengths 100 1000] [--smoke]

Run it on the lent GPU machine with bench/gpu_run.sh (which installs the carried wheels
first; bench/gpu_prepare.sh downloads them here). Every figure is appended to
DIR/gpu_speed.jsonl the moment it is measured and DIR/gpu_speed.md is rewritten after each,
so a run stopped by its time limit still reports everything it measured. Steps run most
important first and a step is skipped when the budget left is below its estimate:

1. frames per second, one object, bfloat16, at 1024, every size: samroto, then Meta's
   predictor (bfloat16 autocast, as Meta runs it on GPUs);
2. 3 and 8 objects (samroto batches objects; Meta tracks them one after another);
3. bfloat16 vs float32 masks (IoU per frame, worst and mean) and float32's speed;
4. ``compile: true`` (the image encoder compiled, Meta's compile_image_encoder), and Meta's
   ``vos_optimized`` predictor (everything compiled: how Meta measured its published FPS);
5. peak GPU memory against clip length (one object);
6. click to matte: the first click on a 1080p frame (image encoder + decoder) and the
   second (cached features).

Weights are random (seeded), the same checkpoint for both implementations: speed does not
depend on what the weights say. Frames: a generated 1280x720 clip (moving discs), JPEGs
for Meta's loader and the same decoded pixels for samroto, decoding outside the timings.
``--smoke`` runs the whole script small on a CPU (tests that it works, measures nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # compare_official.py's clip
SIZES = {  # samroto config name -> Meta's config inside its package
    "tiny": ("sam2.1_hiera_tiny", "configs/sam2.1/sam2.1_hiera_t.yaml"),
    "small": ("sam2.1_hiera_small", "configs/sam2.1/sam2.1_hiera_s.yaml"),
    "base_plus": ("sam2.1_hiera_base_plus", "configs/sam2.1/sam2.1_hiera_b+.yaml"),
    "large": ("sam2.1_hiera_large", "configs/sam2.1/sam2.1_hiera_l.yaml"),
}
# Meta's published FPS on an A100 (torch 2.5.1, everything compiled), SAM 2.1 README
META_A100_FPS = {"tiny": 91.2, "small": 84.8, "base_plus": 64.1, "large": 39.5}


# --- the clip ------------------------------------------------------------------------

def make_clip(folder: Path, frames: int, size=(1280, 720), objects=8):
    """compare_official.py's clip (discs over a blurred noise background, JPEGs named as
    Meta's loader wants), decoded back for samroto: (RGB frames, a click on each disc in frame 0)."""
    import cv2

    from compare_official import make_clip as write_clip

    clicks = write_clip(folder, frames, size=size, objects=objects)
    pixels = [cv2.cvtColor(cv2.imread(str(folder / f"{t:05d}.jpg")), cv2.COLOR_BGR2RGB) for t in range(frames)]
    return pixels, clicks


# --- timing --------------------------------------------------------------------------

def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device):
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_mib(device):
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def fps_of(results, device, keep=None):
    """Frames per second of a propagation (every yielded frame, the prompted one included,
    as Meta's figures count them); ``keep(frame, masks)`` sees each frame's masks."""
    sync(device)
    t0 = time.perf_counter()
    n = 0
    for frame, masks in results:
        if keep is not None:
            keep(frame, masks)
        n += 1
    sync(device)
    return n / (time.perf_counter() - t0), n


# --- the two implementations -----------------------------------------------------------

def import_meta():
    # torchvision's meta registrations fail to import on some CPU-only builds; sam2 does not need them
    if not torch.cuda.is_available():
        sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
    import sam2.build_sam as build_sam

    return build_sam


class Samroto:
    name = "samroto"

    def __init__(self, size, checkpoint, device, precision="bfloat16", compile=False):
        from samroto.core import build_model

        options = {"compile_image_encoder": True} if compile else {}
        self.model = build_model(SIZES[size][0], checkpoint=checkpoint, device=device, **options)
        self.device, self.precision = device, precision

    def track(self, pixels, clicks):
        from samroto.core import VideoSession, open_frames

        session = VideoSession(self.model, open_frames(pixels), precision=self.precision)
        for k, click in enumerate(clicks):
            session.add_prompt(0, k + 1, points=[click], labels=[1])
        return ((frame, logits > 0) for frame, _, logits in session.propagate())

    def click(self, image, point):
        from samroto.core.image_predictor import ImagePredictor

        predictor = ImagePredictor(self.model, precision=self.precision)
        times = []
        for _ in range(2):  # the second click reuses the image's features
            sync(self.device)
            t0 = time.perf_counter()
            if not times:
                predictor.set_image(image)
            predictor.predict(point_coords=np.array([point]), point_labels=np.array([1]), multimask_output=False)
            sync(self.device)
            times.append(time.perf_counter() - t0)
        return times


class Meta:
    name = "meta"

    def __init__(self, size, checkpoint, device, precision="bfloat16", vos_optimized=False):
        build_sam = import_meta()
        kwargs = {"vos_optimized": True} if vos_optimized else {}
        self.predictor = build_sam.build_sam2_video_predictor(SIZES[size][1], ckpt_path=checkpoint,
                                                              device=device, **kwargs)
        self.device, self.precision = device, precision

    def track(self, frames_dir, clicks):
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bfloat16")
        with autocast:
            state = self.predictor.init_state(str(frames_dir))
            for k, click in enumerate(clicks):
                self.predictor.add_new_points_or_box(state, frame_idx=0, obj_id=k + 1,
                                                     points=[click], labels=[1])
        def run():
            with autocast:
                for frame, _, logits in self.predictor.propagate_in_video(state):
                    yield frame, logits > 0
        return run()


def random_checkpoint(size, folder: Path, seed=0):
    """Meta's model of this size with seeded random weights, saved as an official checkpoint."""
    path = folder / f"random_{size}.pt"
    if not path.exists():
        torch.manual_seed(seed)
        model = import_meta().build_sam2(SIZES[size][1], ckpt_path=None, device="cpu", mode="eval")
        torch.save({"model": model.state_dict()}, path)
        del model
    return str(path)


# --- the run -------------------------------------------------------------------------

class Report:
    """Figures as they come: one JSON line each, and the table rewritten after every one."""

    def __init__(self, out: Path, header: dict):
        self.out, self.rows = out, []
        out.mkdir(parents=True, exist_ok=True)
        self.jsonl = out / "gpu_speed.jsonl"
        self.jsonl.write_text(json.dumps({"header": header}) + "\n")
        self.header = header

    def add(self, **row):
        self.rows.append(row)
        with self.jsonl.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
        self.write_table()

    def write_table(self):
        lines = ["# GPU: samroto and Meta's sam2 1.1.0", "",
                 " ".join(f"{k}: {v};" for k, v in self.header.items()), "",
                 "| step | size | implementation | objects | frames | precision | figure | value |",
                 "|---|---|---|---|---|---|---|---|"]
        for r in self.rows:
            lines.append("| {step} | {size} | {impl} | {objects} | {frames} | {precision} | {figure} | {value} |".format(
                **{k: r.get(k, "") for k in ("step", "size", "impl", "objects", "frames", "precision", "figure")},
                value=f"{r['value']:.4g}" if isinstance(r.get("value"), float) else r.get("value", "")))
        (self.out / "gpu_speed.md").write_text("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--budget-s", type=float, default=480, help="stop starting steps after this many seconds")
    ap.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    ap.add_argument("--objects", type=int, nargs="+", default=[1, 3, 8])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--lengths", type=int, nargs="*", default=[100, 1000])
    ap.add_argument("--smoke", action="store_true", help="small, on a CPU: checks the script, measures nothing")
    args = ap.parse_args()
    if args.smoke:
        args.sizes, args.objects, args.frames, args.lengths = ["tiny"], [1, 3], 3, [4]
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="samroto-gpu-"))
    longest = max([args.frames] + list(args.lengths))
    (work / "frames").mkdir()
    pixels, clicks = make_clip(work / "frames", longest, size=(320, 180) if args.smoke else (1280, 720),
                               objects=max(args.objects))
    header = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (smoke)",
              "torch": torch.__version__, "frames": args.frames, "clip": "1280x720 JPEG, model input 1024",
              "meta_a100_fps": META_A100_FPS}
    report = Report(args.out, header)

    def clip_of(n):
        folder = work / f"clip_{n}"
        if not folder.exists():
            folder.mkdir()
            for t in range(n):
                (folder / f"{t:05d}.jpg").symlink_to(work / "frames" / f"{t:05d}.jpg")
        return folder, pixels[:n]

    def left():
        return args.budget_s - (time.monotonic() - started)

    def step(name, estimate_s, fn):
        if left() < estimate_s:
            report.add(step=name, figure="skipped", value=f"budget: {left():.0f} s left, needs ~{estimate_s} s")
            return
        try:
            fn()
        except Exception as exc:  # one failed step must not lose the others' figures
            report.add(step=name, figure="error", value=f"{type(exc).__name__}: {exc}"[:300])
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()

    def fps_step(step_name, impl, size, n_obj, precision="bfloat16", frames=None, keep=None, **build):
        frames = frames or args.frames
        folder, frame_pixels = clip_of(frames)
        ckpt = random_checkpoint(size, work)
        model = (Samroto if impl == "samroto" else Meta)(size, ckpt, device, precision, **build)
        source = frame_pixels if impl == "samroto" else folder
        warm_up = clip_of(min(frames, 8))[1 if impl == "samroto" else 0]
        with torch.inference_mode():  # as Meta's README runs its predictor
            fps_of(model.track(warm_up, clicks[:n_obj]), device)
            reset_peak(device)
            fps, n = fps_of(model.track(source, clicks[:n_obj]), device, keep)
        report.add(step=step_name, size=size, impl=impl + "".join(f" {k}" for k in build), objects=n_obj,
                   frames=n, precision=precision, figure="fps", value=fps)
        if device.type == "cuda":
            report.add(step=step_name, size=size, impl=impl + "".join(f" {k}" for k in build), objects=n_obj,
                       frames=n, precision=precision, figure="peak GPU MiB", value=peak_mib(device))
        return fps

    # 1. one object, every size, both implementations
    for size in args.sizes:
        step("fps", 40, lambda size=size: fps_step("fps", "samroto", size, 1))
        step("fps", 40, lambda size=size: fps_step("fps", "meta", size, 1))
    # 2. more objects
    for size in args.sizes:
        for n_obj in [n for n in args.objects if n > 1]:
            step("objects", 30 + 5 * n_obj, lambda size=size, n=n_obj: fps_step("objects", "samroto", size, n))
            step("objects", 30 + 10 * n_obj, lambda size=size, n=n_obj: fps_step("objects", "meta", size, n))

    # 3. bfloat16 vs float32 masks
    def iou_step(size):
        masks = {}
        for precision in ("float32", "bfloat16"):
            kept = masks.setdefault(precision, {})
            fps_step("iou", "samroto", size, 1, precision,
                     keep=lambda frame, m, kept=kept: kept.__setitem__(frame, torch.as_tensor(m).cpu()))
        ious = []
        for frame, a in masks["float32"].items():
            b = masks["bfloat16"][frame]
            union = (a | b).sum().item()
            ious.append((a & b).sum().item() / union if union else 1.0)
        report.add(step="iou", size=size, impl="samroto", objects=1, frames=len(ious), precision="bf16 vs fp32",
                   figure="worst IoU", value=min(ious))
        report.add(step="iou", size=size, impl="samroto", objects=1, frames=len(ious), precision="bf16 vs fp32",
                   figure="mean IoU", value=sum(ious) / len(ious))
    for size in (s for s in ("tiny", "large") if s in args.sizes):
        step("iou", 60, lambda size=size: iou_step(size))

    # 4. compiled
    for size in args.sizes[:1] + args.sizes[-1:] if len(args.sizes) > 1 else args.sizes:
        step("compile", 150, lambda size=size: fps_step("compile", "samroto", size, 1, compile=True))
    if not args.smoke:  # Meta's vos_optimized needs CUDA
        step("compile", 240, lambda: fps_step("compile", "meta", args.sizes[0], 1, vos_optimized=True))

    # 5. memory against clip length
    for n in args.lengths:
        step("memory", 20 + n // 20, lambda n=n: fps_step("memory", "samroto", args.sizes[0], 1, frames=n))
        step("memory", 20 + n // 15, lambda n=n: fps_step("memory", "meta", args.sizes[0], 1, frames=n))

    # 6. click to matte on a 1080p frame
    def click_step(size):
        import cv2

        image = cv2.resize(pixels[0], (1920, 1080))
        samroto = Samroto(size, random_checkpoint(size, work), device)
        with torch.inference_mode():
            samroto.click(image, [960.0, 540.0])  # warm-up: kernels chosen, memory pools grown
            first, second = samroto.click(image, [960.0, 540.0])
        for figure, value in (("first click s", first), ("second click s", second)):
            report.add(step="click", size=size, impl="samroto", objects=1, frames=1, precision="bfloat16",
                       figure=figure, value=value)
    for size in args.sizes:
        step("click", 20, lambda size=size: click_step(size))

    report.add(step="done", figure="seconds", value=time.monotonic() - started)


if __name__ == "__main__":
    main()
