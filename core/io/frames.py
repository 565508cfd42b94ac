"""Frame sources: random access by frame number, lazy decoding, display-referred float RGB out.

``open_frames`` opens a video file (PyAV), an image sequence (OpenImageIO: a pattern, one
frame file of the sequence, or an explicit list of paths) or in-memory arrays. Every source
speaks its own frame numbers (a 1001-based plate stays 1001-based; a movie starts at 0
unless a ``first`` offset is given) and returns float32 (H, W, 3) in [0, 1] after the input
colour transform.
"""

from __future__ import annotations

import abc
import logging
import os
import re
import threading
from collections import OrderedDict
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .color import ColorSpec, ColorTransform, build_transform
from .errors import FrameSourceError, SamrotoIOError
from .plate import PlateFormat, timecode_to_frames
from .patterns import (
    SequencePattern,
    compress_ranges,
    has_frame_token,
    parse_pattern,
    pattern_from_frame_file,
)

VIDEO_EXTENSIONS = {
    ".mov", ".mp4", ".m4v", ".mkv", ".mxf", ".avi", ".webm", ".mpg", ".mpeg", ".ts", ".mts",
    ".m2ts", ".wmv", ".flv", ".y4m", ".nut",
}
DAMAGE_POLICIES = ("error", "warn")
log = logging.getLogger("samroto.io")

IMAGE_EXTENSIONS = {
    ".exr", ".sxr", ".dpx", ".cin", ".tif", ".tiff", ".png", ".jpg", ".jpeg", ".hdr", ".tga",
    ".sgi", ".rgb", ".bmp", ".webp", ".jp2", ".jxl", ".psd", ".iff",
}


class FrameSource(abc.ABC):
    """Frames addressed by the source's own frame numbers.

    Subclasses implement ``_read_raw`` (native pixels: uint8, uint16 or float32, (H, W, 3))
    and ``_data_is_float``; the base applies the colour transform and checks ranges.
    """

    kind = "frames"

    def __init__(self, frame_numbers: Sequence[int], width: int, height: int,
                 fps: float | None, color: Any = None, plate: PlateFormat | None = None):
        self._frame_numbers = [int(n) for n in frame_numbers]
        if not self._frame_numbers:
            raise FrameSourceError(f"{self.kind} source has no frames")
        self._positions = {n: i for i, n in enumerate(self._frame_numbers)}
        self.width = int(width)
        self.height = int(height)
        self.fps = fps
        self.plate = plate or PlateFormat(self.width, self.height, fps=fps, first_frame=self._frame_numbers[0])
        self.color = ColorSpec.coerce(color)
        self._transform: ColorTransform | None = None
        # The two raw frames decoded last: the tracker reads one frame ahead (a worker
        # thread) while the finishing stage reads the current frame's plate, so neither
        # makes a movie seek back. The lock makes a source safe to read from both threads.
        self._recent: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.RLock()

    # -- numbering ------------------------------------------------------------------
    @property
    def frame_numbers(self) -> list[int]:
        return list(self._frame_numbers)

    @property
    def first(self) -> int:
        return self._frame_numbers[0]

    @property
    def last(self) -> int:
        return self._frame_numbers[-1]

    def __len__(self) -> int:
        return len(self._frame_numbers)

    def index_of(self, frame_number: int) -> int:
        """Position 0..len-1 of a frame number (what a VideoSession works with)."""
        self._check(frame_number)
        return self._positions[int(frame_number)]

    def _check(self, frame_number: int) -> None:
        if isinstance(frame_number, bool) or not isinstance(frame_number, (int, np.integer)):
            raise FrameSourceError(f"frame number must be an int, not {frame_number!r}")
        if int(frame_number) not in self._positions:
            raise FrameSourceError(
                f"frame {frame_number} is outside {self.label}: valid frames are "
                f"{compress_ranges(self._frame_numbers)}"
            )

    # -- pixels ---------------------------------------------------------------------
    @property
    def transform(self) -> ColorTransform:
        if self._transform is None:
            self._transform = build_transform(self.color, self._data_is_float())
        return self._transform

    def _raw(self, frame_number: int) -> np.ndarray:
        self._check(frame_number)
        frame_number = int(frame_number)
        with self._lock:
            raw = self._recent.get(frame_number)
            if raw is not None:
                return raw
            raw = self._read_raw(frame_number)
            if raw.shape != (self.height, self.width, 3):
                raise FrameSourceError(
                    f"frame {frame_number} of {self.label} is {raw.shape[1]}x{raw.shape[0]}, the source is "
                    f"{self.width}x{self.height}: every frame of a shot must have the same size"
                )
            self._remember(frame_number, raw)
            return raw

    def _remember(self, frame_number: int, raw: np.ndarray) -> None:
        self._recent[frame_number] = raw
        while len(self._recent) > 2:
            self._recent.popitem(last=False)

    def _forget(self, frame_number: int | None = None) -> None:
        """Drop a recently read frame (its pixels changed), or all of them."""
        with self._lock:
            if frame_number is None:
                self._recent.clear()
            else:
                self._recent.pop(int(frame_number), None)

    def read(self, frame_number: int) -> np.ndarray:
        """Frame as float32 (H, W, 3), display-referred, in [0, 1]."""
        return self.transform.apply(_normalise(self._raw(frame_number)))

    def read_uint8(self, frame_number: int) -> np.ndarray:
        """Frame as uint8 (H, W, 3), display-referred."""
        raw = self._raw(frame_number)
        if raw.dtype == np.uint8 and self.transform.identity:
            return raw.copy()
        return (self.read(frame_number) * 255.0 + 0.5).astype(np.uint8)

    @abc.abstractmethod
    def _read_raw(self, frame_number: int) -> np.ndarray: ...

    @abc.abstractmethod
    def _data_is_float(self) -> bool: ...

    # -- description and lifetime -----------------------------------------------------
    @property
    def label(self) -> str:
        return f"the {self.kind} source"

    def describe(self) -> dict[str, Any]:
        """JSON-safe summary for logs and the wire."""
        return {
            "kind": self.kind,
            "first": self.first,
            "last": self.last,
            "count": len(self),
            "contiguous": self.last - self.first + 1 == len(self),
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "pixel_aspect": self.plate.pixel_aspect,
            "data_window": list(self.plate.window),
            "timecode": self.plate.timecode_of(self.first),
            "color": {**self.color.to_dict(), "transform": self.transform.description},
        }

    def close(self) -> None:
        self._forget()

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label} {self.first}-{self.last} {self.width}x{self.height}>"


