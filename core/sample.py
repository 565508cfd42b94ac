"""A sample shot made on the spot (no downloads): coloured shapes moving over a textured
background, with the prompts that pick them. ``samroto demo`` tracks it; tests use it too."""

from __future__ import annotations

import math

import numpy as np

FIRST_FRAME = 1001


def _background(height, width, rng):
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([0.25 + 0.15 * np.sin(x / 23.0 + y / 41.0),
                     0.30 + 0.10 * np.cos(y / 17.0),
                     0.35 + 0.12 * np.sin((x + y) / 29.0)], axis=-1)
    return np.clip(base + rng.normal(0, 0.02, base.shape).astype(np.float32), 0, 1)


def shape_centres(frame_index, num_frames, width, height):
    """Centres (x, y) of the disc and the square on a frame (0-based index)."""
    t = frame_index / max(num_frames - 1, 1)
    disc = (width * (0.22 + 0.5 * t), height * (0.45 + 0.15 * math.sin(2 * math.pi * t)))
    square = (width * (0.75 - 0.35 * t), height * (0.68 - 0.12 * t))
    return disc, square


def shape_sizes(width, height):
    return 0.12 * min(width, height) * 1.4, 0.1 * min(width, height) * 1.6  # disc radius, square half side


def make_frames(num_frames=24, width=320, height=180, seed=0):
    """RGB uint8 frames [H, W, 3]: an orange disc moving right, a blue square moving left."""
    rng = np.random.default_rng(seed)
    background = _background(height, width, rng)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    radius, half = shape_sizes(width, height)
    frames = []
    for i in range(num_frames):
        (dx, dy), (sx, sy) = shape_centres(i, num_frames, width, height)
        img = background.copy()
        disc = np.clip(radius + 0.5 - np.hypot(x - dx, y - dy), 0, 1)[..., None]  # anti-aliased edge
        img = img * (1 - disc) + disc * np.array([0.95, 0.55, 0.15], np.float32)
        square = (np.clip(half + 0.5 - np.abs(x - sx), 0, 1) * np.clip(half + 0.5 - np.abs(y - sy), 0, 1))[..., None]
        img = img * (1 - square) + square * np.array([0.2, 0.35, 0.9], np.float32)
        frames.append((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
    return frames


def sample_prompts(num_frames=24, width=320, height=180, first=FIRST_FRAME, at=0) -> dict:
    """Prompts JSON (schema 1) for the sample, on frame index ``at`` (number ``first + at``):
    a click on the disc, a box around the square."""
    (dx, dy), (sx, sy) = shape_centres(at, num_frames, width, height)
    first = first + at
    _, half = shape_sizes(width, height)
    pad = 3
    return {"version": 1, "objects": [
        {"id": 1, "name": "disc", "prompts": [{"frame": first, "points": [[round(dx, 1), round(dy, 1)]], "labels": [1]}]},
        {"id": 2, "name": "square", "prompts": [{"frame": first, "box": [
            round(max(sx - half - pad, 0), 1), round(max(sy - half - pad, 0), 1),
            round(min(sx + half + pad, width), 1), round(min(sy + half + pad, height), 1)]}]},
    ]}


def write_sample(directory, num_frames=24, width=320, height=180, first=FIRST_FRAME, kind="png"):
    """Write the sample as ``plate.%04d.png`` (kind "png") or ``plate.mp4`` (H.264, kind
    "mp4") in ``directory``; returns the source path or pattern for ``open_frames``."""
    from pathlib import Path

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    frames = make_frames(num_frames, width, height)
    if kind == "png":
        import cv2

        for i, frame in enumerate(frames):
            path = directory / f"plate.{first + i:04d}.png"
            tmp = path.with_name(path.name + ".tmp.png")
            cv2.imwrite(str(tmp), frame[..., ::-1])
            tmp.replace(path)
        return str(directory / "plate.%04d.png")
    if kind == "mp4":
        import av

        path = directory / "plate.mp4"
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=24)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"crf": "12"}
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        return str(path)
    raise ValueError(f"kind must be png or mp4, got {kind!r}")
