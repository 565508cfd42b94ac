"""Review a track: step through the tracked frames with the matte on the clip, and jump to
the frames where an object was lost.

What a track leaves is its matte sequences (one per object). The bridge's matte events do
carry SAM 2's object score (protocol 1.3), but a Resolve script lives for one run and keeps
nothing for the next, so review works from what is on disk. SAM 2 itself turns a frame
whose object score says "not there" into an empty matte (docs/video.md: logits -1024 when the object score is <= 0), so a frame where an
object's matte has no pixel at 0.5 or more is a frame where it was lost. Those are found
by reading the matte files here, in Resolve's Python (standard library only): samroto's
EXR mattes (scanline, one channel, half or float; no, ZIP or ZIPS compression — what the
bridge writes) are read without decoding every pixel, stopping at the first one inside.

The matte is shown on the clip in the Fusion page, by a Loader ``samroto_<object>_matte``
per object reading the sequence (the comp's playhead is moved to the frame), and on the
Edit/Color page's playhead when the frame is inside the clip's used range
(Timeline.SetCurrentTimecode; the clip matte is on the Color page's node's key input).
"""

import itertools
import operator
import os
import struct
import zlib

from . import clip as cliplib
from . import media
from .kit import hostkit

PRESENT = 0.5  # alpha at or above which a pixel is inside


class MatteReadError(hostkit.HostError):
    """A matte file samroto's reader cannot look into (another format or layout)."""


def _attributes(data):
    """{name: (type, bytes)} of an EXR header, and where the header ends."""
    pos, found = 8, {}  # type: int, dict
    while True:
        end = data.index(b"\0", pos)
        if end == pos:
            return found, pos + 1
        name = data[pos:end].decode("latin-1")
        type_end = data.index(b"\0", end + 1)
        kind = data[end + 1:type_end].decode("latin-1")
        size = struct.unpack_from("<i", data, type_end + 1)[0]
        start = type_end + 5
        found[name] = (kind, data[start:start + size])
        pos = start + size


_MINUS_128 = bytes((b - 128) & 255 for b in range(256))


def _unpredict(encoded):
    """OpenEXR's ZIP predictor undone (raw[i] = raw[i-1] + enc[i] - 128, bytes), at C speed:
    a running sum of (enc - 128) taken modulo 256."""
    steps = encoded[:1] + encoded[1:].translate(_MINUS_128)
    return bytes(map(operator.and_, itertools.accumulate(steps), itertools.repeat(255)))


# The most significant byte of a positive value >= 0.5 (half 0.5 is 0x3800, float 0x3F000000;
# bit patterns of positive numbers order like the numbers): every other byte is deleted.
_OUTSIDE = {False: bytes(b for b in range(256) if not 0x38 <= b <= 0x7B),
            True: bytes(b for b in range(256) if not 0x3F <= b <= 0x7F)}


