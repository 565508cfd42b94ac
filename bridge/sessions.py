"""Bridge sessions: one shot's frame source, VideoSession and prompts, driven step by step.

Everything here runs on the work-queue thread (engine calls) except PushedFrames.put, which
the connection thread calls as frames arrive.
"""

from __future__ import annotations

import math
import os
import time
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from samroto.core.io import FrameSource, MatteWriter, open_shot
from samroto.core.io.errors import FrameSourceError, SamrotoIOError

from . import paths
from .protocol import MAX_LISTED_FRAMES, ProtocolError, _short, array_nbytes

if TYPE_CHECKING:  # torch is imported only when the first session opens
    from samroto.core.video import VideoSession

    from .connection import Connection

MAX_SOURCE_FRAMES = 1_000_000  # frames a session may span (pushed, or a sequence's first..last)
MAX_OBJECTS = 1024  # objects one session may track


class PushedFrames(FrameSource):
    """Frames the client sends (shared memory or inline), kept as received."""

    kind = "pushed"

    def __init__(self, first: int, last: int, width: int, height: int, color: Any = None):
        super().__init__(range(first, last + 1), width, height, None, color)
        self._frames: dict[int, np.ndarray] = {}
        self._is_float: bool | None = None

    @property
    def label(self) -> str:
        return f"frames sent by the client ({self.first}-{self.last})"

    def put(self, frame: int, pixels: np.ndarray) -> None:
        is_float = pixels.dtype.kind == "f"
        if self._is_float is not None and is_float != self._is_float:
            raise ProtocolError("bad_frame", f"frame {frame} is {pixels.dtype} but earlier frames were "
                                f"{'float' if self._is_float else 'integer'}: send every frame of a session "
                                "with one kind of dtype")
        self._is_float = is_float
        if pixels.dtype == np.float16:
            pixels = pixels.astype(np.float32)
        with self._lock:  # not while the tracker's reader thread is reading this frame
            self._frames[int(frame)] = pixels
            self._forget(frame)

    def has(self, frame: int) -> bool:
        return int(frame) in self._frames

    def _read_raw(self, frame_number: int) -> np.ndarray:
        try:
            return self._frames[frame_number]
        except KeyError:
            raise ProtocolError("bad_frame", f"frame {frame_number} has not been sent: put_frame it before "
                                "prompting or propagating over it") from None

    def _data_is_float(self) -> bool:
        return bool(self._is_float)


def frame_array(frames: FrameSource, frame: int, shape: Any, dtype: Any, data: memoryview,
                exact: bool = True) -> np.ndarray:
    """Check a sent frame against its session and return it as (H, W, 3) numpy (a copy).
    ``exact``: the data must be exactly the array (inline); a segment may be larger."""
    if not isinstance(shape, list) or len(shape) not in (2, 3):
        raise ProtocolError("bad_frame", f"shape must be [height, width, channels], got {shape!r}")
    nbytes = array_nbytes(shape, dtype)
    h, w = shape[0], shape[1]
    c = shape[2] if len(shape) == 3 else 1
    if (w, h) != (frames.width, frames.height):
        raise ProtocolError("bad_frame", f"frame {frame} is {w}x{h}, the session is {frames.width}x{frames.height}")
    if c not in (3, 4):
        raise ProtocolError("bad_frame", f"frame {frame} has {c} channel(s); send RGB or RGBA")
    if len(data) < nbytes:
        raise ProtocolError("bad_frame", f"frame {frame}: {shape} {dtype} needs {nbytes} bytes, got {len(data)}")
    if len(data) > nbytes and exact:
        raise ProtocolError("bad_frame", f"frame {frame}: {shape} {dtype} needs {nbytes} bytes, got {len(data)}")
    wire = {"uint8": "u1", "uint16": "<u2", "float16": "<f2", "float32": "<f4"}[dtype]
    pixels = np.frombuffer(data, dtype=wire, count=h * w * c).reshape(h, w, c)[:, :, :3]
    # a shared-memory segment is the client's and is reused: copy out of it; an inline payload
    # is ours already (a fresh buffer per message), so keep it unless RGBA needs compacting
    pixels = np.array(pixels, dtype=pixels.dtype.newbyteorder("="), order="C", copy=not exact or c != 3)
    if pixels.dtype.kind == "f" and not np.isfinite(pixels).all():
        raise ProtocolError("bad_frame", f"frame {frame} has NaN or infinite pixels")
    return pixels


