"""What the automatic mask generator raises on purpose."""

from __future__ import annotations


class Cancelled(Exception):
    """``generate`` was cancelled (its ``cancel`` event was set or callable returned True);
    raised between decoder batches, so no work is half done."""


class FrameTooLargeError(MemoryError):
    """The frame does not fit the device's memory even one mask at a time. The message
    says how large the frame is, what one mask needs, what the device has, and what to
    change."""


def frame_too_large(width: int, height: int, need: int, have: int | None, device) -> FrameTooLargeError:
    mib = 1 << 20
    free = f"{have / mib:.0f} MiB free" if have is not None else "not enough free memory"
    return FrameTooLargeError(
        f"a {width}x{height} frame needs about {need / mib:.0f} MiB on {device} for each mask at full "
        f"resolution and there is {free}. Segment a smaller copy of the frame (e.g. half size) and "
        "scale the masks up, free the device (close other sessions or programs), or run on a device "
        "with more memory (--device cpu uses host memory)")
