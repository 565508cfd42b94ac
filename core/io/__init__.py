"""Frame and matte I/O: frame sources in, mattes out. numpy, PyAV, OpenImageIO and OpenColorIO
only (no torch), so hosts' tools and the bridge can use it cheaply. See docs/io.md."""

from .color import (
    ColorSpec,
    ColorTransform,
    build_transform,
    highlight_rolloff,
    list_color_spaces,
    rec709_decode,
    srgb_decode,
    srgb_encode,
)
from .errors import ColorError, FrameSourceError, MatteWriteError, SamrotoIOError
from .frames import ArrayFrames, FrameSource, ImageSequenceFrames, VideoFrames, open_frames, open_shot
from .mattes import MatteWriter, atomic_path, safe_name, write_text_atomic
from .patterns import SequencePattern, format_frame_path, parse_pattern

__all__ = [
    "ArrayFrames", "ColorError", "ColorSpec", "ColorTransform", "FrameSource", "FrameSourceError",
    "ImageSequenceFrames", "MatteWriteError", "MatteWriter", "SamrotoIOError", "SequencePattern",
    "VideoFrames", "atomic_path", "write_text_atomic", "build_transform", "format_frame_path", "highlight_rolloff",
    "list_color_spaces", "open_frames", "open_shot", "parse_pattern", "rec709_decode", "safe_name",
    "srgb_decode", "srgb_encode",
]
