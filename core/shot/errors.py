"""What the shot workflow refuses: the user's input, never an engine fault. Each message
says what was wrong and what to do."""

from samroto.core.video.passes import RangeError


class MaskPromptError(ValueError):
    """A mask prompt that cannot be used (unreadable, wrong size)."""


SHOT_ERRORS = (MaskPromptError, RangeError)

__all__ = ["SHOT_ERRORS", "MaskPromptError", "RangeError"]
