"""Where each pass of a track starts, which way it goes and how far: the one rule, used by
VideoSession.propagate, ``samroto track`` and the bridge (through core.shot).

Positions are 0..n-1 of the shot's frame source. With no explicit start, a pass starts at
the prompted frame furthest against its direction, inside the range: forward from the
first prompted frame, backward from the last, so every prompt in the range is passed
through. ``both`` is forward from the first prompted frame to the end of the range, then
backward from the frame before it to the start of the range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence



class RangeError(ValueError):
    """A direction, frame range or start that does not fit the shot."""

DIRECTIONS = ("forward", "backward", "both")


@dataclass(frozen=True)
class Pass:
    start: int  # position of the first frame tracked
    reverse: bool  # True: towards earlier frames
    count: int  # frames in this pass

    @property
    def positions(self) -> range:
        return range(self.start, self.start - self.count, -1) if self.reverse else range(self.start, self.start + self.count)


def plan_passes(num_frames: int, prompted: Sequence[int], direction: str = "both", start: int | None = None,
                first: int | None = None, last: int | None = None) -> list[Pass]:
    """The passes of a track over positions ``first``..``last`` (default: the whole shot).
    ``prompted``: positions with prompts. Raises RangeError for a direction, range or start
    that does not fit (positions given are assumed inside the shot)."""
    if direction not in DIRECTIONS:
        raise RangeError(f"direction must be forward, backward or both, not {direction!r}")
    if not prompted:
        raise RangeError("nothing to track: add prompts first")
    lo = 0 if first is None else first
    hi = num_frames - 1 if last is None else last
    if lo > hi:
        raise RangeError(f"the range starts after it ends (positions {lo}-{hi})")
    if start is None:
        inside = sorted(p for p in prompted if lo <= p <= hi)
        if not inside:
            raise RangeError("no prompted frame inside the range: prompt a frame in it, or give a start frame")
        start = inside[-1] if direction == "backward" else inside[0]
    elif not lo <= start <= hi:
        raise RangeError(f"the start (position {start}) is outside the range (positions {lo}-{hi})")
    passes = []
    if direction in ("forward", "both"):
        passes.append(Pass(start, False, hi - start + 1))
    if direction == "backward":
        passes.append(Pass(start, True, start - lo + 1))
    elif direction == "both" and start > lo:
        passes.append(Pass(start - 1, True, start - lo))
    return passes
