"""Errors of the frame and matte I/O. Every message says what was wrong and what to do."""


class SamrotoIOError(Exception):
    """Base of every frame/matte/colour I/O error."""


class FrameSourceError(SamrotoIOError):
    """A source cannot be opened or a frame cannot be read (missing, corrupt, out of range)."""


class MatteWriteError(SamrotoIOError):
    """A matte cannot be written (bad pattern, unwritable directory, full disk, bad data)."""


class ColorError(SamrotoIOError):
    """A colour transform cannot be built (unknown colour space, unreadable OCIO config)."""
