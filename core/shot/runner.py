"""Running a track's passes through finishing: finished mattes, frame by frame."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from samroto.core.video.passes import Pass


@dataclass
class FrameMattes:
    """One tracked frame: every object's matte, in processing order."""

    frame: int  # the source's frame number
    obj_ids: list[int]
    values: np.ndarray  # [n_obj, H, W] float32: finished alpha 0..1 (or video-res logits)
    logits: np.ndarray  # [n_obj, h, w] the model's low-res logits (what finishing started from)
    done: int  # frames done so far in this track, this one included
    total: int  # frames in this track


def finish_frame(finisher, frames, frame: int, obj_ids: Sequence[int], logits) -> np.ndarray:
    """Finished alphas [n_obj, H, W] float32 of one frame of ``frames`` from its low-res
    logits [n_obj, h, w]: through ``finisher`` (a core.finishing Finisher, guided by the
    plate), or with no finisher SAM 2's own decision: logits upsampled bilinear, > 0."""
    if finisher is None:
        import torch
        import torch.nn.functional as F

        big = F.interpolate(torch.as_tensor(np.asarray(logits, np.float32))[:, None],
                            size=(frames.height, frames.width), mode="bilinear", align_corners=False)[:, 0]
        return (big > 0).numpy().astype(np.float32)
    alphas = finisher.finish_frame({int(i): logits[k] for k, i in enumerate(obj_ids)}, frames.read(frame), frame)
    return np.stack([np.asarray(alphas[int(i)], np.float32) for i in obj_ids])


def track(session, frames, passes: Sequence[Pass], finisher=None, values: str = "alpha",
          cancel=None) -> Iterator[FrameMattes]:
    """Run ``passes`` (plan_passes) on ``session`` over ``frames`` (its FrameSource),
    yielding every frame's mattes as it is tracked. values: "alpha" (finished by
    ``finisher``, a core.finishing Finisher, or SAM 2's own threshold when None) or
    "logits" (video-resolution logits, unfinished). Temporal finishing restarts with each
    pass. Stops early, with ``session.cancelled`` set, when ``cancel`` fires."""
    if values not in ("alpha", "logits"):
        raise ValueError(f"values must be 'alpha' or 'logits', not {values!r}")
    total = sum(p.count for p in passes)
    done = 0
    for one in passes:
        if finisher is not None:
            finisher.reset()
        for position, obj_ids, logits in session.propagate(start=one.start, reverse=one.reverse,
                                                           max_frames=one.count, low_res=True, cancel=cancel):
            frame = frames.frame_numbers[position]
            if values == "logits":
                out = session.logits(position, low_res=False)
            else:
                out = finish_frame(finisher, frames, frame, obj_ids, logits)
            done += 1
            yield FrameMattes(frame, list(obj_ids), out, logits, done, total)
        if session.cancelled:
            return
