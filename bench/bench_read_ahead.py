"""What reading the next frame ahead saves: seconds per tracked frame of a half-float EXR
plate, with the reader thread and with every frame read when the model asks for it.

    python bench/bench_read_ahead.py [--frames 8] [--width 3840 --height 2160] [--config NAME]

Writes a generated plate (zip-compressed half EXRs, the compositor's usual delivery) to a
temporary folder, builds ``--config`` with random weights (sam2.1_hiera_tiny by default;
speed does not depend on the weights), and tracks one object through it twice, alternating
the two ways. Prints seconds per frame (median) and the plate's decode time per frame.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def write_plate(folder: Path, frames: int, width: int, height: int) -> str:
    import OpenImageIO as oiio

    from samroto.core import sample

    clip = sample.make_frames(frames, width, height)
    for t, rgb in enumerate(clip):
        path = str(folder / f"plate.{1001 + t:04d}.exr")
        out = oiio.ImageOutput.create(path)
        spec = oiio.ImageSpec(width, height, 3, "half")
        spec.attribute("compression", "zip")
        out.open(path, spec)
        out.write_image((rgb.astype(np.float32) / 255.0) ** 2.2)
        out.close()
    return str(folder / "plate.%04d.exr")


def seconds_per_frame(model, pattern, read_ahead: bool) -> float:
    import torch

    from samroto.core import VideoSession, open_frames

    source = open_frames(pattern)
    session = VideoSession(model, source)
    if not read_ahead:
        session.frames.read_ahead = lambda *args: None  # read when the model asks
    with torch.inference_mode():
        session.add_prompt(0, 1, points=[[source.width * 0.4, source.height * 0.5]], labels=[1])
        times, start = [], time.perf_counter()
        for _ in session.propagate():
            now = time.perf_counter()
            times.append(now - start)
            start = now
    return statistics.median(times[1:])  # frame 0 is the prompted frame


def decode_seconds(pattern) -> float:
    from samroto.core import open_frames

    source = open_frames(pattern)
    start = time.perf_counter()
    for n in source.frame_numbers:
        source.read_uint8(n)
    return (time.perf_counter() - start) / len(source)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--width", type=int, default=3840)
    ap.add_argument("--height", type=int, default=2160)
    ap.add_argument("--config", default="sam2.1_hiera_tiny")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    from samroto.core import build_model

    model = build_model(args.config, device="cpu")
    with tempfile.TemporaryDirectory(prefix="samroto-read-ahead-") as tmp:
        pattern = write_plate(Path(tmp), args.frames, args.width, args.height)
        print(f"decode + colour, per frame: {decode_seconds(pattern):.3f} s")
        results = {True: [], False: []}
        for _ in range(args.rounds):  # alternate, so drift in machine load hits both
            for ahead in (True, False):
                results[ahead].append(seconds_per_frame(model, pattern, ahead))
        for ahead, label in ((False, "read when asked"), (True, "read ahead")):
            print(f"{label:>16}: {min(results[ahead]):.3f} s per frame "
                  f"(runs: {', '.join(f'{s:.3f}' for s in results[ahead])})")


if __name__ == "__main__":
    main()
