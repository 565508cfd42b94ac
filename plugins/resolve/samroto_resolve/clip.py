"""The timeline item's source: file path, frame numbering, size, colour and the frames to track.

Everything comes from documented calls (Resolve scripting README): TimelineItem.GetName,
GetDuration, GetLeftOffset, GetRightOffset, GetMediaPoolItem; MediaPoolItem.GetClipProperty
with the Clip Attributes keys ("File Path", "FPS", "Start TC", "Start", "Frames",
"Resolution", "Input Color Space").

Frame numbers are the source's own (docs/architecture.md): a movie file's frames count from
0, an image sequence keeps the numbers in its file names. What the bridge gets is the
source and a range in that numbering (``open_shot``: a movie is cut in its own numbering),
so a trimmed movie clip is tracked on the source frames the timeline shows.

The in-point: ``GetLeftOffset()`` (the frames the item could extend to the left) counts
*timeline* frames: on a retimed clip it is the source offset divided by the speed. So where
``GetSourceStartFrame()``/``GetSourceEndFrame()`` (the README: "the start/end frame position
of the media pool clip in the timeline clip", source frames) say the item plays a different
number of source frames than its duration (a speed change, or a clip of another frame rate),
those give the used source range and the speed; otherwise the left offset does (exact at
100 %; the source frame calls are reported one frame off on some clips). Both are called
without arguments: Resolve before 19 takes none.
"""

import os
import re

from .kit import hostkit

MYPY = False
if MYPY:  # type checks only: Resolve's API as fusionscript-stubs describes it
    from fusionscript import Resolve, TimelineItem  # noqa: F401

IMAGE_EXTS = {".exr", ".dpx", ".cin", ".tif", ".tiff", ".png", ".jpg", ".jpeg", ".tga", ".bmp"}


class ClipError(hostkit.HostError):
    """The clip cannot be tracked; the message says why and what to do."""


def _int(value, default=None):
    try:
        return int(round(float(value)))
    except (TypeError, ValueError):
        return default


