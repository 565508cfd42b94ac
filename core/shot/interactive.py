"""The interactive loop, once for every front end: a prompt on a frame gives that frame's
matte at once (from the frame's cached image features), SAM 2's candidates for an
ambiguous click, and a chosen candidate as that frame's mask prompt (docs/video.md,
"Interactive loop").

A prompt set here is the prompts JSON's: one object, one frame (validated against the shot
by the caller, as ``apply_prompts`` expects). On a frame no propagation has passed through
for the object, the prompt replaces the object's prompt there afresh: the matte is exactly
the one a new session given the same prompts makes (and so the one a track writes on that
frame). On a tracked frame it is a correction, which uses the object's memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .masks import write_mask
from .prompting import apply_prompts


@dataclass
class FramePrompt:
    """What one prompt on one frame gave."""

    frame: int  # the source's frame number
    obj_id: int  # the object prompted
    obj_ids: list  # every object on the frame, in the order of ``logits``
    logits: Any  # [n_obj, h, w] low-res logits of every object on the frame
    encoded: bool  # the image encoder ran for this prompt (the frame was not cached)
    encoder_runs: int  # image-encoder runs in the session so far
    correction: bool  # the frame was tracked: the prompt corrected the object's track there
    candidates: tuple | None  # (low-res logits [3, h, w], predicted IoU [3], best index) or None


def prompt_frame(session, prompt_set, frames) -> FramePrompt:
    """Apply ``prompt_set`` (one object, one frame) to ``session`` (a VideoSession on
    ``frames``, its FrameSource). An object the prompt fails for is left as it was before, or
    removed when it has no prompt left."""
    (obj,) = prompt_set.objects
    (prompt,) = obj.prompts
    position = frames.index_of(prompt.frame)
    runs = session.encoder_runs
    correction = session.is_tracked(position, obj.id)
    if not correction:
        session.forget_prompt(position, obj.id)
    result = None
    try:
        for result in apply_prompts(session, prompt_set, frames, low_res=True):
            pass
    except BaseException:
        if obj.id in session.obj_ids and not session.prompt_frames(obj.id):
            session.remove_object(obj.id)
        raise
    frame, obj_ids, logits = result
    return FramePrompt(frame, obj.id, list(obj_ids), logits, session.encoder_runs > runs, session.encoder_runs,
                       correction, session.candidates(position, obj.id, low_res=True))


def choose_candidate(session, frames, frame: int, obj_id: int, index: int, mask_path=None):
    """Make candidate ``index`` of the object's latest single click on source frame ``frame``
    that frame's mask prompt (``VideoSession.choose_candidate``); with ``mask_path``, write the
    mask there too (what a host stores as the frame's prompt, ``{"frame", "mask"}``: the same
    file in a new session gives the same matte). Returns (obj_ids, low-res logits, mask)."""
    position = frames.index_of(frame)
    obj_ids, logits, mask = session.choose_candidate(position, obj_id, index, low_res=True)
    if mask_path is not None:
        write_mask(mask_path, mask)
    return list(obj_ids), np.asarray(logits), mask
