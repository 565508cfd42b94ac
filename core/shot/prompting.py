"""A prompt set into a VideoSession: the one place prompts meet the engine."""

from __future__ import annotations

from typing import Iterator

from samroto.core.prompts import PromptSet

from .errors import MaskPromptError
from .masks import read_mask


def apply_prompts(session, prompt_set: PromptSet, frames, low_res: bool = False) -> Iterator[tuple]:
    """Apply every prompt, frame by frame, yielding ``(frame_number, obj_ids, logits)`` after
    the last prompt of each frame (that frame's mattes, at once). ``frames``: the shot's
    FrameSource (frame numbers -> positions, plate size). The prompt set must already be
    validated against the shot (core.prompts.validate).

    A prompt that fails (an unreadable mask, a frame that cannot be read) raises; prompts
    applied before it stay, and an object whose first prompt failed is removed, so the
    session never holds an object without prompts."""
    items = prompt_set.by_frame()
    for i, (frame, obj, prompt) in enumerate(items):
        position = frames.index_of(frame)
        is_new = obj.id not in session.obj_ids
        try:
            if prompt.mask is not None:
                try:
                    mask = read_mask(prompt_set.mask_path(prompt), frames.width, frames.height,
                                     session.model.image_size)
                except MaskPromptError as exc:
                    raise MaskPromptError(f"object {obj.id} ({obj.name!r}), frame {frame}: {exc}") from None
                obj_ids, logits = session.add_mask(position, obj.id, mask, low_res=low_res)
            else:
                obj_ids, logits = session.add_prompt(position, obj.id, points=[list(p) for p in prompt.points] or None,
                                                     labels=list(prompt.labels) if prompt.points else None,
                                                     box=list(prompt.box) if prompt.box else None, clear=True,
                                                     low_res=low_res)
        except BaseException:
            if is_new and obj.id in session.obj_ids:
                session.remove_object(obj.id)
            raise
        if i + 1 == len(items) or items[i + 1][0] != frame:
            yield frame, obj_ids, logits
