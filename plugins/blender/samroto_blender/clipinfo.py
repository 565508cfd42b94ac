"""What the bridge needs to know about a Movie Clip: its frames on disk, frame numbers,
colour space, and the mapping between Blender's clip space and samroto's pixel space.

No ``bpy`` import here: the functions take the clip (or plain values), so they stay easy
to reason about and to test.

Frame numbers. samroto speaks the source's own numbers (``plate.1001.exr`` is frame 1001; a
movie's frames are 0, 1, 2...). Blender shows source frame
``first + (scene_frame - clip.frame_start + clip.frame_offset)``, where ``first`` is the
number in the sequence's file name (0 for a movie).

Coordinates. Blender's clip space is normalised, origin at the bottom-left, y up; samroto's
prompts are pixels, origin at the top-left corner of the top-left pixel, y down
(``hostkit.from_normalised``). Mask coordinates come with the shapes from samroto's exporter
(core/splines/blender.py).
"""

import os

from .kit import hostkit

# Blender colour-space names -> samroto's input transforms (core/io/color.py). Names not
# listed here go to the bridge as OCIO colour spaces (the studio config knows ACEScg etc.).
_COLOR_SPACES = {
    "srgb": "srgb",
    "non-color": "srgb",
    "raw": "srgb",
    "filmic srgb": "srgb",
    "agx base srgb": "srgb",
    "display p3": "srgb",
    "linear": "linear",
    "linear rec.709": "linear",
    "linear rec.2020": "linear",
    "linear cie-xyz e": "linear",
    "rec.1886": "rec709",
    "bt.1886": "rec709",
    "rec.709": "rec709",
}


class ClipError(hostkit.HostError):
    """The clip cannot be tracked as it is; the message says what to do."""


def absolute_path(clip, bpy_path_abspath):
    """The clip's file on disk (``//`` paths resolved against the .blend)."""
    path = bpy_path_abspath(clip.filepath, library=clip.library)
    return os.path.normpath(path)


def first_file_number(clip_path, source):
    """The frame number in a sequence's first file name; 0 for a movie."""
    numbered = hostkit.sequence_of_file(clip_path) if source == "SEQUENCE" else None
    return numbered[1] if numbered else 0


def sequence_pattern(clip_path):
    """``/x/plate.1001.exr`` -> ``/x/plate.####.exr`` (the padding kept)."""
    numbered = hostkit.sequence_of_file(clip_path)
    if numbered is None:
        raise ClipError(
            "The clip is an image sequence but its file name %r has no frame number; "
            "rename the files like plate.1001.exr." % os.path.basename(clip_path))
    return numbered[0]


def frames_source(clip_path, source):
    """What the bridge opens: the movie file, or the sequence's ``####`` pattern."""
    if source == "MOVIE":
        return clip_path
    if source == "SEQUENCE":
        return sequence_pattern(clip_path)
    raise ClipError("The clip's source %r is not a movie or an image sequence." % source)


def check_on_disk(clip_path, source):
    """A clear error when the clip's files are missing (before any bridge work starts)."""
    if not os.path.isfile(clip_path):
        raise ClipError(
            "The clip's file %s is missing on disk: relink the clip (Clip > Open) or "
            "restore the file, then track again." % clip_path)


def source_frame(scene_frame, clip_frame_start, clip_frame_offset, first):
    """Scene frame -> the source's own frame number."""
    return first + scene_frame - clip_frame_start + clip_frame_offset


def scene_frame(source_frame_number, clip_frame_start, clip_frame_offset, first):
    """The source's own frame number -> scene frame."""
    return source_frame_number - first + clip_frame_start - clip_frame_offset


def source_range(clip_frame_start, clip_frame_offset, frame_duration, first):
    """(first, last) source frame numbers the clip shows."""
    lo = source_frame(clip_frame_start, clip_frame_start, clip_frame_offset, first)
    return lo, lo + frame_duration - 1


def color_input(blender_name):
    """samroto's colour input for a Blender colour-space name."""
    return _COLOR_SPACES.get((blender_name or "").strip().lower(), blender_name or "auto")