def _normalise(raw: np.ndarray) -> np.ndarray:
    if raw.dtype == np.uint8:
        return raw.astype(np.float32) * (1.0 / 255.0)
    if raw.dtype == np.uint16:
        return raw.astype(np.float32) * (1.0 / 65535.0)
    return raw.astype(np.float32, copy=False)


def _as_rgb(pixels: np.ndarray, what: str) -> np.ndarray:
    """(H, W), (H, W, 1|2|3|4+) -> (H, W, 3); grey is replicated, alpha dropped."""
    a = np.asarray(pixels)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] == 0:
        raise FrameSourceError(f"{what} has shape {a.shape}; expected (H, W) or (H, W, channels)")
    if a.shape[2] < 3:
        a = np.repeat(a[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(a[:, :, :3])


# --- in-memory arrays ----------------------------------------------------------------------

class ArrayFrames(FrameSource):
    """Frames held in memory (from the bridge or a host). ``arrays``: a sequence of (H, W, C)
    arrays or one (T, H, W, C) array; uint8, uint16 or float. Numbered ``first`` onwards."""

    kind = "arrays"

    def __init__(self, arrays: Sequence[np.ndarray] | np.ndarray, first: int = 0, color: Any = None):
        frames = [_as_rgb(a, f"array {i}") for i, a in enumerate(arrays)]
        if not frames:
            raise FrameSourceError("ArrayFrames needs at least one array")
        dtypes = {f.dtype for f in frames}
        if len(dtypes) > 1:
            raise FrameSourceError(f"arrays mix dtypes {sorted(map(str, dtypes))}; give them all one dtype")
        dtype = frames[0].dtype
        if dtype not in (np.uint8, np.uint16) and not np.issubdtype(dtype, np.floating):
            raise FrameSourceError(f"arrays of dtype {dtype} are not frames: use uint8, uint16 or float")
        if np.issubdtype(dtype, np.floating):
            frames = [f.astype(np.float32, copy=False) for f in frames]
        h, w = frames[0].shape[:2]
        super().__init__(range(first, first + len(frames)), w, h, None, color)
        self._frames = frames

    def _read_raw(self, frame_number: int) -> np.ndarray:
        return self._frames[frame_number - self.first]

    def _data_is_float(self) -> bool:
        return self._frames[0].dtype == np.float32


# --- image sequences (OpenImageIO) -----------------------------------------------------------

class ImageSequenceFrames(FrameSource):
    """An image sequence read with OpenImageIO, one file per frame number."""

    kind = "sequence"

    def __init__(self, paths: dict[int, Path], pattern: str | None = None, color: Any = None):
        self._paths = dict(sorted(paths.items()))
        self.pattern = pattern
        first_path = next(iter(self._paths.values()))
        spec = _read_spec(first_path)
        self._float = spec.format.basetype in _float_basetypes()
        fps = _spec_fps(spec)
        first = next(iter(self._paths))
        plate = PlateFormat(
            spec.full_width, spec.full_height, (spec.full_x, spec.full_y),
            (spec.x, spec.y, spec.width, spec.height), _spec_pixel_aspect(spec), fps,
            _spec_timecode(spec), first)
        super().__init__(list(self._paths), spec.full_width, spec.full_height, fps, color, plate)

    @property
    def label(self) -> str:
        return self.pattern or f"the sequence of {len(self._paths)} files"

    def path(self, frame_number: int) -> Path:
        self._check(frame_number)
        return self._paths[int(frame_number)]

    def _data_is_float(self) -> bool:
        return self._float

    def _read_raw(self, frame_number: int) -> np.ndarray:
        return read_image_rgb(self._paths[frame_number], frame_number)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "pattern": self.pattern,
                "path": str(self._paths[self.first])}


def _oiio():
    import OpenImageIO as oiio

    return oiio


def _float_basetypes():
    oiio = _oiio()
    return {oiio.HALF, oiio.FLOAT, oiio.DOUBLE}


def _read_spec(path: Path):
    oiio = _oiio()
    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        raise FrameSourceError(
            f"cannot read {path}: {oiio.geterror() or 'unknown image format'}. Check the file is a "
            f"complete image (EXR, DPX, TIFF, PNG, JPEG...) and readable."
        )
    try:
        return inp.spec()
    finally:
        inp.close()


def _spec_fps(spec) -> float | None:
    value = spec.getattribute("FramesPerSecond")
    try:
        if isinstance(value, (tuple, list)) and len(value) == 2 and value[1]:
            return value[0] / value[1]
        return float(value) if value else None
    except (TypeError, ValueError):
        return None


def _spec_pixel_aspect(spec) -> float:
    try:
        value = float(spec.getattribute("PixelAspectRatio") or 1.0)
    except (TypeError, ValueError):
        return 1.0
    return value if np.isfinite(value) and value > 0 else 1.0


def _spec_timecode(spec) -> str | None:
    """An EXR/DPX ``smpte:TimeCode`` (SMPTE 12M packed BCD) as ``HH:MM:SS:FF``."""
    value = spec.getattribute("smpte:TimeCode")
    if not isinstance(value, (tuple, list)) or not value:
        return None
    return unpack_timecode(int(value[0]))


def unpack_timecode(bits: int) -> str:
    """SMPTE 12M time-and-flags word -> ``HH:MM:SS:FF`` (``;`` before frames when drop-frame)."""
    def bcd(shift, tens_bits):
        return ((bits >> (shift + 4)) & ((1 << tens_bits) - 1)) * 10 + ((bits >> shift) & 0xF)
    sep = ";" if bits & (1 << 6) else ":"
    return f"{bcd(24, 2):02d}:{bcd(16, 3):02d}:{bcd(8, 3):02d}{sep}{bcd(0, 2):02d}"


def pack_timecode(text: str) -> int:
    """``HH:MM:SS:FF`` -> SMPTE 12M time-and-flags word (what EXR's ``timeCode`` holds)."""
    parts = re.split(r"[:;.]", text)
    hh, mm, ss, ff = (int(p) for p in parts)
    word = 0
    for value, shift in ((ff, 0), (ss, 8), (mm, 16), (hh, 24)):
        word |= ((value // 10) << (shift + 4)) | ((value % 10) << shift)
    if ";" in text:
        word |= 1 << 6
    return word


def read_image_rgb(path: Path, frame_number: int | None = None) -> np.ndarray:
    """One image file as (H, W, 3) of its display window: uint8, uint16 or float32."""
    oiio = _oiio()
    where = f"frame {frame_number} ({path})" if frame_number is not None else str(path)
    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        raise FrameSourceError(
            f"cannot read {where}: {oiio.geterror() or 'unreadable'}. Re-render or replace the file, "
            f"or open a frame range without it."
        )
    try:
        spec = inp.spec()
        base = spec.format.basetype
        # Native 8/16-bit stays integer (10-bit DPX reads as uint16); anything else as float.
        fmt = "uint8" if base == oiio.UINT8 else "uint16" if base == oiio.UINT16 else "float"
        data = inp.read_image(0, 0, 0, spec.nchannels, fmt)
        if data is None or inp.has_error:
            raise FrameSourceError(
                f"cannot decode {where}: {inp.geterror() or 'read failed'}. The file is corrupt or "
                f"truncated: re-render it, or open a frame range without it."
            )
    finally:
        inp.close()
    data = np.asarray(data).reshape(spec.height, spec.width, spec.nchannels)
    rgb = _as_rgb(data[:, :, _rgb_channels(list(spec.channelnames), spec.nchannels)], where)
    return _to_display_window(rgb, spec)


def _rgb_channels(names: list[str], n: int) -> list[int]:
    upper = [c.upper() for c in names]
    for wanted in (["R", "G", "B"], ["RED", "GREEN", "BLUE"]):
        if all(w in upper for w in wanted):
            return [upper.index(w) for w in wanted]
    return list(range(min(n, 3)))


def _to_display_window(rgb: np.ndarray, spec) -> np.ndarray:
    """EXR data windows may be cropped or hold overscan: place pixels in the display window."""
    if (spec.x, spec.y, spec.width, spec.height) == (
        spec.full_x, spec.full_y, spec.full_width, spec.full_height
    ):
        return rgb
    out = np.zeros((spec.full_height, spec.full_width, 3), dtype=rgb.dtype)
    x0, y0 = spec.x - spec.full_x, spec.y - spec.full_y
    sx0, sy0 = max(0, -x0), max(0, -y0)
    dx0, dy0 = max(0, x0), max(0, y0)
    w = min(spec.width - sx0, spec.full_width - dx0)
    h = min(spec.height - sy0, spec.full_height - dy0)
    if w > 0 and h > 0:
        out[dy0:dy0 + h, dx0:dx0 + w] = rgb[sy0:sy0 + h, sx0:sx0 + w]
    return out


def _select_range(found: list[int], first: int | None, last: int | None, label: str) -> list[int]:
    """The requested frames (default: all found); an error names any missing ones."""
    lo = found[0] if first is None else int(first)
    hi = found[-1] if last is None else int(last)
    if lo > hi:
        raise FrameSourceError(f"first frame {lo} is after last frame {hi} for {label}")
    inside = sorted(n for n in set(found) if lo <= n <= hi)
    if len(inside) != hi - lo + 1:
        # the gaps, counted from what is on disk (a huge range must not list every missing frame)
        edges = [lo - 1, *inside, hi + 1]
        gaps = [(a + 1, b - 1) for a, b in zip(edges, edges[1:]) if b - a > 1]
        shown = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in gaps[:8]) + (", ..." if len(gaps) > 8 else "")
        runs = _runs(found)
        raise FrameSourceError(
            f"{label}: frames {shown} are missing from the range {lo}-{hi} "
            f"(on disk: {compress_ranges(found)}). Render the missing frames, or ask for a range "
            f"without gaps, e.g. frames {runs[0][0]}-{runs[0][1]}."
        )
    return list(range(lo, hi + 1))


def _runs(numbers: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for n in sorted(numbers):
        if runs and n == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    return runs


def _open_pattern(pattern: SequencePattern, first, last, color) -> ImageSequenceFrames:
    found = pattern.scan()
    if not found:
        raise FrameSourceError(_no_match_message(pattern))
    numbers = _select_range(found, first, last, pattern.text)
    return ImageSequenceFrames({n: pattern.path(n) for n in numbers}, pattern.text, color)


def _no_match_message(pattern: SequencePattern) -> str:
    msg = f"no files match {pattern.text}"
    if not pattern.directory.is_dir():
        return f"{msg}: the directory {pattern.directory} does not exist"
    loose = re.compile(re.escape(pattern.prefix) + r"(-?\d+)" + re.escape(pattern.suffix) + "$")
    similar = sorted(n for n in os.listdir(pattern.directory) if loose.match(n))
    if similar:
        digits = len(loose.match(similar[0]).group(1).lstrip("-"))
        return (f"{msg}: the files there are numbered like {similar[0]} ({len(similar)} files); "
                f"use {digits} digits of padding, e.g. {pattern.prefix}%0{digits}d{pattern.suffix} "
                f"or {pattern.prefix}{'#' * digits}{pattern.suffix}")
    return f"{msg}: check the name and the padding (%04d = #### = 4 digits)"


def _open_path_list(paths: Sequence[str | os.PathLike], first, last, color) -> ImageSequenceFrames:
    paths = [Path(p) for p in paths]
    for p in paths:
        if not p.is_file():
            raise FrameSourceError(f"{p} in the list of frames does not exist or is not a file")
    numbered = [pattern_from_frame_file(p) for p in paths]
    numbers = [n[1] for n in numbered if n is not None]
    if len(numbers) == len(paths) and len(set(numbers)) == len(numbers):
        by_number = dict(zip(numbers, paths))  # file names carry the frame numbers
        wanted = _select_range(sorted(by_number), first, last, "the list of frames")
        by_number = {n: by_number[n] for n in wanted}
    else:
        start = 0 if first is None else int(first)
        by_number = {start + i: p for i, p in enumerate(paths)}
        if last is not None:
            by_number = {n: p for n, p in by_number.items() if n <= last}
    return ImageSequenceFrames(by_number, None, color)


# --- video (PyAV) ----------------------------------------------------------------------------

class VideoFrames(FrameSource):
    """A video file decoded with PyAV, with frame-accurate random access.

    A read seeks to the nearest keyframe at or before the frame and decodes forward; the
    decoder position is kept, so sequential reads (and short jumps ahead) never re-seek.
    Frame numbers come from presentation timestamps (constant frame rate assumed).
    """

    kind = "video"
    FORWARD_DECODE_LIMIT = 48  # jumps ahead up to this many frames decode on rather than seek

    def __init__(self, path: str | os.PathLike, first: int | str | None = None, last: int | None = None,
                 color: Any = None, on_damage: str = "error", start: int | None = None):
        import av

        if on_damage not in DAMAGE_POLICIES:
            raise FrameSourceError(f"on_damage must be one of {', '.join(DAMAGE_POLICIES)}, not {on_damage!r}")
        self.on_damage = on_damage
        self.damaged: list[int] = []  # frames read despite decoder errors (on_damage="warn")
        self._tainted = False
        self.path = Path(path)
        try:
            self._container = av.open(str(self.path))
        except (av.FFmpegError, OSError) as exc:
            raise FrameSourceError(
                f"cannot open video {self.path}: {exc}. Check the file is a complete, readable "
                f"movie (H.264, HEVC, ProRes, DNxHR...)."
            ) from exc
        if not self._container.streams.video:
            self._container.close()
            raise FrameSourceError(f"{self.path} has no video stream")
        self._stream = stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self._rate = Fraction(stream.average_rate or stream.guessed_rate or stream.base_rate or 24)
        self._tb = Fraction(stream.time_base)
        self._frames = self._container.decode(stream)
        try:
            frame0 = next(self._frames)
        except (StopIteration, av.FFmpegError) as exc:
            self._container.close()
            raise FrameSourceError(f"cannot decode the first frame of {self.path}: {exc or 'no frames'}") from exc
        self._start_pts = frame0.pts if frame0.pts is not None else 0
        self._pos = 0
        count = stream.frames or self._count_packets()
        timecode = self._source_timecode()
        if first == "timecode":
            if timecode is None:
                self._container.close()
                raise FrameSourceError(
                    f"{self.path} has no timecode to number its frames by: give the first frame number instead")
            try:
                first = timecode_to_frames(timecode, float(self._rate))
            except SamrotoIOError as exc:
                self._container.close()
                raise FrameSourceError(f"{self.path}: {exc}") from exc
        elif first is not None and (isinstance(first, bool) or not isinstance(first, (int, np.integer))):
            self._container.close()
            raise FrameSourceError(f"first frame must be a frame number or 'timecode', not {first!r}")
        offset = 0 if first is None else int(first)
        end = offset + count - 1
        if last is not None:
            if last > end:
                self._container.close()
                raise FrameSourceError(
                    f"last frame {last} is past the end of {self.path} (frames {offset}-{end})"
                )
            end = int(last)
        begin = offset if start is None else int(start)
        if not offset <= begin <= end:
            self._container.close()
            raise FrameSourceError(f"frames {begin}-{end} are not in {self.path} (frames {offset}-{offset + count - 1})")
        cc = stream.codec_context
        sar = stream.sample_aspect_ratio or cc.sample_aspect_ratio
        tags = {"color_primaries": cc.color_primaries, "color_trc": cc.color_trc, "colorspace": cc.colorspace}
        plate = PlateFormat(frame0.width, frame0.height, pixel_aspect=float(sar) if sar else 1.0,
                            fps=float(self._rate), timecode=timecode, first_frame=offset,
                            color_tags={k: int(v) for k, v in tags.items() if v not in (None, 2)})
        super().__init__(range(begin, end + 1), frame0.width, frame0.height, float(self._rate), color, plate)
        self._offset = offset
        self._codec = stream.codec_context.name
        self._note_damage(frame0)
        if not self._tainted and begin == offset:  # a damaged first frame is decoded again (and reported)
            self._remember(offset, frame_to_rgb(frame0))

    def _source_timecode(self) -> str | None:
        """The start timecode: the video stream's, a timecode track's, or the container's."""
        streams = [self._stream, *(s for s in self._container.streams if s.type == "data")]
        for meta in [*(s.metadata for s in streams), self._container.metadata]:
            value = next((v for k, v in meta.items() if k.lower() == "timecode"), None)  # MKV: TIMECODE
            if value and re.fullmatch(r"\d{1,2}[:;.]\d\d[:;.]\d\d[:;.]\d\d", value.strip()):
                return value.strip()
        return None

    def _note_damage(self, frame) -> None:
        """Follow decoder damage: a frame the decoder flagged corrupt (it concealed errors)
        taints every frame after it up to the next keyframe, which may reference it."""
        if frame.key_frame:
            self._tainted = False
        if frame.is_corrupt:
            self._tainted = True

    def _check_damage(self, frame_number: int) -> None:
        """The frame just decoded is handed out: a FrameSourceError when it is damaged
        (``on_damage="error"``), else a warning, once per frame, and ``damaged`` lists it."""
        if not self._tainted:
            return
        msg = (f"frame {frame_number} of {self.path} is damaged: the decoder found errors in it or in a "
               f"frame it depends on and concealed them (guessed pixels)")
        if self.on_damage == "error":
            raise FrameSourceError(f"{msg}. Re-export or re-copy the movie, or track a range without it "
                                   f"(video.on_damage=warn tracks through the damage)")
        if frame_number not in self.damaged:
            self.damaged.append(frame_number)
            log.warning("%s; tracking on (video.on_damage=warn)", msg)

    @property
    def label(self) -> str:
        return str(self.path)

    def _count_packets(self) -> int:
        """Containers without a frame count (e.g. MKV): read packet timestamps (no decoding)."""
        self._container.seek(self._start_pts, stream=self._stream, backward=True)
        last = -1
        for packet in self._container.demux(self._stream):
            if packet.size and packet.pts is not None:
                last = max(last, self._index_of_pts(packet.pts))
        self._seek(0)
        return last + 1

    def _data_is_float(self) -> bool:
        return False

    def _index_of_pts(self, pts: int) -> int:
        return round((pts - self._start_pts) * self._tb * self._rate)

    def _pts_of_index(self, index: int) -> int:
        return self._start_pts + round(Fraction(index) / (self._rate * self._tb))

    def _seek(self, index: int, back_seconds: float = 0.0) -> None:
        target = self._pts_of_index(index) - round(Fraction(back_seconds) / self._tb)
        self._container.seek(max(target, self._start_pts), stream=self._stream, backward=True)
        self._frames = self._container.decode(self._stream)
        self._pos = None
        self._tainted = False

    def _read_raw(self, frame_number: int) -> np.ndarray:
        index = frame_number - self._offset
        ahead = self._pos is not None and 0 < index - self._pos <= self.FORWARD_DECODE_LIMIT
        if not ahead:
            self._seek(index)
        # A seek lands on a keyframe at or before the target; if a container's index lands
        # after it (B-frames, edit lists), back off further and decode forward again.
        for back_seconds in (1.0, 4.0, 16.0, 1e9):
            rgb = self._decode_until(index, frame_number)
            if rgb is not None:
                return rgb
            self._seek(index, back_seconds)
        raise FrameSourceError(f"frame {frame_number} of {self.path} could not be located by seeking")

    def _decode_until(self, index: int, frame_number: int) -> np.ndarray | None:
        """Decode forward to ``index``; None when the decoder is already past it."""
        import av

        try:
            for frame in self._frames:
                got = self._index_of_pts(frame.pts) if frame.pts is not None else (self._pos or 0) + 1
                self._pos = got
                self._note_damage(frame)
                if got == index:
                    self._check_damage(frame_number)
                    return frame_to_rgb(frame)
                if got > index:
                    return None
        except av.FFmpegError as exc:
            self._pos = None  # the decoder is in an unknown state: the next read seeks afresh
            raise FrameSourceError(f"cannot decode frame {frame_number} of {self.path}: {exc}. The movie is "
                                   f"damaged: re-export or re-copy it, or track a range without it") from exc
        raise FrameSourceError(
            f"frame {frame_number} of {self.path} could not be decoded: the stream ends at frame "
            f"{self._offset + (self._pos or 0)} (the file may be truncated)"
        )

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "path": str(self.path), "codec": self._codec}

    def close(self) -> None:
        with self._lock:  # not while another thread decodes
            super().close()
            if self._container is not None:
                self._container.close()
                self._container = None


def frame_to_rgb(frame) -> np.ndarray:
    """A decoded video frame as (H, W, 3) RGB: uint8 for 8-bit video, uint16 for deeper."""
    fmt = frame.format
    deep = any(c.bits > 8 for c in fmt.components)
    target = "rgb48le" if deep else "rgb24"
    kwargs: dict[str, Any] = {}
    if not fmt.is_rgb and not fmt.name.startswith("gray"):
        # Untagged video: HD and larger is BT.709, SD is BT.601 (what players assume).
        colorspace = frame.colorspace if frame.colorspace in (1, 4, 5, 6, 7, 9) else (
            1 if frame.height >= 720 else 5)
        full = fmt.name.startswith("yuvj") or frame.color_range == 2
        kwargs = {"src_colorspace": 5 if colorspace == 6 else colorspace,
                  "src_color_range": 2 if full else 1, "dst_color_range": 2}
    rgb = frame.to_ndarray(format=target, **kwargs)
    return _as_rgb(rgb, "video frame")


# --- entry point ------------------------------------------------------------------------------

def open_frames(source: Any, *, first: int | str | None = None, last: int | None = None,
                color: Any = None, on_damage: str = "error", start: int | None = None) -> FrameSource:
    """Open frames from a video path, a sequence pattern (``%04d``/``####``/``@@@@``), one frame
    file of a sequence, a list of paths, or arrays.

    For sequences and numbered lists ``first``/``last`` choose a range of the frames on disk
    (every frame in it must exist). For movies, arrays and un-numbered lists ``first`` is the
    number of the first frame (default 0) and ``last`` cuts the end; a movie's ``first`` may be
    ``"timecode"`` (its start timecode as a frame count: 10:00:00:00 at 25 fps is 900000).
    ``on_damage``: what a movie frame the decoder found errors in does when read: ``"error"``
    (a FrameSourceError) or ``"warn"`` (logged, listed in ``source.damaged``). ``start``
    (movies): the first frame to use, in the movie's numbering (with ``last``: a range of it).
    """
    not_a_movie = FrameSourceError(
        f"first={first!r}: only movies are numbered by their timecode; give a frame number") \
        if isinstance(first, str) else None
    if isinstance(source, FrameSource):
        if first is not None or last is not None:
            raise FrameSourceError("first/last cannot be applied to an already open FrameSource")
        return source
    is_arrays = isinstance(source, np.ndarray) or (
        isinstance(source, (list, tuple)) and len(source) and isinstance(source[0], np.ndarray))
    text = os.fspath(source) if isinstance(source, (str, os.PathLike)) else ""
    if not_a_movie and (not text or Path(text).suffix.lower() in IMAGE_EXTENSIONS or "%" in text
                        or has_frame_token(text)):
        raise not_a_movie
    if is_arrays:
        frames = ArrayFrames(source, first=first or 0, color=color)
        if last is not None:
            frames = ArrayFrames(list(source)[: last - frames.first + 1], first=frames.first, color=color)
        return frames
    if isinstance(source, (list, tuple)):
        if not source:
            raise FrameSourceError("an empty list of frames")
        return _open_path_list(source, first, last, color)
    if not isinstance(source, (str, os.PathLike)):
        raise FrameSourceError(
            f"cannot open frames from a {type(source).__name__}: give a video path, a sequence "
            f"pattern (plate.%04d.exr), a list of paths, or arrays"
        )
    try:
        if has_frame_token(text) or "%" in os.path.basename(text):
            pattern = parse_pattern(text)
            if pattern is None:
                raise FrameSourceError(
                    f"{text!r} is not a valid sequence pattern: use %04d, #### or @@@@ for the frame number"
                )
            return _open_pattern(pattern, first, last, color)
    except SamrotoIOError as exc:
        if isinstance(exc, FrameSourceError):
            raise
        raise FrameSourceError(str(exc)) from exc
    path = Path(text)
    ext = path.suffix.lower()
    if path.is_dir():
        raise FrameSourceError(
            f"{path} is a directory: give a sequence pattern inside it, e.g. {path / 'plate.%04d.exr'}"
        )
    if ext in VIDEO_EXTENSIONS:
        if not path.is_file():
            raise FrameSourceError(f"video file {path} does not exist")
        return VideoFrames(path, first=first, last=last, color=color, on_damage=on_damage, start=start)
    numbered = pattern_from_frame_file(path)
    if numbered is not None and (path.is_file() or numbered[0].scan()):
        return _open_pattern(numbered[0], first, last, color)  # one frame of a sequence
    if not path.is_file():
        raise FrameSourceError(
            f"{path} does not exist. For an image sequence give a pattern (plate.%04d.exr, "
            f"plate.####.exr) or one existing frame of it"
        )
    if ext in IMAGE_EXTENSIONS:
        frames = ImageSequenceFrames({first or 0: path}, str(path), color)  # a single still
        return frames
    return VideoFrames(path, first=first, last=last, color=color, on_damage=on_damage, start=start)  # unknown: FFmpeg tries


def open_shot(source: Any, first: int | None = None, last: int | None = None, *,
              numbering: int | str | None = None, color: Any = None, on_damage: str = "error") -> FrameSource:
    """Frames ``first``..``last`` of a source as a shot, in the source's own numbering: a
    sequence's file numbers, a movie's frames numbered from ``numbering`` (default 0; a
    number or ``"timecode"``). None: from the start / to the end. The one way ``samroto
    track --range`` and the bridge's ``open_session`` open a shot, so both see the same
    frames. A range reaching outside a movie is refused, not clamped."""
    options = {"color": color, "on_damage": on_damage}
    text = os.fspath(source) if isinstance(source, (str, os.PathLike)) else ""
    is_movie = bool(text) and Path(text).suffix.lower() in VIDEO_EXTENSIONS
    numbered = {"first": numbering} if numbering not in (None, 0) else {}
    if not is_movie:
        if numbered:
            raise FrameSourceError(f"a first-frame number applies to movies; {text or 'this source'} is numbered "
                                   "by its file names")
        return open_frames(source, first=first, last=last, **options)
    frames = open_frames(source, **numbered, **options)
    if first is None and last is None:
        return frames
    lo = frames.first if first is None else int(first)
    hi = frames.last if last is None else int(last)
    outside = [n for n in (lo, hi) if not frames.first <= n <= frames.last]
    if outside or lo > hi:
        frames.close()
        what = f"frame {outside[0]} is not in it" if outside else f"{lo} comes after {hi}"
        raise FrameSourceError(f"{text}: frames {lo}-{hi}: {what} (frames {frames.first}-{frames.last}); "
                               "give a range inside it")
    if (lo, hi) == (frames.first, frames.last):
        return frames
    frames.close()  # a movie's numbering stays; start/last cut it
    return open_frames(source, **numbered, start=lo, last=hi, **options)
