"""``samroto track``: prompts in, one matte per frame out, engine in-process (what a render
farm runs). Frame numbers are the source's own; mattes take the plate's format (windows,
pixel aspect, frame rate, timecode); Ctrl-C or SIGTERM stops cleanly: every matte image
already written is complete (writes are atomic), a matte movie is published whole or not
at all. Exit status: 0 done, 1 runtime failure, 2 usage, 130 interrupted."""

from __future__ import annotations

import json
import sys
import time

from samroto.cli.errors import CommandError, CommandFailed

MiB = 1 << 20

EXIT_CODES = """exit status: 0 done (also when --skip-existing finds every matte on disk), 1 runtime failure
(unreadable or damaged frame, full disk, model error), 2 usage (bad arguments, prompts,
settings, colour space), 130 interrupted (Ctrl-C or SIGTERM: mattes on disk are complete)"""


def register(sub):
    import argparse

    p = sub.add_parser("track", help="track objects through a shot and write mattes",
                       description="Track prompted objects through SOURCE (a movie, plate.%%04d.exr / "
                                   "plate.####.exr, or one frame of a sequence) and write one matte per frame.",
                       epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    p.add_argument("--range", metavar="A-B",
                   help="only frames A to B, or one frame A (source numbers; every frame must be in the source)")
    p.add_argument("--first-frame", metavar="N|timecode",
                   help="number a movie's frames from N, or from its start timecode as a frame count "
                        "(10:00:00:00 at 25 fps is 900000) (default: the video.first_frame setting, 0)")
    p.add_argument("--colorspace", metavar="NAME",
                   help="colour of the source frames: auto, srgb, rec709, linear or an OCIO colour space "
                        "(default: the color.input setting)")
    p.add_argument("--cryptomatte", action="store_true", default=None,
                   help="add Cryptomatte layers to the EXR mattes (the finish.cryptomatte setting)")
    p.add_argument("--skip-existing", action="store_true",
                   help="keep mattes already on disk (resume after an interruption): complete files of this "
                        "shot are not written again; nothing runs when every frame is there")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress (the summary is still printed)")
    p.set_defaults(run=run, overrides=lambda: {})


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
    """``A-B`` or ``A`` (fileseq's frame-range syntax, one contiguous run) -> (A, B)."""
    import fileseq

    try:
        frames = fileseq.FrameSet(text.strip())
        lo, hi = frames[0], frames[-1]  # in the order given: 1100-1001 runs backwards
        ok = isinstance(lo, int) and isinstance(hi, int) and lo <= hi and len(frames) == hi - lo + 1
    except (ValueError, TypeError, IndexError):  # fileseq.ParseException is a ValueError
        ok = False
    if not ok:
        raise CommandError(f"--range {text!r}: expected one run of frames, A-B with A <= B, or one frame A")
    return lo, hi


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


class Progress:
    """Frames done: a bar on a terminal; on a log (stderr not a TTY) a plain line at every
    10% (no carriage returns); nothing when disabled."""

    def __init__(self, total, enabled=True, stream=None, desc="tracking"):
        self.stream = stream or sys.stderr
        self.total, self.done, self.desc = max(int(total), 0), 0, desc
        self.started = time.perf_counter()
        self.bar = None
        self.tty = enabled and _isatty(self.stream)
        self.enabled = enabled
        self.next_line = 0.1
        if self.tty:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, unit="frame", desc=desc, file=self.stream, dynamic_ncols=True)

    def update(self, n=1):
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.enabled and self.total and self.done / self.total >= self.next_line - 1e-9:
            while self.done / self.total >= self.next_line - 1e-9:
                self.next_line += 0.1
            rate = self.done / max(time.perf_counter() - self.started, 1e-9)
            print(f"{self.desc}: {self.done}/{self.total} frames ({100 * self.done // self.total}%, "
                  f"{rate:.2f} frames/s)", file=self.stream, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def write_mattes(session, frames, prompts, passes, writer, finisher, progress=True, on_frame=None, skip=()):
    """Track the passes and write every frame as it comes (core.shot.track). A matte movie
    is written in frame order: when the passes do not come in that order its frames are
    held as the model's low-res logits and finished in frame order at the end. Frames in
    ``skip`` are tracked (SAM 2's memory needs them) but neither finished nor written.
    Returns the number of frames written; KeyboardInterrupt propagates with every written
    matte whole."""
    from samroto.core.shot import finish_frame, track

    names = {o.id: o.name for o in prompts.objects}
    in_order = not writer.is_movie or all(not p.reverse for p in passes)
    bar = progress if isinstance(progress, Progress) else Progress(sum(p.count for p in passes), progress)
    held = []
    written = 0
    skip = set(skip)

    def write(frame, obj_ids, alphas):
        nonlocal written
        writer.write(frame, {names[i]: a for i, a in zip(obj_ids, alphas)})
        written += 1
        if on_frame:
            on_frame(frame)

    try:
        # skipped frames get logits (cheap), not finished alphas
        for result in track(session, frames, passes, finisher=finisher,
                            values="alpha" if in_order and not skip else "logits"):
            if result.frame in skip:
                pass
            elif in_order and not skip:
                write(result.frame, result.obj_ids, result.values)
            elif in_order:
                write(result.frame, result.obj_ids,
                      finish_frame(finisher, frames, result.frame, result.obj_ids, result.logits))
            else:
                held.append((result.frame, result.obj_ids, result.logits.astype("float16")))
            bar.update(1)
        finisher.reset()
        for frame, obj_ids, logits in sorted(held, key=lambda h: h[0]):
            write(frame, obj_ids, finish_frame(finisher, frames, frame, obj_ids, logits.astype("float32")))
    finally:
        bar.close()
    return written


def color_spec(args, settings):
    from samroto.core.io import ColorSpec

    return ColorSpec(input=getattr(args, "colorspace", None) or settings["color.input"],
                     ocio_config=settings["color.ocio_config"] or None, display=settings["color.display"])


def _first_frame(args, settings):
    """--first-frame / video.first_frame: None (0), a number, or "timecode"."""
    value = getattr(args, "first_frame", None)
    value = settings["video.first_frame"] if value is None else value
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "timecode":
            return "timecode"
        try:
            return int(text)
        except ValueError:
            raise CommandError(f"--first-frame {value!r}: expected a frame number or 'timecode'") from None
    return int(value)


def open_source(args, settings):
    """The source's frames; with --range, only those frames: the range is the shot, as a
    plugin's track range is (bridge client ``track_shot``; both through core's
    ``open_shot``). The colour transform is built here, so a bad colour space or OCIO config
    fails before the model loads."""
    from samroto.core.io import SamrotoIOError, open_shot

    lo, hi = parse_range(args.range) if getattr(args, "range", None) else (None, None)
    try:
        frames = open_shot(args.source, lo, hi, numbering=_first_frame(args, settings),
                           color=color_spec(args, settings), on_damage=settings["video.on_damage"])
        frames.transform  # noqa: B018 - builds the colour transform now: a bad space/config fails here
    except SamrotoIOError as exc:
        raise CommandError(f"--range {args.range}: {exc}" if lo is not None else str(exc)) from None
    return frames


def matte_metadata(args, settings, frames, prompts) -> dict:
    """What goes in every matte's header (EXR) or tags (movies): core.shot.provenance."""
    from samroto.core.shot.provenance import matte_metadata as made

    return made(frames, args.model or settings["model"], prompts)


def make_writer(args, settings, names, fps=None, plate=None, metadata=None):
    import os

    from samroto.core.io import MatteWriter, SamrotoIOError

    fmt = args.format
    if fmt is None and not os.path.splitext(args.out.replace("{name}", "x"))[1]:
        fmt = settings["matte.format"]
    crypto = getattr(args, "cryptomatte", None)
    crypto = settings["finish.cryptomatte"] if crypto is None else crypto
    try:
        writer = MatteWriter(args.out, format=fmt, names=names, make_dirs=True, fps=fps, plate=plate,
                             overscan=settings["matte.overscan"], metadata=metadata, cryptomatte=crypto,
                             compression=settings["matte.exr_compression"] if _is_exr(args.out, fmt) else "zip")
        return writer
    except SamrotoIOError as exc:
        raise CommandError(f"--out {args.out}: {exc}") from None


def _is_exr(out, fmt):
    return (fmt or "").lower() == "exr" or (fmt is None and out.lower().endswith(".exr"))


def run(args, settings):
    frames = open_source(args, settings)
    prompts = gather_prompts(args, frames)
    writer = make_writer(args, settings, [o.name for o in prompts.objects], plate=frames.plate,
                         metadata=matte_metadata(args, settings, frames, prompts))
    return run_job(args, settings, frames, prompts, writer)


def existing_frames(writer, frames) -> list[int]:
    """Frames whose mattes are all on disk and whole (--skip-existing). A movie counts only
    when every object's movie is there: it is all or nothing."""
    if writer.is_movie:
        paths = [writer.movie_path(n) for n in writer.names or []]
        return list(frames.frame_numbers) if paths and all(_movie_complete(p, len(frames)) for p in paths) else []
    return [n for n in frames.frame_numbers if writer.has_frame(n)]


def _movie_complete(path, count) -> bool:
    import av

    if not path.is_file():
        return False
    try:
        with av.open(str(path)) as c:
            return sum(1 for p in c.demux(c.streams.video[0]) if p.size) == count
    except (av.FFmpegError, OSError, IndexError):
        return False


def run_job(args, settings, frames, prompts, writer, direction=None, progress=None):
    """Model, session, prompts, passes, mattes (core.shot). Shared with ``samroto demo``."""
    from samroto.core.io import SamrotoIOError

    started = time.perf_counter()
    summary = {"status": "done", "exit_code": 0, "source": str(getattr(args, "source", frames.label)), "out": args.out,
               "first": frames.first, "last": frames.last, "frames": len(frames),
               "objects": [o.name for o in prompts.objects], "written": 0, "skipped": 0}
    quiet = getattr(args, "quiet", False) if progress is None else not progress
    as_json = getattr(args, "json", False)

    def report(status, code, message=None):
        elapsed = time.perf_counter() - started
        summary.update(status=status, exit_code=code, elapsed_s=round(elapsed, 3),
                       frames_per_s=round(summary["written"] / max(elapsed, 1e-9), 3),
                       damaged=list(getattr(frames, "damaged", []) or []))
        if message:
            summary["error"] = message
        if as_json:
            print(json.dumps(summary, indent=1))
        return code

    skip = existing_frames(writer, frames) if getattr(args, "skip_existing", False) else []
    summary["skipped"] = len(skip)
    if skip and len(skip) == len(frames):
        writer.abort()
        if not as_json:
            print(f"nothing to do: all {len(frames)} frame(s) of mattes are already in {args.out}", file=sys.stderr)
        return report("done", 0)

    def count(_):
        summary["written"] += 1

    try:
        session, finisher, passes = _prepare(args, settings, frames, prompts, direction)
        bar = Progress(sum(p.count for p in passes), not quiet)
        write_mattes(session, frames, prompts, passes, writer, finisher, progress=bar, on_frame=count, skip=skip)
        writer.close()  # movies are checked and published here
    except KeyboardInterrupt:
        writer.abort()  # images on disk are complete; an unfinished movie is dropped, never published
        what = ("the unfinished matte movie was not written" if writer.is_movie else
                f"{summary['written']} frame(s) written to {args.out}, each complete")
        resume = "" if writer.is_movie else "; run again with --skip-existing to finish"
        print(f"stopped: {what}{resume}", file=sys.stderr)
        return report("interrupted", 130)
    except CommandError as exc:
        writer.abort()
        if as_json:
            report("failed", exc.status, str(exc))
        raise
    except (SamrotoIOError, OSError) as exc:
        writer.abort()
        kept = "" if writer.is_movie else f" ({summary['written']} complete frame(s) written before it)"
        message = f"{_describe(exc)}{kept}"
        if as_json:
            report("failed", 1, message)
        raise CommandFailed(message, reported=as_json) from None
    except BaseException:
        writer.abort()
        raise
    elapsed = time.perf_counter() - started
    if not as_json:
        skipped = f", kept {len(skip)} already on disk" if skip else ""
        print(f"wrote {summary['written']} frame(s) of {len(prompts.objects)} object(s) to {args.out}{skipped} "
              f"in {elapsed:.1f}s ({summary['written'] / max(elapsed, 1e-9):.2f} frames/s)", file=sys.stderr)
    return report("done", 0)


def _describe(exc) -> str:
    if isinstance(exc, OSError) and exc.filename:
        return f"cannot use {exc.filename}: {exc.strerror or exc}"
    return str(exc)


def _prepare(args, settings, frames, prompts, direction):
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
    return session, finisher, passes
