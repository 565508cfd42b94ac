"""``samroto track``: prompts in, one matte per frame out, engine in-process (what a render
farm runs). Frame numbers are the source's own; Ctrl-C stops cleanly and every matte
already written is complete (writes are atomic)."""

from __future__ import annotations

import sys
import time

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

    from samroto.cli.main import CommandError

    m = re.fullmatch(r"\s*(-?\d+)\s*[-:]\s*(-?\d+)\s*", text)
    if not m or int(m.group(2)) < int(m.group(1)):
        raise CommandError(f"--range {text!r}: expected A-B with A <= B, e.g. --range 1001-1100")
    return int(m.group(1)), int(m.group(2))


def load_model(args, settings):
    """The model for --model/--checkpoint/--device, or the settings'."""
    from samroto.cli.engine import load_model as build

    return build(settings, args.model, args.checkpoint, args.device)


def read_mask(path, width, height, image_size):
    """A mask prompt file as a bool array (non-zero = inside), source or model size."""
    import numpy as np
    import OpenImageIO as oiio

    buf = oiio.ImageBuf(str(path))
    if buf.has_error:
        raise ValueError(f"cannot read mask {path}: {buf.geterror()}")
    pixels = np.asarray(buf.get_pixels(oiio.FLOAT))
    if pixels.ndim == 3:
        pixels = pixels[..., 3] if pixels.shape[2] == 4 else pixels.max(axis=2)
    if pixels.shape not in ((height, width), (image_size, image_size)):
        raise ValueError(f"mask {path} is {pixels.shape[1]}x{pixels.shape[0]}; it must be the source size "
                         f"{width}x{height}")
    return pixels > 0


def gather_prompts(args, frames):
    """PromptSet from --prompts/--point/--box, validated against the source (before any work)."""
    from samroto.cli.main import CommandError
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


def apply_prompts(session, prompts, frames):
    from samroto.cli.main import CommandError

    for frame, obj, prompt in prompts.by_frame():
        position = frames.frame_numbers.index(frame)
        if prompt.mask is not None:
            try:
                mask = read_mask(prompts.mask_path(prompt), frames.width, frames.height, session.model.image_size)
            except (ValueError, OSError) as exc:
                raise CommandError(f"object {obj.id} ({obj.name!r}), frame {frame}, 'mask': {exc}") from None
            session.add_mask(position, obj.id, mask, low_res=True)
        else:
            session.add_prompt(position, obj.id, points=prompt.points or None,
                               labels=prompt.labels or None, box=prompt.box, low_res=True)


def track_to_writer(session, frames, prompts, writer, finisher, direction, progress=True, on_frame=None):
    """Propagate and write every frame as it comes. Returns the number of frames written.
    KeyboardInterrupt propagates after the frame in hand is finished or dropped whole."""
    from tqdm import tqdm

    names = {o.id: o.name for o in prompts.objects}
    start = min(frames.frame_numbers.index(f) for f in prompts.frames())
    total = {"forward": len(frames) - start, "backward": start + 1, "both": len(frames)}[direction]
    bar = tqdm(total=total, unit="frame", desc="tracking", disable=not progress, dynamic_ncols=True)
    written = 0
    last_position = None
    passes = [(direction, start)]
    if writer.is_movie and direction == "both":
        # a movie is written in order: the frames before the first prompt go first
        passes = [("backward", start), ("forward", start + 1)] if start > 0 else [("forward", start)]
    try:
        for pass_direction, pass_start in passes:
            if pass_start >= len(frames):
                continue
            buffered = []
            finisher.reset()
            for position, obj_ids, logits in session.propagate(start=pass_start, direction=pass_direction,
                                                               low_res=True):
                if last_position is not None and pass_direction == "both" and position == start - 1:
                    finisher.reset()  # temporal smoothing restarts with the backward pass
                last_position = position
                frame_number = frames.frame_numbers[position]
                if writer.is_movie and pass_direction == "backward":
                    buffered.append((frame_number, obj_ids, logits.astype("float16")))
                else:
                    _write(writer, finisher, frames, frame_number, obj_ids, logits, names)
                    written += 1
                    if on_frame:
                        on_frame(frame_number)
                bar.update(1)
            for frame_number, obj_ids, logits in reversed(buffered):
                _write(writer, finisher, frames, frame_number, obj_ids, logits.astype("float32"), names)
                written += 1
    finally:
        bar.close()
    return written


def _write(writer, finisher, frames, frame_number, obj_ids, logits, names):
    plate = frames.read(frame_number)
    alphas = finisher.finish_frame({i: logits[k] for k, i in enumerate(obj_ids)}, plate, frame_number)
    writer.write(frame_number, {names[i]: alphas[i] for i in obj_ids})


class FrameRange:
    """Frames first..last (source numbers) of a frame source, for --range."""

    def __init__(self, source, first, last):
        self.source = source
        self.frame_numbers = [n for n in source.frame_numbers if first <= n <= last]
        self.width, self.height = source.width, source.height

    def __len__(self):
        return len(self.frame_numbers)

    def read(self, frame_number):
        return self.source.read(frame_number)

    def read_uint8(self, frame_number):
        return self.source.read_uint8(frame_number)


def open_source(args, settings):
    from samroto.cli.main import CommandError
    from samroto.core.io import ColorSpec, SamrotoIOError, open_frames

    color = ColorSpec(input=settings["color.input"], ocio_config=settings["color.ocio_config"] or None,
                      display=settings["color.display"])
    try:
        frames = open_frames(args.source, color=color)
    except SamrotoIOError as exc:
        raise CommandError(str(exc)) from None
    if args.range:
        first, last = parse_range(args.range)
        frames = FrameRange(frames, first, last)
        if not len(frames):
            numbers = frames.source.frame_numbers
            raise CommandError(f"--range {args.range}: no such frames in {args.source} "
                               f"(frames {numbers[0]}-{numbers[-1]})")
    return frames


def make_writer(args, settings, names, fps=None):
    import os

    from samroto.cli.main import CommandError
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
    """Model, session, prompts, propagation, mattes. Shared with ``samroto demo``."""
    from samroto.core.finishing.pipeline import Finisher
    from samroto.core.video import VideoSession

    model = load_model(args, settings)
    session = VideoSession(model, frames, feature_cache_bytes=settings["engine.feature_cache_mb"] * MiB,
                           precision=args.precision or settings["precision"],
                           add_all_frames_to_correct_as_cond=settings["engine.add_all_frames_to_correct_as_cond"])
    finisher = Finisher(settings, device=model.device)
    apply_prompts(session, prompts, frames)
    started = time.perf_counter()
    written = 0
    progress = (not getattr(args, "quiet", False)) if progress is None else progress

    def count(_):
        nonlocal written
        written += 1

    try:
        track_to_writer(session, frames, prompts, writer, finisher, direction or args.direction,
                        progress=progress, on_frame=count)
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