def safe_name(text):
    """A file- and Fusion-tool-safe version of a clip or object name."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._")
    return cleaned or "clip"


def sequence_of(path, start_property=None):
    """(pattern, first, last) for an image-sequence path as Resolve reports it, else None.

    Resolve shows a sequence as ``plate.[1001-1100].exr``; a single numbered frame
    ``plate.1001.exr`` or a printf pattern is accepted too. The pattern is printf-style.
    """
    m = re.match(r"^(.*?)\[(\d+)-(\d+)\](.*)$", path)
    if m:
        prefix, a, b, suffix = m.groups()
        return "%s%%0%dd%s" % (prefix, len(a), suffix), int(a), int(b)
    if (hostkit.frame_token(path) or "").startswith("%"):
        return path, _int(start_property, 0), None
    numbered = hostkit.sequence_of_file(path, style="%")
    if numbered and os.path.splitext(path)[1].lower() in IMAGE_EXTS:
        return numbered[0], _int(start_property, numbered[1]), None
    return None


def timecode_to_frames(tc, fps):
    """'HH:MM:SS:FF' (';' = drop frame) -> frame count at ``fps``."""
    m = re.match(r"^(\d+)[:;.](\d+)[:;.](\d+)([:;.])(\d+)$", str(tc or "").strip())
    if not m:
        return 0
    h, mi, s, sep, f = m.groups()
    h, mi, s, f = int(h), int(mi), int(s), int(f)
    rate = int(round(fps))
    frames = ((h * 60 + mi) * 60 + s) * rate + f
    if sep == ";" and rate in (30, 60):  # SMPTE drop frame: 2 (or 4) numbers dropped a minute
        drop = 2 if rate == 30 else 4
        minutes = h * 60 + mi
        frames -= drop * (minutes - minutes // 10)
    return frames


def frames_to_timecode(frames, fps, drop=False):
    rate = int(round(fps))
    frames = max(0, int(frames))
    if drop and rate in (30, 60):
        d = 2 if rate == 30 else 4
        per10 = rate * 600 - d * 9
        tens, rem = divmod(frames, per10)
        if rem > d:
            frames += d * 9 * tens + d * ((rem - d) // (rate * 60 - d))
        else:
            frames += d * 9 * tens
    f = frames % rate
    s = frames // rate % 60
    mi = frames // (rate * 60) % 60
    h = frames // (rate * 3600)
    return "%02d:%02d:%02d%s%02d" % (h, mi, s, ";" if drop else ":", f)


# Resolve's Input Color Space names -> samroto's colour input (docs/io.md); others: auto.
COLOR_NAMES = [
    ("linear", "linear"),
    ("logc4", "ARRI LogC4"),
    ("logc", "ARRI LogC3 (EI800)"),
    ("s-log3", "S-Log3 S-Gamut3.Cine"),
    ("rec.709", "srgb"),
    ("rec709", "srgb"),
    ("srgb", "srgb"),
    ("rec.2020 gamma", "srgb"),
]


def color_input(name):
    low = str(name or "").lower()
    for key, value in COLOR_NAMES:
        if key in low:
            return value
    return "auto"


class ClipInfo(object):
    """What samroto needs to know about one timeline item."""

    def __init__(self, item):
        # type: (TimelineItem) -> None
        self.item = item
        self.media = item.GetMediaPoolItem()
        if self.media is None:
            raise ClipError("%s has no source media (a title, generator or compound clip); "
                            "put the playhead over a clip with a media file." % item.GetName())
        prop = self.media.GetClipProperty
        self.path = str(prop("File Path") or "")
        if not self.path:
            raise ClipError("%s has no file path in the Media Pool; samroto needs the media file."
                            % item.GetName())
        self.name = item.GetName() or os.path.basename(self.path)
        self.fps = float(str(prop("FPS") or 24)) if _int(prop("FPS")) else 24.0
        self.start_tc = str(prop("Start TC") or "00:00:00:00")
        res = re.match(r"^\s*(\d+)\s*[xX]\s*(\d+)", str(prop("Resolution") or ""))
        if not res:
            raise ClipError("%s: Resolve reports no resolution for the clip (%r)."
                            % (self.name, prop("Resolution")))
        self.width, self.height = int(res.group(1)), int(res.group(2))
        self.color = color_input(prop("Input Color Space"))
        seq = sequence_of(self.path, prop("Start"))
        if seq:
            self.pattern, self.first, last = seq
            self.is_sequence = True
        else:
            self.pattern, self.first, last = None, 0, None
            self.is_sequence = False
        # no subframe_precision argument: Resolve before 19 takes none (stub gap, see tests/test_typecheck.py)
        self.duration = _int(item.GetDuration(), 0)  # type: ignore[call-arg]
        self.in_offset, self.source_duration = _int(item.GetLeftOffset(), 0), self.duration  # type: ignore[call-arg]
        self.speed = 1.0
        span = source_span(item)
        if span is not None and self.duration > 0 and abs((span[1] - span[0] + 1) - self.duration) > 1:
            self.in_offset, self.source_duration = span[0], span[1] - span[0] + 1
            self.speed = float(self.source_duration) / self.duration
        frames = _int(prop("Frames"))
        if not frames:
            frames = self.in_offset + self.source_duration + int(round(_int(item.GetRightOffset(), 0) * self.speed))  # type: ignore[call-arg]
        if last is not None:
            frames = last - self.first + 1
        self.frame_count = frames
        if self.duration <= 0 or self.frame_count <= 0:
            raise ClipError("%s: the clip has no frames." % self.name)
        # A linked proxy plays in Resolve, but samroto tracks the original ("File Path", at its
        # "Resolution"): the Fusion comp starts at the source's size (Resolve manual,
        # "Controlling Image Processing and Resolution"), and prompts are normalised anyway.
        self.proxy = str(prop("Proxy Media Path") or "")
        if self.proxy and not os.path.isfile(self.first_file):
            raise ClipError("%s: the original media is offline (%s); Resolve plays its proxy, but samroto "
                            "tracks the full-resolution original: relink it (Media Pool > Relink Clips)."
                            % (self.name, self.first_file))

    # -- frames -----------------------------------------------------------------------------
    @property
    def source(self):
        """What the bridge opens: the movie file, or the sequence pattern."""
        return self.pattern if self.is_sequence else self.path

    @property
    def first_file(self):
        """The movie, or the sequence's first frame file."""
        return hostkit.frame_file(self.pattern, self.first) if self.is_sequence else self.path

    def frame_of_offset(self, offset):
        return self.first + int(offset)

    @property
    def all_frames(self):
        return (self.first, self.first + self.frame_count - 1)

    @property
    def retimed(self):
        return self.speed != 1.0

    @property
    def used_range(self):
        """Source frame numbers of the item's in and out points (inclusive): the source frames
        it plays, also when retimed."""
        a = self.frame_of_offset(self.in_offset)
        return (a, a + self.source_duration - 1)

    def track_range(self, handles=0, include=()):
        """Used range plus ``handles`` on each side, grown to cover ``include`` (prompt
        frames), clipped to the source."""
        lo, hi = self.used_range
        lo, hi = lo - max(0, int(handles)), hi + max(0, int(handles))
        for f in include:
            lo, hi = min(lo, f), max(hi, f)
        first, last = self.all_frames
        return (max(lo, first), min(hi, last))

    def timecode_of(self, frame):
        """Source timecode of a source frame number (for the matte clips' Start TC)."""
        drop = ";" in self.start_tc
        return frames_to_timecode(timecode_to_frames(self.start_tc, self.fps) + frame - self.first,
                                  self.fps, drop)

    # -- mattes -----------------------------------------------------------------------------
    def matte_dir(self, root=None):
        base = root or os.path.join(os.path.dirname(self.source), "samroto_mattes")
        return os.path.join(base, safe_name(self.name))

    def matte_pattern(self, root=None, ext="exr"):
        """printf pattern of the matte sequences with ``{name}`` where the object name goes
        (one sequence per object, numbered like the clip's frames)."""
        stem = safe_name(os.path.splitext(self.name)[0])
        return os.path.join(self.matte_dir(root), stem + "_{name}.%04d." + ext)


def _call(obj, name):
    """``obj.name()``, or None where this Resolve lacks the call (older versions) or fails."""
    method = getattr(obj, name, None)
    if not callable(method):
        return None
    try:
        return method()
    except (TypeError, AttributeError):
        return None


def source_span(item):
    """(first, last) source frame offsets the item plays, inclusive (the README's
    TimelineItem.GetSourceStartFrame/GetSourceEndFrame; the end is inclusive as measured by
    people who ran it), or None where this Resolve has no such calls."""
    start, end = _int(_call(item, "GetSourceStartFrame")), _int(_call(item, "GetSourceEndFrame"))
    if start is None or end is None or end < start:
        return None
    return start, end


def current_item(resolve):
    # type: (Resolve) -> tuple
    """The top video item under the playhead (Timeline.GetCurrentVideoItem), with its project."""
    project = resolve.GetProjectManager().GetCurrentProject()
    if project is None:
        raise ClipError("No project is open in Resolve.")
    timeline = project.GetCurrentTimeline()
    if timeline is None:
        raise ClipError("No timeline is open: open one and put the playhead over a clip.")
    item = timeline.GetCurrentVideoItem()
    if item is None:
        raise ClipError("No video clip under the playhead: move the playhead over the clip to matte.")
    return project, timeline, item
