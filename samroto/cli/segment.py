"""``samroto segment``: every object on one frame, as masks to pick from (docs/automask.md).

Writes, in ``--out``: ``masks.<frame>.exr`` (a layer ``maskNNN`` per mask, ``A`` their
union), ``masks.<frame>.json`` (id, area, bbox, predicted IoU, stability, the prompt point)
and ``masks.<frame>.overlay.png`` (the frame with the masks tinted and numbered). Ctrl-C
stops cleanly: nothing is written until the masks are all found, and every file appears
whole or not at all.
"""

from __future__ import annotations

import sys
import time

from samroto.cli.errors import CommandError, CommandFailed
from samroto.cli.track import add_model_args

MiB = 1 << 20


def register(sub):
    p = sub.add_parser("segment", help="find every object on a frame: masks to pick from",
                       description="Segment everything on one frame of SOURCE (an image, a sequence "
                                   "plate.%04d.exr / plate.####.exr or one of its files, or a movie) with "
                                   "SAM 2's automatic mask generator, and write the masks (EXR layers), a "
                                   "JSON listing and an overlay picture.")
    p.add_argument("source", help="image, image sequence or movie")
    p.add_argument("--frame", type=int, metavar="N",
                   help="frame number (the source's own; default: the file given, else the first frame)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the masks, listing and overlay")
    add_model_args(p)
    g = p.add_argument_group("generator (Meta's SAM2AutomaticMaskGenerator parameters and defaults)")
    g.add_argument("--points-per-side", type=int, default=32, metavar="N", help="prompt grid N x N (default 32)")
    g.add_argument("--points-per-batch", type=int, default=64, metavar="N", help="prompts filtered together (64)")
    g.add_argument("--pred-iou-thresh", type=float, default=0.8, metavar="T", help="keep masks above (0.8)")
    g.add_argument("--stability-score-thresh", type=float, default=0.95, metavar="T", help="keep masks at least (0.95)")
    g.add_argument("--stability-score-offset", type=float, default=1.0, metavar="D", help="(1.0)")
    g.add_argument("--mask-threshold", type=float, default=0.0, metavar="L", help="logit threshold (0.0)")
    g.add_argument("--box-nms-thresh", type=float, default=0.7, metavar="T", help="duplicate box IoU (0.7)")
    g.add_argument("--crop-n-layers", type=int, default=0, metavar="N", help="extra crop layers (0)")
    g.add_argument("--crop-nms-thresh", type=float, default=0.7, metavar="T", help="(0.7)")
    g.add_argument("--crop-overlap-ratio", type=float, default=512 / 1500, metavar="R", help="(512/1500)")
    g.add_argument("--crop-n-points-downscale-factor", type=int, default=1, metavar="F", help="(1)")
    g.add_argument("--min-mask-region-area", type=int, default=0, metavar="PX",
                   help="fill holes / remove specks up to this many low-res pixels (0: off)")
    g.add_argument("--use-m2m", action="store_true", help="refine each mask with itself as a mask prompt")
    g.add_argument("--single-mask", action="store_true", help="one mask per point (multimask_output=False)")
    g.add_argument("--memory-budget-mb", type=int, metavar="MB",
                   help="memory the generator may hold on the device (default: half of what is free)")
    p.add_argument("--mask-files", action="store_true",
                   help="also one PNG per mask (masks.<frame>.maskNNN.png): each one a mask prompt as it is")
    p.add_argument("--no-overlay", action="store_true", help="skip the overlay picture")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def generator_options(args) -> dict:
    return {
        "points_per_side": args.points_per_side, "points_per_batch": args.points_per_batch,
        "pred_iou_thresh": args.pred_iou_thresh, "stability_score_thresh": args.stability_score_thresh,
        "stability_score_offset": args.stability_score_offset, "mask_threshold": args.mask_threshold,
        "box_nms_thresh": args.box_nms_thresh, "crop_n_layers": args.crop_n_layers,
        "crop_nms_thresh": args.crop_nms_thresh, "crop_overlap_ratio": args.crop_overlap_ratio,
        "crop_n_points_downscale_factor": args.crop_n_points_downscale_factor,
        "min_mask_region_area": args.min_mask_region_area, "use_m2m": args.use_m2m,
        "multimask_output": not args.single_mask,
    }


def pick_frame(args, frames) -> int:
    """--frame, else the frame of the file named (one file of a sequence), else the first."""
    from pathlib import Path

    if args.frame is not None:
        if args.frame not in frames.frame_numbers:
            numbers = frames.frame_numbers
            raise CommandError(f"--frame {args.frame}: no such frame in {args.source} "
                               f"(frames {numbers[0]}-{numbers[-1]})")
        return args.frame
    given = Path(args.source)
    if hasattr(frames, "path") and given.is_file():
        for number in frames.frame_numbers:
            if frames.path(number).resolve() == given.resolve():
                return number
    return frames.first


def run(args, settings):
    from samroto.cli.track import load_model, open_source
    from samroto.core.automask import AutoMaskGenerator, Cancelled, FrameTooLargeError
    from samroto.core.automask.export import write_masks
    from samroto.core.io import SamrotoIOError

    frames = open_source(args, settings)
    frame = pick_frame(args, frames)
    try:
        image = frames.read_uint8(frame)
    except SamrotoIOError as exc:
        raise CommandFailed(str(exc)) from None
    model = load_model(args, settings)
    try:
        generator = AutoMaskGenerator(model, output_mode="uncompressed_rle",
                                      precision=args.precision or settings["precision"],
                                      memory_budget=args.memory_budget_mb * MiB if args.memory_budget_mb else None,
                                      **generator_options(args))
    except (ValueError, ImportError) as exc:
        raise CommandError(str(exc)) from None
    progress = not args.quiet and sys.stderr.isatty()
    started = time.perf_counter()
    try:
        records = generate(generator, image, progress)
    except KeyboardInterrupt:
        print("stopped: nothing was written", file=sys.stderr)
        return 130
    except (Cancelled, FrameTooLargeError) as exc:
        raise CommandFailed(str(exc)) from None
    seconds = time.perf_counter() - started
    describe = {"source": str(args.source), "model": getattr(model, "samroto_name", None),
                "generator": generator_options(args), "seconds": round(seconds, 2)}
    try:
        paths = write_masks(records, image, args.out, frame, plate=getattr(frames, "plate", None),
                            describe=describe, with_overlay=not args.no_overlay, mask_files=args.mask_files,
                            metadata={"samroto/model": describe["model"] or "", "samroto/source": args.source})
    except SamrotoIOError as exc:
        raise CommandFailed(f"--out {args.out}: {exc}") from None
    except KeyboardInterrupt:
        print(f"stopped while writing to {args.out}: the files there are whole; run again for the rest",
              file=sys.stderr)
        return 130
    if not args.quiet:
        files = [v for k, v in paths.items() if k != "masks"]
        print(f"{len(records)} mask(s) on frame {frame} in {seconds:.1f}s: " + ", ".join(files), file=sys.stderr)
    return 0


def generate(generator, image, progress: bool):
    from tqdm import tqdm

    bar = tqdm(total=1, unit="prompt", desc="segmenting", disable=not progress, dynamic_ncols=True)
    try:
        def step(done, total):
            bar.total = total
            bar.n = done
            bar.refresh()

        return generator.generate(image, progress=step)
    finally:
        bar.close()
