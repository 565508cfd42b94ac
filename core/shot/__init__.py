"""The shot workflow, once for every front end: from "a shot and its prompts" to finished
mattes. ``samroto track``, the bridge (and through it every plugin) and farm jobs all call
these, so the same shot and prompts give the same mattes everywhere (docs/video.md, "One
shot workflow").

- :func:`read_mask` — a mask prompt file as a boolean array (one reader, every format the
  frame readers take);
- :func:`apply_prompts` — a prompt set into a VideoSession, frame by frame, rolling back an
  object whose first prompt fails;
- :func:`plan_passes` — where each direction starts and how far it goes (the one rule,
  in core/video/passes.py, which VideoSession.propagate follows too);
- :func:`track` — runs the passes, yielding finished mattes frame by frame;
- :func:`prompt_frame`, :func:`choose_candidate` — the interactive loop: one prompt on one
  frame, its matte at once from cached features, SAM 2's candidates for a single click, and
  the chosen candidate as that frame's mask prompt.
"""

from .errors import SHOT_ERRORS, MaskPromptError, RangeError
from .masks import read_mask, write_mask
from samroto.core.video.passes import Pass, plan_passes

from .prompting import apply_prompts
from .interactive import FramePrompt, choose_candidate, prompt_frame
from .runner import FrameMattes, finish_frame, track

__all__ = ["SHOT_ERRORS", "FramePrompt", "FrameMattes", "MaskPromptError", "Pass", "RangeError", "apply_prompts",
           "choose_candidate", "finish_frame", "plan_passes", "prompt_frame", "read_mask", "track", "write_mask"]
