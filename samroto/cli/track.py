"""``samroto track``: prompts in, one matte per frame out, engine in-process (what a render
farm runs). Frame numbers are the source's own; Ctrl-C stops cleanly and every matte
already written is complete (writes are atomic)."""

from __future__ import annotations

import sys
import time

from samroto.cli.errors import CommandError

MiB = 1 << 20


def register(sub):
    p = sub.add_parser("track", help="track objects through a shot and write mattes",
                       description="Track prompted objects through SOURCE (a movie, plate.%%04d.exr / "
                                   "plate.####.exr, or one frame of a sequence) and write one matte per frame.")
    p.add_argument("source", help="movie file or image sequence (plate.%%04d.exr, plate.####.exr)")
    add_model_args(p)
    p.add_argument("--prompts", metavar="JSON", help="prompts file (docs/prompts.md)")
    p.add_argument("--point", metavar="OBJ:FRAME:X,Y[:neg]", action="append", default=[],
                   help="a click (source pixels, origin top-left); repeat for more")
    p.add_argument("--box", metavar="OBJ:FRAME:X0,Y0,X1,Y1", action="append", default=[],
                   help="a box (source pixels); repeat for more")
    p.add_argument("--out", required=True, metavar="PATTERN",
                   help="matte path with a frame token, e.g. mattes/shot.%%04d.exr ({name} for one file per object)")
    p.add_argument("--format", choices=["exr", "png", "tiff", "mov", "ffv1"], help="matte format (default: from --out)")
    p.add_argument("--direction", choices=["forward", "backward", "both"], default="both",
                   help="from the first prompted frame: forward, backward or both (default)")
    p.add_argument("--range", metavar="A-B", help="only frames A to B (source numbers)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def add_model_args(p):
    p.add_argument("--model", metavar="NAME|CONFIG.yaml",
                   help="model name (sam2.1_hiera_base_plus, ...) or an official-format config YAML "
                        "(default: the 'model' setting)")
    p.add_argument("--checkpoint", metavar="FILE", help="checkpoint file (default: the model store)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: the 'device' setting)")
    # spelled out: building the parser must not import settings (yaml), see test_packaging
    p.add_argument("--precision", choices=["auto", "float32", "bfloat16"],
                   help="float32 is Meta's numbers; bfloat16 is faster on GPUs and bf16 CPUs (default: the setting)")


def parse_range(text):
    import re

    m = re.fullmatch(r"\s*(-?\d+)\s*[-:]\s*(-?\d+)\s*", text)
    if not m or int(m.group(2)) < int(m.group(1)):
        raise CommandError(f"--range {text!r}: expected A-B with A <= B, e.g. --range 1001-1100")
    return int(m.group(1)), int(m.group(2))


def load_model(args, settings):
    """The model for --model/--checkpoint/--device, or the settings'."""
    from samroto.cli.engine import load_model as build

    return build(settings, args.model, args.checkpoint, args.device)


def gather_prompts(args, frames):
    """PromptSet from --prompts/--point/--box, validated against the source (before any work)."""
    from samroto.core.prompts import PromptError, from_cli, load_prompts, validate

    try:
        prompts = load_prompts(args.prompts) if args.prompts else None
        prompts = from_cli(args.point, args.box, into=prompts)
        if not prompts.objects:
            raise PromptError("no prompts: give --prompts FILE or at least one --point/--box")
        validate(prompts, frames.frame_numbers, frames.width, frames.height)
    except PromptError as exc:
        raise CommandError(str(exc)) from None
    return prompts


def write_mattes(session, frames, prompts, passes, writer, finisher, progress=True, on_frame=None):
    """Track the passes and write every frame as it comes (core.shot.track). A matte movie
    is written in frame order: when the passes do not come in that order its frames are
    held as the model's low-res logits and finished in frame order at the end. Returns the
    number of frames written; KeyboardInterrupt propagates with every written matte whole."""
    from tqdm import tqdm

    from samroto.core.shot import finish_frame, track

    names = {o.id: o.name for o in prompts.objects}
    in_order = not writer.is_movie or all(not p.reverse for p in passes)
    bar = tqdm(total=sum(p.count for p in passes), unit="frame", desc="tracking", disable=not progress,
               dynamic_ncols=True)
    held = []
    written = 0

    def write(frame, obj_ids, alphas):
        nonlocal written
        writer.write(frame, {names[i]: a for i, a in zip(obj_ids, alphas)})
        written += 1
        if on_frame:
            on_frame(frame)

    try:
        for result in track(session, frames, passes, finisher=finisher, values="alpha" if in_order else None):
            if in_order:
                write(result.frame, result.obj_ids, result.values)
            else:
                held.append((result.frame, result.obj_ids, result.logits.astype("float16")))
            bar.update(1)
        finisher.reset()
        for frame, obj_ids, logits in sorted(held, key=lambda h: h[0]):
            write(frame, obj_ids, finish_frame(finisher, frames, frame, obj_ids, logits.astype("float32")))
    finally:
        bar.close()
    return written


def open_source(args, settings):
    """The source's frames; with --range, only those frames: the range is the shot, as a
    plugin's track range is (bridge client ``track_shot``)."""
    from samroto.core.io import ColorSpec, SamrotoIOError, open_frames

    color = ColorSpec(input=settings["color.input"], ocio_config=settings["color.ocio_config"] or None,
                      display=settings["color.display"])
    try:
        frames = open_frames(args.source, color=color)
        if getattr(args, "range", None):
            first, last = parse_range(args.range)
            inside = [n for n in frames.frame_numbers if first <= n <= last]
            if not inside:
                numbers = frames.frame_numbers
                raise CommandError(f"--range {args.range}: no such frames in {args.source} "
                                   f"(frames {numbers[0]}-{numbers[-1]})")
            if len(inside) < len(frames):
                frames = open_frames(args.source, first=inside[0], last=inside[-1], color=color)
    except SamrotoIOError as exc:
        raise CommandError(str(exc)) from None
    return frames


def make_writer(args, settings, names, fps=None):
    import os

    from samroto.core.io import MatteWriter, SamrotoIOError

    fmt = args.format
    if fmt is None and not os.path.splitext(args.out.replace("{name}", "x"))[1]:
        fmt = settings["matte.format"]
    try:
        writer = MatteWriter(args.out, format=fmt, names=names, make_dirs=True, fps=fps)
        if writer.format == "exr" and settings["matte.exr_compression"] != writer.compression:
            writer = MatteWriter(args.out, format=fmt, names=names, make_dirs=True, fps=fps,
                                 compression=settings["matte.exr_compression"])
        return writer
    except SamrotoIOError as exc:
        raise CommandError(f"--out {args.out}: {exc}") from None


def run(args, settings):
    frames = open_source(args, settings)
    prompts = gather_prompts(args, frames)
    writer = make_writer(args, settings, [o.name for o in prompts.objects])
    return run_job(args, settings, frames, prompts, writer)


def run_job(args, settings, frames, prompts, writer, direction=None, progress=None):
    """Model, session, prompts, passes, mattes (core.shot). Shared with ``samroto demo``."""
    from samroto.core.finishing.pipeline import Finisher
    from samroto.core.shot import SHOT_ERRORS, apply_prompts, plan_passes
    from samroto.core.video import VideoSession

    model = load_model(args, settings)
    session = VideoSession(model, frames, feature_cache_bytes=settings["engine.feature_cache_mb"] * MiB,
                           precision=args.precision or settings["precision"],
                           add_all_frames_to_correct_as_cond=settings["engine.add_all_frames_to_correct_as_cond"])
    finisher = Finisher(settings, device=model.device)
    try:
        for _ in apply_prompts(session, prompts, frames, low_res=True):
            pass
        passes = plan_passes(len(frames), [frames.index_of(f) for f in prompts.frames()],
                             direction or args.direction)
    except SHOT_ERRORS as exc:
        raise CommandError(str(exc)) from None
    started = time.perf_counter()
    written = 0
    progress = (not getattr(args, "quiet", False)) if progress is None else progress

    def count(_):
        nonlocal written
        written += 1

    try:
        write_mattes(session, frames, prompts, passes, writer, finisher, progress=progress, on_frame=count)
    except KeyboardInterrupt:
        writer.close()
        print(f"stopped: {written} frame(s) written to {args.out}, each complete; run again to finish",
              file=sys.stderr)
        return 130
    writer.close()
    elapsed = time.perf_counter() - started
    if progress:
        print(f"wrote {written} frame(s) of {len(prompts.objects)} object(s) to {args.out} "
              f"in {elapsed:.1f}s ({written / max(elapsed, 1e-9):.2f} frames/s)", file=sys.stderr)
    return 0