def matte_present(path):
    """Whether the one-channel EXR matte at ``path`` has a pixel >= 0.5 (PRESENT).
    MatteReadError for a file this reader does not handle (tiled, multi-part, several
    channels, other compression): the caller says it cannot tell."""
    with open(path, "rb") as fh:
        data = fh.read()
    if data[:4] != b"\x76\x2f\x31\x01":
        raise MatteReadError("%s is not an EXR file" % path)
    if struct.unpack_from("<i", data, 4)[0] & 0x1A00:  # tiled, deep, multi-part
        raise MatteReadError("%s is a tiled or multi-part EXR" % path)
    attrs, pos = _attributes(data)
    channels, chans = attrs["channels"][1], []
    i = 0
    while channels[i:i + 1] not in (b"\0", b""):
        end = channels.index(b"\0", i)
        chans.append(struct.unpack_from("<i", channels, end + 1)[0])
        i = end + 17
    compression = attrs["compression"][1][0]
    if len(chans) != 1 or chans[0] not in (1, 2) or compression not in (0, 2, 3):
        raise MatteReadError("%s: samroto reads one half/float channel with no, ZIPS or ZIP compression" % path)
    float32 = chans[0] == 2
    x0, y0, x1, y1 = struct.unpack("<4i", attrs["dataWindow"][1])
    width, height = x1 - x0 + 1, y1 - y0 + 1
    lines = {0: 1, 2: 1, 3: 16}[compression]
    chunks = (height + lines - 1) // lines
    offsets = struct.unpack_from("<%dQ" % chunks, data, pos)
    size = 4 if float32 else 2
    for offset in offsets:
        y, length = struct.unpack_from("<ii", data, offset)
        block = data[offset + 8:offset + 8 + length]
        raw_size = width * size * min(lines, y1 - y + 1)
        if compression == 0 or length >= raw_size:  # stored as it is
            highs = block[size - 1::size]
        else:
            encoded = zlib.decompress(block)
            if encoded[:1] == b"\0" and encoded.count(0x80) == len(encoded) - 1:
                continue  # every byte zero: an empty run of lines
            odd = _unpredict(encoded)[(len(encoded) + 1) // 2:]  # the odd bytes of each value
            highs = odd[1::2] if float32 else odd
        if highs.translate(None, _OUTSIDE[float32]):
            return True
    return False


def ranges(frames):
    """[1, 2, 3, 7, 9, 10] -> '1-3, 7, 9-10'."""
    out = []
    for _, group in itertools.groupby(enumerate(sorted(frames)), lambda p: p[1] - p[0]):
        run = [f for _, f in group]
        out.append(str(run[0]) if len(run) == 1 else "%d-%d" % (run[0], run[-1]))
    return ", ".join(out)


class Review(object):
    """The tracked frames of the clip under the playhead (what its matte sequences hold on
    disk, for the objects of its comp), and where each object was lost. Built from a
    workflow.Plan, so the window and the no-window scripts see the same thing, also after
    Resolve restarted."""

    def __init__(self, plan, cache=None):
        self.plan = plan
        self.patterns = {o["name"]: hostkit.object_pattern(plan.pattern, o["name"])
                         for o in plan.prompts["objects"]}
        self.frames = {name: hostkit.frames_on_disk(p) for name, p in self.patterns.items()}
        self._present = {} if cache is None else cache  # (path, mtime) -> bool, kept by the window

    @property
    def tracked(self):
        return sorted(set(f for frames in self.frames.values() for f in frames))

    def present(self, name, frame):
        """Whether object ``name`` is in its matte on ``frame`` (None: cannot tell)."""
        path = hostkit.frame_file(self.patterns[name], frame)
        try:
            key = (path, os.path.getmtime(path))
        except OSError:
            return None
        if key not in self._present:
            try:
                self._present[key] = matte_present(path)
            except (MatteReadError, OSError, ValueError, KeyError, struct.error, zlib.error):
                self._present[key] = None
        return self._present[key]

    def lost(self, name):
        """The tracked frames where object ``name``'s matte is empty."""
        return [f for f in self.frames[name] if self.present(name, f) is False]

    def report(self):
        lines = []
        for name in sorted(self.frames):
            frames = self.frames[name]
            if not frames:
                lines.append("%s: not tracked yet" % name)
                continue
            lost = self.lost(name)
            unknown = [f for f in frames if self.present(name, f) is None]
            line = "%s: tracked %s; lost on %s" % (name, ranges(frames), ranges(lost) if lost else "no frame")
            if unknown:
                line += " (cannot read the mattes of %s)" % ranges(unknown)
            lines.append(line)
        return lines

    # -- moving the playhead ------------------------------------------------------------------
    def current(self):
        return self.plan.clock.to_frame(self.plan.comp.CurrentTime)

    def step(self, delta):
        """The next (delta > 0) or previous tracked frame from the current one; shown."""
        frames = self.tracked
        if not frames:
            raise hostkit.HostError("Nothing tracked on %s yet: track first." % self.plan.clip.name, "no_mattes")
        here = self.current()
        after = [f for f in frames if (f > here if delta > 0 else f < here)]
        target = (after[0] if delta > 0 else after[-1]) if after else (frames[-1] if delta > 0 else frames[0])
        return self.show(target)

    def next_lost(self):
        """(frame, [objects lost there]) of the next frame after the current one where an
        object was lost (from the start again after the last); None when none was."""
        lost = {}  # type: dict
        for name in self.frames:
            for f in self.lost(name):
                lost.setdefault(f, []).append(name)
        if not lost:
            return None
        here = self.current()
        later = [f for f in sorted(lost) if f > here]
        frame = later[0] if later else min(lost)
        self.show(frame)
        return frame, sorted(lost[frame])

    def show(self, frame):
        """Put the comp's playhead (and the timeline's, where the frame is on it) on source
        ``frame``, with the matte Loaders reading each object's sequence."""
        plan = self.plan
        for name, frames in self.frames.items():
            if frames:
                media.add_loaders(plan.comp, plan.clock, {name: self.patterns[name]}, (frames[0], frames[-1]))
        plan.comp.CurrentTime = plan.clock.to_time(frame)
        timecode = timeline_timecode(plan.item, plan.clip, frame)
        if timecode is not None and hasattr(plan.timeline, "SetCurrentTimecode"):
            plan.timeline.SetCurrentTimecode(timecode)
        return frame


def timeline_timecode(item, info, frame):
    """The timeline timecode where source ``frame`` plays (None outside the used range)."""
    lo, hi = info.used_range
    if not lo <= frame <= hi:
        return None
    start = cliplib._int(item.GetStart(), 0)  # type: ignore[call-arg]
    return cliplib.frames_to_timecode(start + int((frame - lo) / info.speed), info.fps)
