"""What a matte must match of its plate: windows, pixel aspect, frame rate, timecode, colour tags.

A :class:`PlateFormat` is read from a source when it opens (``FrameSource.plate``) and
handed to :class:`~samroto.core.io.MatteWriter` (``plate=``), so mattes carry the plate's
display and data window (overscan), pixel aspect ratio, and for movies its frame rate,
start timecode and colour tags. Timecode arithmetic is the ``timecode`` package's (SMPTE,
drop-frame included), not hand-written.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from typing import Any

from .errors import SamrotoIOError


@dataclass(frozen=True)
class PlateFormat:
    """A plate's format. Frames (and the mattes handed to a writer) are the display window
    ``width`` x ``height``; ``data_window`` (x, y, width, height, in the display window's
    coordinates, EXR's convention) may be larger (overscan) or smaller (crop)."""

    width: int
    height: int
    display_origin: tuple[int, int] = (0, 0)
    data_window: tuple[int, int, int, int] | None = None
    pixel_aspect: float = 1.0
    fps: float | None = None
    timecode: str | None = None  # SMPTE timecode of ``first_frame``
    first_frame: int = 0
    color_tags: dict[str, int] = field(default_factory=dict)  # movie colour tags (FFmpeg enum values)

    @property
    def window(self) -> tuple[int, int, int, int]:
        """The data window, (x, y, width, height); the display window when there is none."""
        x0, y0 = self.display_origin
        return self.data_window or (x0, y0, self.width, self.height)

    @property
    def has_overscan(self) -> bool:
        return self.window != (*self.display_origin, self.width, self.height)

    def cropped(self) -> "PlateFormat":
        """The same format with the data window set to the display window."""
        return replace(self, data_window=None)

    def timecode_of(self, frame_number: int) -> str | None:
        """The timecode of one frame (the first frame's timecode, counted on at ``fps``)."""
        if not self.timecode or not self.fps:
            return None
        return timecode_add(self.timecode, self.fps, frame_number - self.first_frame)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rate_of(fps: float) -> Fraction:
    """A frame rate as the rational FFmpeg and EXR store (29.97 -> 30000/1001)."""
    return Fraction(fps).limit_denominator(1001)


def _timecode(fps: float, text: str | None = None, frames: int | None = None):
    from timecode import Timecode

    rate = rate_of(fps)
    framerate = str(rate.numerator) if rate.denominator == 1 else f"{rate.numerator}/{rate.denominator}"
    try:
        return Timecode(framerate, text) if text is not None else Timecode(framerate, frames=frames)
    except (ValueError, TypeError, ZeroDivisionError) as exc:
        raise SamrotoIOError(f"timecode {text!r} at {float(fps):g} fps is not valid: {exc}") from exc


def timecode_to_frames(text: str, fps: float) -> int:
    """``10:00:00:00`` at 25 fps -> 900000 (frames since 00:00:00:00)."""
    return _timecode(fps, text).frame_number


def timecode_add(text: str, fps: float, frames: int) -> str:
    """The timecode ``frames`` frames after ``text`` (before, when negative)."""
    total = timecode_to_frames(text, fps) + int(frames)
    if total < 0:
        raise SamrotoIOError(f"timecode {text} minus {-frames} frames is before 00:00:00:00")
    return str(_timecode(fps, frames=total + 1))  # the package counts frames from 1
