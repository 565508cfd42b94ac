"""``samroto demo``: make a sample shot, track its two objects, write mattes and a
contact-sheet preview (the plate with the mattes overlaid)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from samroto.cli.errors import CommandError
from samroto.cli.track import add_model_args

COLOURS = [(255, 80, 40), (40, 160, 255), (80, 230, 80), (240, 200, 40)]


def register(sub):
    p = sub.add_parser("demo", help="track a generated sample shot and write mattes plus a preview")
    add_model_args(p)
    p.add_argument("--out", default="samroto_demo", metavar="DIR", help="output folder (default: ./samroto_demo)")
    p.add_argument("--frames", type=int, default=24, help="length of the sample shot (default 24)")
    p.add_argument("--size", default="320x180", metavar="WxH", help="sample frame size (default 320x180)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args, settings):
    from samroto.cli.track import load_model, make_writer, run_job
    from samroto.core import sample
    from samroto.core.io import open_frames
    from samroto.core.prompts import load_prompts
    from samroto.core.store import StoreError, resolve_model

    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise CommandError(f"--size {args.size!r}: expected WxH, e.g. 320x180") from None
    if args.frames < 2 or width < 32 or height < 32:
        raise CommandError("--frames must be at least 2 and --size at least 32x32")
    name = args.model or settings["model"]
    try:
        resolve_model(name, args.checkpoint, settings)  # before any work: say how to get a model
    except StoreError as exc:
        raise CommandError(f"{exc}\n  or run the demo on a model you have: samroto demo --model CONFIG.yaml "
                           f"--checkpoint FILE") from None

    out = Path(args.out)
    plate = sample.write_sample(out / "plate", args.frames, width, height)
    prompts_path = out / "prompts.json"
    prompts_path.write_text(json.dumps(sample.sample_prompts(args.frames, width, height), indent=1))
    frames = open_frames(plate)
    prompts = load_prompts(prompts_path)
    args.out = str(out / "mattes" / "demo.%04d.png")
    args.format = "png"
    writer = make_writer(args, settings, [o.name for o in prompts.objects])
    status = run_job(args, settings, frames, prompts, writer, direction="both")
    if status:
        return status
    sheet = contact_sheet(frames, writer, [o.name for o in prompts.objects], out / "preview.png")
    print(f"plate:    {plate}\nprompts:  {prompts_path}\nmattes:   {args.out}\npreview:  {sheet}")
    return 0


def contact_sheet(frames, writer, names, path, columns=4, max_tiles=12):
    """A PNG grid of frames with each object's matte tinted over the plate."""
    import cv2
    import numpy as np

    numbers = frames.frame_numbers
    step = max(1, -(-len(numbers) // max_tiles))
    picked = numbers[::step][:max_tiles]
    tile_w = min(frames.width, 320)
    tile_h = max(1, round(frames.height * tile_w / frames.width))
    rows = -(-len(picked) // columns)
    sheet = np.zeros((rows * tile_h, columns * tile_w, 3), np.uint8)
    for k, number in enumerate(picked):
        img = frames.read_uint8(number).astype(np.float32)
        for j, name in enumerate(names):
            matte = cv2.imread(str(writer.path_for(number, name)), cv2.IMREAD_UNCHANGED)
            if matte is None:
                continue
            alpha = (matte.astype(np.float32) / np.iinfo(matte.dtype).max)[..., None] * 0.55
            img = img * (1 - alpha) + alpha * np.array(COLOURS[j % len(COLOURS)], np.float32)
        tile = cv2.resize(np.clip(img, 0, 255).astype(np.uint8), (tile_w, tile_h), interpolation=cv2.INTER_AREA)
        cv2.putText(tile, str(number), (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        r, c = divmod(k, columns)
        sheet[r * tile_h:(r + 1) * tile_h, c * tile_w:(c + 1) * tile_w] = tile
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.png")
    cv2.imwrite(str(tmp), sheet[..., ::-1])
    tmp.replace(path)
    return path