class BridgeSession:
    """One shot: its frames, its VideoSession and the names and frames of its prompts."""

    def __init__(self, sid: str, owner: Connection, frames: FrameSource, engine: VideoSession, options: dict):
        self.id = sid
        self.owner = owner
        self.frames = frames
        self.engine = engine
        self.options = options
        self.names: dict[int, str] = {}  # object id -> name, from the prompts
        self.prompted: set[int] = set()  # frame numbers with prompts
        self.prompt_sets: list = []  # every prompt set added, in order (the mattes' provenance)
        self.last_used = time.monotonic()
        self.closed = False
        self.closing: str | None = None  # why, once it is being closed (requests naming it are refused)
        self.shm_prefix = f"srb_{sid}_"  # frame segments its client names so are removed with it

    def touch(self) -> None:
        self.last_used = time.monotonic()

    def describe(self) -> dict:
        """The open_session reply. ``frame_numbers`` only up to MAX_LISTED_FRAMES frames (a
        reply stays far below the header cap); ``count`` and ``contiguous`` always, and the
        ``frame_numbers`` op pages through a longer list."""
        numbers = self.frames.frame_numbers
        first, last = self.frames.first, self.frames.last
        reply = {"session": self.id, "first": first, "last": last, "count": len(numbers),
                 "contiguous": last - first + 1 == len(numbers), "width": self.frames.width,
                 "height": self.frames.height, "objects": [{"id": i, "name": n} for i, n in self.names.items()],
                 "shm_prefix": self.shm_prefix}
        if len(numbers) <= MAX_LISTED_FRAMES:
            reply["frame_numbers"] = list(numbers)
        return reply

    def frame_page(self, offset: Any, limit: Any) -> dict:
        """The ``frame_numbers`` op: ``limit`` (at most MAX_LISTED_FRAMES) numbers from ``offset``."""
        for name, value in (("offset", offset), ("limit", limit)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ProtocolError("bad_request", f"{name} must be a whole number >= 0, got {_short(value)}")
        offset = offset or 0
        limit = MAX_LISTED_FRAMES if limit is None else min(limit, MAX_LISTED_FRAMES)
        numbers = self.frames.frame_numbers
        return {"offset": offset, "count": len(numbers), "frame_numbers": list(numbers[offset:offset + limit])}

    def position(self, frame: Any, what: str = "frame") -> int:
        if isinstance(frame, bool) or not isinstance(frame, int):
            raise ProtocolError("bad_request", f"{what} must be a whole frame number, got {frame!r}")
        try:
            return self.frames.index_of(frame)
        except FrameSourceError as exc:
            raise ProtocolError("frame_out_of_range", f"{what}: {exc}") from None

    def objects(self, obj_ids) -> list[dict]:
        return [{"id": int(i), "name": self.names.get(int(i), f"obj{int(i)}")} for i in obj_ids]

    # -- engine work (generators: one step per frame/prompt) ------------------------------
    def add_prompts(self, prompt_set, emit) -> Iterator[None]:
        """Apply every prompt in frame order (core.shot.apply_prompts); ``emit(frame, obj_ids,
        logits)`` with the low-res logits after each frame."""
        from samroto.core.shot import MaskPromptError, apply_prompts

        self.prompt_sets.append(prompt_set)
        for obj in prompt_set.objects:
            self.names[obj.id] = obj.name
        try:
            for frame, obj_ids, logits in apply_prompts(self.engine, prompt_set, self.frames, low_res=True):
                self.prompted.add(frame)
                emit(frame, obj_ids, logits)
                yield
        except MaskPromptError as exc:
            raise ProtocolError("bad_prompts", str(exc)) from None

    def prompt_frame(self, prompt_set, emit) -> Iterator[None]:
        """One object's prompt on one frame (core.shot.prompt_frame): ``emit(frame, obj_ids,
        logits)`` with that frame's low-res logits at once; returns the FramePrompt."""
        from samroto.core.shot import MaskPromptError, prompt_frame

        obj = prompt_set.objects[0]
        self.names.setdefault(obj.id, obj.name)
        try:
            got = prompt_frame(self.engine, prompt_set, self.frames)
        except MaskPromptError as exc:
            raise ProtocolError("bad_prompts", str(exc)) from None
        finally:
            if obj.id not in self.engine.obj_ids and obj.id in self.names:
                self.names.pop(obj.id)
        self.names[obj.id] = obj.name
        self.prompted.add(got.frame)
        self.prompt_sets.append(prompt_set)
        emit(got.frame, got.obj_ids, got.logits)
        self.touch()
        yield
        return got

    def choose_candidate(self, frame: int, obj_id: int, index: int, mask_path: str | None, emit) -> Iterator[None]:
        """Candidate ``index`` of the object's single click on ``frame`` becomes that frame's
        mask prompt (core.shot.choose_candidate), written to ``mask_path`` when given; ``emit``
        as prompt_frame. Returns (obj_ids, mask path or None)."""
        from samroto.core.prompts import ObjectPrompts, Prompt, PromptSet
        from samroto.core.shot import MaskPromptError, choose_candidate

        if obj_id not in self.engine.obj_ids:
            raise ProtocolError("unknown_object", f"no object {obj_id!r} in session {self.id}; objects: "
                                f"{self.engine.obj_ids}")
        try:
            obj_ids, logits, _ = choose_candidate(self.engine, self.frames, frame, obj_id, index, mask_path)
        except ValueError as exc:  # no candidates there, or no such candidate
            raise ProtocolError("bad_request", f"object {obj_id}, frame {frame}: {exc}") from None
        except (MaskPromptError, OSError) as exc:
            raise ProtocolError("io_error", f"writing the chosen mask {mask_path}: {exc}") from None
        self.prompted.add(frame)
        if mask_path is not None:  # the mattes' provenance names the mask prompt
            name = self.names.get(obj_id, f"obj{obj_id}")
            self.prompt_sets.append(PromptSet([ObjectPrompts(obj_id, name, [Prompt(frame, mask=mask_path)])]))
        emit(frame, obj_ids, logits)
        self.touch()
        yield
        return obj_ids, mask_path

    def clear(self, obj_id: Any = None) -> None:
        if obj_id is None:
            self.engine.reset()
            self.names.clear()
            self.prompted.clear()
            self.prompt_sets.clear()
            return
        if isinstance(obj_id, bool) or not isinstance(obj_id, int) or obj_id not in self.engine.obj_ids:
            raise ProtocolError("unknown_object", f"no object {obj_id!r} in session {self.id}; objects: "
                                f"{self.engine.obj_ids}")
        self.engine.remove_object(obj_id)
        self.names.pop(obj_id, None)

    def plan(self, direction: str, start: Any, first: Any, last: Any) -> list:
        """The passes of a propagate request (core.shot.plan_passes: the one start-frame rule)."""
        from samroto.core.shot import RangeError, plan_passes
        from samroto.core.video.passes import DIRECTIONS

        if direction not in DIRECTIONS:
            raise ProtocolError("bad_request", f"direction must be forward, backward or both, not {direction!r}")
        if not self.engine.obj_ids:
            raise ProtocolError("bad_request", "nothing to track: add prompts first")
        positions = {name: None if value is None else self.position(value, name)
                     for name, value in (("start", start), ("first", first), ("last", last))}
        try:
            return plan_passes(len(self.frames), sorted(self.position(f) for f in self.prompted), direction,
                               **positions)
        except RangeError as exc:
            raise ProtocolError("frame_out_of_range" if positions["start"] is not None else "bad_request",
                                str(exc)) from None

    def propagate(self, passes, emit, progress, finisher=None, values="alpha") -> Iterator[None]:
        """Run the passes (core.shot.track): ``emit(FrameMattes)`` and ``progress(done, total,
        frame)`` per frame, one work-queue step each."""
        from samroto.core.shot import track

        result = None
        for result in track(self.engine, self.frames, passes, finisher=finisher, values=values):
            emit(result)
            progress(result.done, result.total, result.frame)
            self.touch()
            yield
        return {"frames": 0 if result is None else result.done}


def encode_alpha(alpha: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "float32":
        return np.ascontiguousarray(alpha, dtype="<f4")
    if dtype == "uint8":
        return np.ascontiguousarray(np.round(alpha * 255.0), dtype=np.uint8)
    if dtype == "float16":
        return np.ascontiguousarray(alpha, dtype="<f2")
    raise ProtocolError("bad_request", f"matte dtype must be float32, float16 or uint8, not {dtype!r}")


def check_matte_spec(spec: Any, write_roots: list[str] | None) -> None:
    """A file matte spec's pattern, at request time: a name a file system can hold, in a
    folder the bridge may write (bridge/paths.py)."""
    pattern = spec.get("pattern")
    if not isinstance(pattern, str) or not pattern:
        raise ProtocolError("bad_request", "mattes with transport 'file' need a 'pattern' such as "
                            "/shots/a/mattes/hero.%04d.exr")
    paths.check_write_pattern(pattern, write_roots)


def matte_writer(spec: dict, names: list[str], write_roots: list[str] | None = None, plate=None,
                 metadata: dict | None = None) -> MatteWriter:
    check_matte_spec(spec, write_roots)
    kwargs = {k: spec[k] for k in ("format", "layout", "compression", "bit_depth") if spec.get(k) is not None}
    try:
        return MatteWriter(spec["pattern"], names=names, make_dirs=True, plate=plate, metadata=metadata, **kwargs)
    except SamrotoIOError as exc:
        raise ProtocolError("io_error", str(exc)) from None
    except OSError as exc:  # creating its folder: a name too long, no permission, a full disk
        raise ProtocolError("io_error", f"mattes.pattern: {exc.strerror or exc}") from None
    except TypeError as exc:
        raise ProtocolError("bad_request", f"matte file options: {exc}") from None


def open_source(source: Any, color: Any, max_payload: int | None = None,
                read_roots: list[str] | None = None) -> FrameSource:
    """A FrameSource for an open_session ``source`` field. ``max_payload``: the largest frame
    a client may send (a pushed source whose smallest frame is larger is refused);
    ``read_roots``: the folders its files must be in (None: anywhere)."""
    if not isinstance(source, dict):
        raise ProtocolError("bad_request", "source must be an object: {\"path\": ...} or {\"push\": true, ...}")
    first, last = source.get("first"), source.get("last")
    for name, value in (("first", first), ("last", last)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ProtocolError("bad_request", f"source.{name} must be a whole frame number, got {_short(value)}")
    if source.get("push"):
        width, height = source.get("width"), source.get("height")
        for name, value in (("width", width), ("height", height)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 1 << 15:
                raise ProtocolError("bad_request", f"source.{name} must be a size in pixels, got {_short(value)}")
        if first is None or last is None or last < first:
            raise ProtocolError("bad_request", "a pushed source needs first <= last (the shot's frame numbers)")
        _check_span(first, last)
        smallest = width * height * 3  # uint8 RGB
        if max_payload is not None and smallest > max_payload:
            raise ProtocolError("too_large", f"a {width}x{height} frame is {smallest} bytes even as 8-bit RGB, more "
                                f"than this bridge takes ({max_payload} bytes, setting bridge.max_payload_mb)")
        return PushedFrames(first, last, width, height, color)
    path = source.get("path")
    if not (isinstance(path, str) and path) and not (isinstance(path, list) and path and
                                                     all(isinstance(p, str) and p for p in path)):
        raise ProtocolError("bad_request", "source.path must be a video file, a sequence pattern "
                            "(plate.%04d.exr) or a list of file paths")
    for p in path if isinstance(path, list) else [path]:
        paths.check_length(p, "source.path")
    paths.check_read(path if isinstance(path, list) else [path], read_roots, "source.path")
    try:
        files = _source_files(path, first, last)
        paths.check_read(files, read_roots, "source.path")
        return open_shot(path, first, last, color=color)  # as `samroto track --range` opens it
    except SamrotoIOError as exc:
        raise ProtocolError("io_error", str(exc)) from None
    except OSError as exc:  # what core does not turn into its own errors (a name too long, a loop of links)
        raise ProtocolError("io_error", f"source.path: {exc.strerror or exc}") from None


def _check_span(first: int, last: int) -> None:
    if last - first + 1 > MAX_SOURCE_FRAMES:
        raise ProtocolError("bad_request", f"frames {first}-{last} are {last - first + 1} frames; a session spans "
                            f"at most {MAX_SOURCE_FRAMES}: open the part of the shot you track")


def _source_files(path: str | list[str], first: int | None, last: int | None) -> list[str]:
    """The frame files a path source names, as core's open_frames will choose them, for the
    span and read-roots checks before core reads anything (a movie: itself)."""
    from samroto.core.io.frames import VIDEO_EXTENSIONS
    from samroto.core.io.patterns import has_frame_token, parse_pattern, pattern_from_frame_file

    if isinstance(path, list):
        numbered = [pattern_from_frame_file(p) for p in path]
        numbers = [n[1] for n in numbered if n is not None]
        if numbers and len(numbers) == len(path) and len(set(numbers)) == len(numbers):
            _check_span(min(numbers) if first is None else first, max(numbers) if last is None else last)
        return list(path)
    if has_frame_token(path) or "%" in os.path.basename(path):
        pattern = parse_pattern(path)
    elif os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS:
        return [path]
    else:
        numbered = pattern_from_frame_file(path)
        pattern = numbered[0] if numbered is not None else None
    if pattern is None:
        return [path]  # core says what is wrong with it
    found = pattern.scan()
    if not found:
        return [path]
    lo = found[0] if first is None else first
    hi = found[-1] if last is None else last
    _check_span(lo, hi)
    return [str(pattern.path(n)) for n in found if lo <= n <= hi]


MAX_PROMPT_NUMBER = 2 ** 53  # ids, frame numbers and coordinates: exact as JSON numbers everywhere


def check_prompt_numbers(raw: Any) -> None:
    """bad_prompts for a number in a prompts document that no prompt can hold: NaN, an
    infinity (JSON's 1e400 reads as one) or beyond +-2**53. Core's schema checks come after.
    (Its own check of ids and frame numbers should refuse non-finite ones as PromptError too.)"""
    stack = [(raw, "prompts")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, dict):
            stack.extend((v, f"{where}.{_short(k, 40)}") for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value) or \
                isinstance(value, (int, float)) and not isinstance(value, bool) and \
                not -MAX_PROMPT_NUMBER <= value <= MAX_PROMPT_NUMBER:
            raise ProtocolError("bad_prompts", f"{where}: {_short(value)} is not a number a prompt can hold (finite, "
                                f"at most {MAX_PROMPT_NUMBER} in size)")


def check_new_prompts(session: BridgeSession, prompt_set: Any, read_roots: list[str] | None) -> None:
    """What core's schema does not cover: the session's object count, and the mask prompts'
    files (names a file system can hold, inside the read roots)."""
    ids = set(session.names) | {o.id for o in prompt_set.objects}
    if len(ids) > MAX_OBJECTS:
        raise ProtocolError("bad_prompts", f"{len(ids)} objects in one session; the most is {MAX_OBJECTS}")
    masks = [prompt_set.mask_path(p) for o in prompt_set.objects for p in o.prompts if p.mask is not None]
    for mask in masks:
        paths.check_length(mask, "prompts: mask")
    paths.check_read(masks, read_roots, "prompts: mask")
