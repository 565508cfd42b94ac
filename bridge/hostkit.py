"""samroto host kit: what the Nuke, Resolve and Blender plugins do the same way.

Standard library only, Python 3.7+, like the client it sits beside: ``samroto install``
copies ``client.py``, ``protocol.py`` and this file into each plugin's ``vendor/``, so it
imports inside the hosts' own Pythons (no numpy, no torch). Nothing here touches a host;
a plugin keeps only what its host alone can do: collect prompts where the artist draws,
hand over frames, show progress, put the mattes where its artists expect them.

- ``connect``: the running bridge, or one started with samroto's Python; on failure a
  ``HostError`` whose message is what the artist should read (what went wrong, what to set).
- ``TrackingJob``: one ``Shot`` tracked on the bridge in a background thread; the host's
  timer calls ``poll()`` and gets typed events: ``Progress``, ``Matte``, then one of
  ``Done``, ``Cancelled``, ``Error``. ``shot_frames`` and ``prompts_within``: which frames a
  Track started on the current frame covers, and the prompts on them (the shot the bridge
  opens is those frames alone, as ``samroto track --range`` opens them). ``lost_frames`` /
  ``next_lost``: the frames where SAM 2's object score (``TrackingJob.scores``) says an
  object was lost, for review.
- ``LiveSession``: the interactive loop on one clip: a prompt on a frame answered with
  that frame's matte at once (``FramePreview``: the matte files, SAM 2's three candidates
  for a single click, whether the image encoder ran), a candidate chosen as the frame's
  mask prompt; ``segment``: SAM 2's automatic masks on a frame (``AutoMask``), ``mask_at``
  the one under a click, ``prompts_from_masks`` the chosen ones as objects' mask prompts.
  ``Debouncer`` / ``LatestWins``: a drag's many updates become a few requests,
  the newest winning.
- ``prompts_document``: the prompts JSON (docs/prompts.md) from points, boxes and masks.
- ``export_shapes``: animated spline shapes fitted to matte sequences, written for a host
  (Nuke .nk, Blender mask JSON, Fusion .setting) by samroto's Python
  (``python -m samroto.core.splines.export``), since the fitting needs numpy and OpenCV.
- frame patterns: ``%04d`` / ``####`` / ``@@@@`` tokens, one frame's file, the pattern of a
  numbered file or of a matte path the bridge reported, the frames on disk.
"""

import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

try:  # inside the samroto package, or vendored beside the client in a plugin
    from . import client
except ImportError:  # copied next to client.py as a top-level module
    import client  # type: ignore

PROMPTS_VERSION = 1  # the prompts JSON schema written here (samroto.core.prompts.SCHEMA_VERSION)
PYTHON_ENV = "SAMROTO_PYTHON"


class HostError(Exception):
    """Something the artist has to act on; the message says what went wrong and what to do.
    ``code``: the bridge's error code when the bridge reported it, else a kit code."""

    def __init__(self, message, code="host"):
        Exception.__init__(self, message)
        self.message = message
        self.code = code


# --- the bridge ---------------------------------------------------------------------------------

def samroto_python(setting=None, installed=None):
    """The Python that has samroto installed: the host's own setting, else $SAMROTO_PYTHON,
    else the one ``samroto install`` recorded; "" when none is known."""
    for value in (setting, os.environ.get(PYTHON_ENV), installed):
        if value and str(value).strip():
            return str(value).strip()
    return ""


def installed_python(package):
    """The Python recorded in ``<package>/_installed.py`` by ``samroto install``, or ""."""
    try:
        return __import__(package + "._installed", fromlist=["PYTHON"]).PYTHON
    except (ImportError, AttributeError):
        return ""


def serve_args(model=None, checkpoint=None, device=None):
    """``samroto serve`` flags for a bridge a host starts: its model, checkpoint and device."""
    args = []
    for flag, value in (("--model", model), ("--checkpoint", checkpoint)):
        if value:
            args += [flag, str(value)]
    if device and device != "auto":
        args += ["--device", str(device)]
    return args


def connect(python=None, config_dir=None, serve_args=(), name="samroto-host",
            how_to_set="set SAMROTO_PYTHON to it", timeout=120.0):
    """A connected ``client.Client``: the bridge whose discovery file is in ``config_dir``
    (default: the user config dir), else one started with ``python -m samroto serve``
    (detached; ``serve_args`` added). ``how_to_set``: where this host's artist sets
    samroto's Python, as an instruction ("set it in Preferences > Add-ons > samroto").
    Raises HostError with the message the artist should see."""
    config_dir = config_dir or None
    try:
        return client.Client.connect(start=False, config_dir=config_dir, name=name)
    except client.NotRunning as exc:
        not_running = exc  # start it below
    except client.BridgeError as exc:
        raise HostError("The samroto bridge refused the connection: %s" % exc, exc.code)
    except OSError as exc:
        raise HostError("Cannot reach the samroto bridge: %s" % exc, "io_error")
    if not python:
        raise HostError("The samroto bridge is not running and no samroto Python is set: %s, or run "
                        "`samroto serve`. (No live %s.)" % (how_to_set, client.protocol.discovery_path(config_dir)),
                        not_running.code)
    if not (os.path.isfile(python) or shutil.which(python)):
        raise HostError("The samroto Python %s does not exist: %s (the Python where samroto is "
                        "installed)." % (python, how_to_set), "bad_python")
    try:
        return client.Client.connect(python=python, config_dir=config_dir, serve_args=list(serve_args),
                                     name=name, timeout=timeout)
    except client.BridgeError as exc:
        raise HostError("Cannot start the samroto bridge with %s: %s" % (python, exc), exc.code)
    except OSError as exc:
        raise HostError("Cannot start the samroto bridge with %s: %s" % (python, exc), "io_error")


def describe(**how):
    """One line about the bridge (for a host's "check bridge" button): connects (starting it
    when needed) with ``connect(**how)``, asks its status, disconnects."""
    bridge = connect(**how)
    try:
        status = bridge.status()
    except client.BridgeError as exc:
        raise HostError("The samroto bridge did not answer: %s" % exc, exc.code)
    finally:
        bridge.close()
    keep = ("version", "model", "device", "sessions", "pid")
    details = ", ".join("%s %s" % (k, status[k]) for k in keep if k in status)
    return "samroto bridge is running" + (": " + details if details else "")


# --- tracking -----------------------------------------------------------------------------------

@dataclass
class Shot:
    """One tracking request. Frame numbers are the source's own. ``first``..``last`` is the
    shot: the bridge opens those frames alone (as ``samroto track --range first-last`` does),
    so every prompt must lie on them (``prompts_within``)."""

    source: Any                         # a movie path, a sequence pattern, or a list of paths
    prompts: dict                       # a prompts document (prompts_document)
    first: int                          # the frames to track, inclusive
    last: int
    mattes: Optional[dict] = None       # where mattes go (file_mattes(...)); None: progress only
    direction: str = "both"             # forward, backward or both
    start: Optional[int] = None         # None: the one rule (docs/video.md), as samroto track
    color: Any = None                   # the source's colour setting (docs/io.md)
    model: Optional[str] = None         # None: the bridge's model
    options: dict = field(default_factory=dict)

    def expected_frames(self):
        """How many frames the bridge will track (its Progress events say it exactly)."""
        first, last, start = self.first, self.last, self.start
        if start is None or self.direction == "both":
            return max(1, last - first + 1)
        return max(1, last - start + 1 if self.direction == "forward" else start - first + 1)


COVERS = {"forward": "forward from the current frame to the end of the range",
          "backward": "from the start of the range back to the current frame",
          "both": "the whole range", "frame": "the current frame alone"}


def shot_frames(direction, first, last, current):
    """The frames a Track started on frame ``current`` covers, of the host's range
    ``first``..``last`` (``COVERS`` says it in words): ``forward`` from the current frame to
    the end of the range, ``backward`` from the start of the range to the current frame,
    ``both`` the whole range, ``frame`` the current frame alone (``current`` is clamped
    into the range). Where each pass starts inside them is the one rule (docs/video.md),
    the same as ``samroto track --range A-B --direction D``."""
    first, last = int(first), int(last)
    current = min(max(int(current), first), last)
    if direction == "frame":
        return current, current
    if direction == "forward":
        return current, last
    if direction == "backward":
        return first, current
    return first, last


def prompts_within(document, first, last, direction="both"):
    """``document`` with only the prompts on frames ``first``..``last`` (the shot the bridge
    opens is those frames alone); objects left without one are left out (their prompts stay
    in the host's scene). Raises HostError when no prompt is left, naming the frames a
    ``direction`` Track covers."""
    objects = []
    for obj in document["objects"]:
        kept = [p for p in obj["prompts"] if first <= p["frame"] <= last]
        if kept:
            objects.append(dict(obj, prompts=kept))
    if not objects:
        frames = "frame %d" % first if first == last else "frames %d-%d" % (first, last)
        raise HostError("No prompt on %s, which this Track covers (%s): add one there, or go to a "
                        "prompted frame and track from it." % (frames, COVERS.get(direction, "")), "no_prompts")
    return dict(document, objects=objects)


def file_mattes(pattern, format="exr"):
    """The matte output for ``pattern`` (a frame token, ``{name}`` for the object): one file
    per object and frame, written by the bridge."""
    return {"transport": "file", "pattern": pattern, "layout": "files", "format": format}


@dataclass(frozen=True)
class Progress:
    """The bridge finished ``done`` of ``total`` frames; the last one was ``frame``."""
    done: int
    total: int
    frame: Optional[int]


@dataclass(frozen=True)
class Matte:
    """One frame's mattes: ``paths[i]`` holds ``objects[i]`` (``{"id", "name"}``)."""
    frame: int
    objects: List[dict]
    paths: List[str]

    def by_id(self):
        return {o.get("id"): p for o, p in zip(self.objects, self.paths)}

    def scores(self):
        """SAM 2's object score per object id on this frame (a logit; <= 0: lost), where the
        bridge sent one (protocol 1.3)."""
        return {o.get("id"): o["score"] for o in self.objects if o.get("score") is not None}


@dataclass(frozen=True)
class Done:
    """Tracking ended: ``frames`` got mattes; ``patterns``: object id -> its matte sequence."""
    frames: Tuple[int, ...] = ()
    patterns: Dict[Any, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Cancelled:
    """The artist cancelled; the mattes of ``frames`` are kept."""
    frames: Tuple[int, ...] = ()
    patterns: Dict[Any, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Error:
    """Tracking failed: ``message`` is for the artist, ``code`` the bridge's (or the kit's)."""
    code: str
    message: str


RUNNING, DONE, CANCELLED, FAILED = "running", "done", "cancelled", "error"


class WorkerJob(object):
    """A host's long job on a daemon thread (``client.BackgroundJob``), so the host's own
    thread never waits: ``start()``, ``cancel()``, and ``poll()`` from the host's timer (it
    never blocks); ``state`` (running, done, cancelled, error), ``done``/``total`` and their
    ``fraction`` for a progress bar; ``wait()`` blocks (scripts, tests)."""

    def __init__(self, work, what, name):
        self.state = RUNNING
        self.done = 0
        self.total = 0
        self._worker = client.BackgroundJob(work, known_errors=(HostError,), what=what, name=name)

    def start(self):
        self._worker.start()
        return self

    def cancel(self):
        self._worker.cancel()

    @property
    def running(self):
        return self.state == RUNNING

    @property
    def fraction(self):
        return min(1.0, float(self.done) / max(1, self.total))

    def poll(self):
        raise NotImplementedError

    def wait(self, timeout=None):
        """Block until the work ends (or ``timeout``); then ``poll()``."""
        self._worker.join(timeout)
        return self.poll()


class ProgressJob(WorkerJob):
    """``work(progress, cancelled)`` on a worker thread: it calls ``progress(done, total)`` as
    it goes and stops when ``cancelled`` (a threading.Event) is set; a HostError with code
    "cancelled" counts as a cancel. After ``poll()``: ``result`` is what ``work`` returned
    once it is done; ``message`` says why it is not (cancelled, or the error) and is ""
    otherwise. E.g. ``LiveSession.segment`` for a host's "segment everything" button."""

    def __init__(self, work, what="The job", name="samroto-job"):
        self.result = None
        self.message = ""
        self._what = what

        def run(emit, cancelled):
            try:
                emit(("result", work(lambda done, total: emit(("progress", done, total)), cancelled)))
            except HostError as exc:
                if exc.code != "cancelled":
                    raise
                return "cancelled"

        super(ProgressJob, self).__init__(run, what, name)

    def poll(self):
        """Apply what arrived since the last call; returns ``state``."""
        for event in self._worker.take():
            kind = event[0]
            if kind == "progress":
                self.done, self.total = event[1], event[2]
            elif kind == "result":
                self.result = event[1]
            elif kind == "done":
                self.state = DONE
            elif kind == "cancelled":
                self.state, self.result, self.message = CANCELLED, None, "%s cancelled." % self._what
            elif kind == "error":
                self.state, self.result, self.message = FAILED, None, event[1]
        return self.state


class TrackingJob(WorkerJob):
    """Track ``shot`` on the bridge in a daemon thread while the host's thread stays free.

    ``connect``: a zero-argument callable returning a connected client (e.g. a lambda calling
    ``connect(...)``); it runs in the worker thread. The host calls ``poll()`` from its timer
    (it never blocks) and handles the typed events it returns; ``cancel()`` stops the bridge
    within a frame. The job keeps ``state`` (running, done, cancelled, error), ``frames`` (those
    with mattes), ``patterns`` (object id -> matte sequence, written with the frame token of the
    requested pattern), ``done``/``total`` and, when it failed, ``error`` (an Error)."""

    def __init__(self, shot, connect, name="samroto-track"):
        super(TrackingJob, self).__init__(self._work, "Tracking", name)
        self.shot = shot
        self.frames = set()
        self.patterns = {}
        self.scores = {}  # object id -> {frame: SAM 2's object score there}
        self.total = shot.expected_frames()
        self.error = None
        self._connect = connect
        self._code = "internal"
        pattern = (shot.mattes or {}).get("pattern") if (shot.mattes or {}).get("transport") == "file" else None
        self._token = frame_token(pattern) if pattern else None

    def poll(self):
        """The events that arrived since the last call, oldest first, applied to the job."""
        events = []
        for item in self._worker.take():
            event = self._end(item) if isinstance(item, tuple) else item
            self._apply(event)
            events.append(event)
        return events

    def summary(self):
        """What happened, in one sentence ("" while running)."""
        count = len(self.frames)
        if self.state == DONE:
            return "Tracked %d frames." % count
        if self.state == CANCELLED:
            return "Cancelled after %d frames (those mattes are kept)." % count
        return self.error.message if self.error is not None else ""

    # -- worker thread: only the bridge, never the host -------------------------------------
    def _work(self, emit, cancelled):
        try:
            bridge = self._connect()
        except HostError as exc:
            self._code = exc.code
            raise
        shot = self.shot

        def on_event(event):
            if event.kind == "progress":
                emit(Progress(event.done, event.total, event.frame))
            elif event.kind == "matte" and event.matte is not None:
                emit(Matte(event.frame, [dict(o) for o in event.matte.objects], list(event.paths)))

        try:
            return bridge.track_shot(shot.source, shot.prompts, direction=shot.direction, start=shot.start,
                                     first=shot.first, last=shot.last, color=shot.color, model=shot.model,
                                     options=shot.options, mattes=shot.mattes, on_event=on_event,
                                     cancelled=cancelled)
        except client.BridgeError as exc:
            self._code = exc.code
            step = getattr(exc, "step", "")
            if step == "open":
                raise HostError("The bridge cannot open %s: %s" % (shot.source, exc), exc.code)
            if step == "prompts" or isinstance(exc, client.BadPrompts):
                raise HostError("The bridge rejected the prompts: %s" % exc, exc.code)
            raise HostError("Tracking failed on the bridge: %s" % exc, exc.code)
        finally:
            bridge.close()

    # -- host thread -------------------------------------------------------------------------
    def _end(self, item):
        """BackgroundJob's last tuple -> the typed event."""
        frames, patterns = tuple(sorted(self.frames)), dict(self.patterns)
        if item[0] == "done":
            return Done(frames, patterns)
        if item[0] == "cancelled":
            return Cancelled(frames, patterns)
        return Error(self._code, item[1])

    def _apply(self, event):
        if isinstance(event, Progress):
            self.done = max(self.done, event.done or 0)
            self.total = event.total or self.total
        elif isinstance(event, Matte):
            self.frames.add(event.frame)
            self.done = max(self.done, len(self.frames))
            for obj_id, path in event.by_id().items():
                self.patterns[obj_id] = pattern_from_path(path, event.frame, self._token) if self._token else path
            for obj_id, score in event.scores().items():
                self.scores.setdefault(obj_id, {})[event.frame] = score
        elif isinstance(event, Done):
            self.state = DONE
        elif isinstance(event, Cancelled):
            self.state = CANCELLED
        elif isinstance(event, Error):
            self.state, self.error = FAILED, event


def lost_frames(scores):
    """The frames where SAM 2's object score says the object was lost (score <= 0: occluded
    or gone, its mask empty), ascending; ``scores``: {frame: score} (TrackingJob.scores)."""
    return sorted(int(f) for f, score in scores.items() if score is not None and float(score) <= 0.0)


def next_lost(scores, current, forward=True):
    """The nearest frame after (``forward``) or before ``current`` where the object was lost,
    or None: for a host's "next/previous lost frame" review buttons."""
    frames = lost_frames(scores)
    later = [f for f in frames if (f > current if forward else f < current)]
    if not later:
        return None
    return later[0] if forward else later[-1]


# --- the interactive loop -----------------------------------------------------------------------

@dataclass(frozen=True)
class Candidate:
    """One of SAM 2's masks for a single click: ``index`` 0..2 (show it as index + 1),
    its predicted IoU and the file the bridge wrote it to."""
    index: int
    iou: float
    path: Optional[str] = None


@dataclass(frozen=True)
class FramePreview:
    """A prompt's answer: the frame's mattes (``paths`` by object id), SAM 2's candidates
    for the prompted object (empty unless the prompt was a single click), the one its
    matte is (``best``), whether the image encoder ran (``encoded``: False when the frame's
    features were cached) and the session's ``encoder_runs`` so far."""
    frame: int
    object_id: int
    paths: Dict[Any, str] = field(default_factory=dict)
    candidates: Tuple[Candidate, ...] = ()
    best: Optional[int] = None
    encoded: bool = False
    encoder_runs: int = 0
    correction: bool = False
    seconds: float = 0.0
    mask: Optional[str] = None  # choose(): the chosen candidate's mask file (the frame's prompt)


@dataclass(frozen=True)
class AutoMask:
    """One of SAM 2's automatic masks on a frame (``LiveSession.segment``). ``index``: its
    number, 1 for the best (as the overlay picture labels it); ``bbox``: (x0, y0, x1, y1)
    pixel edges around its pixels (source pixels, origin top-left, y down; x1, y1 one past
    the last column and row it covers); ``area`` in pixels; ``predicted_iou`` and
    ``stability_score`` as Meta's generator scores it; ``mask_path``: its PNG (8-bit, 255
    inside), a mask prompt as it is; ``point``: the grid click that found it."""
    index: int
    bbox: Tuple[float, float, float, float]
    area: int
    predicted_iou: float
    stability_score: float
    mask_path: Optional[str]
    frame: Optional[int] = None
    point: Optional[Tuple[float, float]] = None
    rle: Optional[dict] = field(default=None, repr=False, compare=False)

    def contains(self, x, y):
        """Whether source pixel (x, y) (y down) is in the mask: from its run lengths (the
        bridge's ``rle``: COCO's uncompressed counts, column by column, zeros first), or by
        its box alone when the bridge sent none."""
        x0, y0, x1, y1 = self.bbox
        if not (x0 <= x < x1 and y0 <= y < y1):
            return False
        if not self.rle:
            return True
        height, width = self.rle["size"]
        col, row = int(x), int(y)
        if not (0 <= col < width and 0 <= row < height):
            return False
        target, seen, inside = col * height + row, 0, False
        for count in self.rle["counts"]:
            seen += count
            if target < seen:
                return inside
            inside = not inside
        return False


class AutoMasks(list):
    """``LiveSession.segment``'s answer: the AutoMask list, with the ``frame``, the frame's
    ``width`` and ``height``, the ``overlay`` picture's path and the bridge's ``seconds``."""
    frame = None
    width = None
    height = None
    overlay = None
    seconds = 0.0


def auto_mask(entry, frame):
    """An AutoMask from an entry of the ``segment`` reply's listing (bbox x, y, w, h as Meta's
    generator gives it: w and h one less than the pixel span)."""
    x, y, w, h = (float(v) for v in entry["bbox"])
    point = entry.get("point")
    return AutoMask(int(entry["id"]), (x, y, x + w + 1.0, y + h + 1.0), int(entry["area"]),
                    float(entry["predicted_iou"]), float(entry["stability_score"]), entry.get("file"), frame,
                    tuple(float(v) for v in point) if point else None, entry.get("rle"))


def mask_at(masks, x, y, skip=()):
    """The AutoMask under source pixel (x, y): of those containing it, the smallest (the most
    specific object there), leaving out ``skip`` (indices) so a second click can reach the
    next larger one; None when no mask covers it."""
    under = [m for m in masks if m.index not in skip and m.contains(x, y)]
    return min(under, key=lambda m: (m.area, m.index)) if under else None


def prompts_from_masks(masks, frame, first_object_id=1, names=None):
    """Objects for ``prompts_document``, one per chosen AutoMask: object ``first_object_id``,
    ``first_object_id + 1``... whose prompt on ``frame`` is that mask's file. ``names``: one
    per mask (default ``obj<id>``). Raises HostError when a mask has no file."""
    names = list(names) if names is not None else []
    objects = []
    for i, mask in enumerate(masks):
        if not mask.mask_path:
            raise HostError("Automatic mask %d has no mask file: segment the frame again with mask files "
                            "(LiveSession.segment writes them)." % mask.index, "no_mask_file")
        obj_id = int(first_object_id) + i
        name = names[i] if i < len(names) and names[i] else "obj%d" % obj_id
        objects.append({"id": obj_id, "name": name, "masks": [(int(frame), mask.mask_path)]})
    return objects


class LiveSession(object):
    """The interactive loop on one clip: a bridge session kept open across clicks, so each
    frame's image features are computed once. ``connect``: a zero-argument callable giving a
    connected client; ``source``, ``first``, ``last``, ``color``: the clip, as for a Shot;
    ``folder``: where the preview mattes, the candidates and chosen masks are written.

    ``prompt(frame, object_id, name, prompt)`` sets an object's prompt on a frame afresh
    (``{"points": [[x, y]], "labels": [1]}``, a ``box``, or ``{"mask": path}``; source
    pixels) and returns a FramePreview at once (blocking: call it from a worker thread, e.g.
    through ``LatestWins``). ``choose(frame, object_id, index)`` makes candidate ``index``
    the frame's mask prompt and returns the FramePreview with ``mask``: the file the host
    stores as that frame's prompt (``prompts_document``'s ``masks``), so a Track, or any new
    session, uses it. A session the bridge lost (restart, eviction) is opened again on the
    next request.

    The previews are 8-bit uncompressed TIFFs (a 1080p one is written in about 20 ms, where
    a 16-bit PNG takes over 300). Their matte is SAM 2's own decision (``finish=False``: the
    fast default, what SAM 2's demo shows; the prompted frame's matte a Track writes is the
    same decision, finished), or finished with the bridge's ``finish.*`` settings
    (``finish=True``, or a dict of overrides): then a prompted frame's preview is what a
    Track writes there, at the cost of the plate-guided edge refinement on every click."""

    def __init__(self, connect, source, first, last, folder, color=None, model=None, options=None,
                 finish=False):
        self._connect = connect
        self.source, self.first, self.last = source, first, last
        self.folder, self.color, self.model, self.options = folder, color, model, options or {}
        self.finish = finish
        self._client = None
        self._session = None
        self._lock = threading.RLock()

    def key(self):
        """What the session was opened on: a host opens a new LiveSession when this changes."""
        return (str(self.source), self.first, self.last, repr(self.color), self.model)

    def _open(self):
        if self._session is None:
            if self._client is None:
                self._client = self._connect()
            try:
                self._session = self._client.open_session(source=self.source, first=self.first, last=self.last,
                                                          color=self.color, model=self.model, options=self.options)
            except client.BridgeError as exc:
                raise HostError("The bridge cannot open %s: %s" % (self.source, exc), exc.code)
        return self._session

    def _call(self, fn):
        """``fn(session)``, once more on a fresh session when the bridge lost this one."""
        with self._lock:
            for attempt in (0, 1):
                try:
                    return fn(self._open())
                except (client.UnknownSession, client.ConnectionLost, client.NotRunning) as exc:
                    self._drop()
                    if attempt:
                        raise HostError("The samroto bridge went away: %s" % exc, exc.code)
                except client.BridgeError as exc:
                    if isinstance(exc, client.BadPrompts):
                        raise HostError("The bridge rejected the prompt: %s" % exc, exc.code)
                    raise HostError("The bridge could not answer the prompt: %s" % exc, exc.code)

    def _outputs(self):
        tiff = {"transport": "file", "format": "tiff", "bit_depth": 8, "compression": "none", "layout": "files"}
        matte = dict(tiff, pattern=os.path.join(self.folder, "{name}.%04d.tif"))
        if self.finish is not True:
            matte["finish"] = self.finish if isinstance(self.finish, dict) else False
        return matte, dict(tiff, pattern=os.path.join(self.folder, "candidates", "{name}.%04d.tif"), finish=False)

    def prompt(self, frame, object_id, name, prompt):
        mattes, cands = self._outputs()
        t0 = time.time()
        reply, found, candidates = self._call(lambda s: s.prompt_frame(
            frame, object_id, prompt, name=name, mattes=mattes, candidates=cands))
        paths = {}
        for matte in found:
            paths.update(matte.by_id() if hasattr(matte, "by_id") else
                         {o.get("id"): p for o, p in zip(matte.objects, matte.paths or [])})
        files = list(candidates.paths or []) if candidates is not None else []
        listed = tuple(Candidate(c["index"], c["iou"], files[i] if i < len(files) else None)
                       for i, c in enumerate(reply.get("candidates") or []))
        return FramePreview(frame, object_id, paths, listed, reply.get("best"), bool(reply.get("encoded")),
                            int(reply.get("encoder_runs") or 0), bool(reply.get("correction")), time.time() - t0)

    def choose(self, frame, object_id, index, mask_path=None):
        """Candidate ``index`` of the object's single click on ``frame`` as that frame's mask
        prompt, written to ``mask_path`` (default: in ``folder``/masks)."""
        mattes, _ = self._outputs()
        mask_path = mask_path or os.path.join(self.folder, "masks", "%s.%d.candidate%d.png" % (object_id, frame,
                                                                                             index + 1))
        t0 = time.time()
        reply, found = self._call(lambda s: s.choose_candidate(frame, object_id, index, mask=mask_path,
                                                               mattes=mattes))
        paths = {}
        for matte in found:
            paths.update({o.get("id"): p for o, p in zip(matte.objects, matte.paths or [])})
        return FramePreview(frame, object_id, paths, (), index, False, int(reply.get("encoder_runs") or 0),
                            False, time.time() - t0, reply.get("mask"))

    def segment(self, frame, options=None, progress=None, cancelled=None):
        """SAM 2's automatic masks on ``frame`` ("segment everything", the bridge's ``segment``
        op), for the artist to pick objects from: an ``AutoMasks`` list of ``AutoMask``, best
        first, each mask written as a PNG (in ``folder``/auto) that is usable as it is as a
        mask prompt (``prompts_from_masks``), with its run lengths for ``mask_at``; the list's
        ``overlay`` is the frame with the masks tinted and numbered. ``options``: Meta's generator parameters (docs/automask.md);
        ``progress(done, total)``: after the image encoder and each round of decoder calls;
        ``cancelled``: a threading.Event or a zero-argument callable, which stops the bridge
        within one round (then HostError with code "cancelled"). Blocking: call it from a
        worker thread (or ``BackgroundJob``)."""
        folder = os.path.join(self.folder, "auto")
        masks = {"transport": "file", "folder": folder, "stem": "masks", "mask_files": True, "exr": False,
                 "overlay": True, "rle": True}

        def on_progress(event):
            if progress is not None:
                progress(int(event.get("done") or 0), int(event.get("total") or 0))

        def run(session):
            try:
                return session.segment(frame, options=options, masks=masks, on_progress=on_progress,
                                       cancelled=cancelled)
            except client.Cancelled:
                raise HostError("Segment Everything was cancelled on frame %s." % frame, "cancelled")
            except (client.UnknownSession, client.ConnectionLost, client.NotRunning):
                raise  # _call opens the session again once
            except client.BridgeError as exc:
                raise HostError("The bridge could not find the automatic masks on frame %s: %s" % (frame, exc),
                                exc.code)

        reply = self._call(run)
        found = AutoMasks(auto_mask(entry, frame) for entry in reply.get("masks") or ())
        found.frame, found.width, found.height = frame, reply.get("width"), reply.get("height")
        found.overlay = (reply.get("files") or {}).get("overlay")
        found.seconds = float(reply.get("seconds") or 0.0)
        return found

    def info(self):
        return self._call(lambda s: s.session_info())

    def _drop(self):
        self._session = None
        if self._client is not None:
            try:
                self._client.close()
            except Exception:  # noqa: BLE001 - it is being replaced anyway
                pass
            self._client = None

    def close(self):
        with self._lock:
            self._drop()


_NOTHING = object()


class Debouncer(object):
    """Newest wins, for a drag that moves a prompt many times a second: ``push(value)`` on
    every update; ``take()`` returns the value to send now, or ``None`` when nothing should
    go yet: a value goes at once when the last one went at least ``interval`` seconds ago
    and its request has finished (``done()``); meanwhile newer values replace the waiting
    one, so the last position of a drag always goes, and a drag of 30 updates a second costs
    about ``1 / interval`` requests a second (fewer when requests take longer). ``clock``:
    seconds (time.monotonic; tests give a fake one). ``pushed``/``sent`` count them."""

    def __init__(self, interval=0.25, clock=time.monotonic):
        self.interval = float(interval)
        self.clock = clock
        self._pending = _NOTHING
        self._last = None
        self.busy = False
        self.pushed = 0
        self.sent = 0

    def push(self, value):
        self._pending = value
        self.pushed += 1

    @property
    def waiting(self):
        return self._pending is not _NOTHING

    def wait_time(self):
        """Seconds until ``take()`` may give a value (None: nothing waits or one is in flight)."""
        if not self.waiting or self.busy:
            return None
        if self._last is None:
            return 0.0
        return max(0.0, self._last + self.interval - self.clock())

    def take(self):
        wait = self.wait_time()
        if wait is None or wait > 0:
            return None
        value, self._pending = self._pending, _NOTHING
        self._last = self.clock()
        self.busy = True
        self.sent += 1
        return value

    def done(self):
        """The request of the last value taken has finished."""
        self.busy = False


class LatestWins(object):
    """Runs ``work(value)`` in a daemon thread for the values a host pushes (a drag's
    updates), paced by a Debouncer: one request at a time, the newest value winning. The
    host's timer calls ``take()`` for ``(value, result)`` pairs (``result`` an exception when
    the work raised), oldest first. ``close()`` stops the thread."""

    def __init__(self, work, interval=0.25, clock=time.monotonic, name="samroto-live"):
        self.debouncer = Debouncer(interval, clock)
        self._work = work
        self._results = []
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def push(self, value):
        with self._wake:
            self.debouncer.push(value)
            self._wake.notify()

    @property
    def idle(self):
        with self._lock:
            return not self.debouncer.busy and not self.debouncer.waiting

    def take(self):
        with self._lock:
            out, self._results = self._results, []
        return out

    def wait_idle(self, timeout=None):
        """Block until every pushed value was handled or dropped (scripts, tests)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.idle:
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self):
        with self._wake:
            self._closed = True
            self._wake.notify()

    def _run(self):
        while True:
            with self._wake:
                while not self._closed:
                    value = self.debouncer.take()
                    if value is not None:
                        break
                    wait = self.debouncer.wait_time()
                    self._wake.wait(0.5 if wait is None else max(wait, 0.001))
                if self._closed:
                    return
            try:
                result = self._work(value)
            except Exception as exc:  # noqa: BLE001 - handed to the host, which shows it
                result = exc
            with self._wake:
                self._results.append((value, result))
                self.debouncer.done()


# --- spline shapes ------------------------------------------------------------------------------

EXPORT_MODULE = "samroto.core.splines.export"


def export_shapes(python, host, out, objects, options=(), how_to_set="set SAMROTO_PYTHON to it", timeout=600):
    """Fit animated spline shapes to matte sequences and write them for ``host`` ("nuke":
    a .nk Roto node, "blender": mask JSON, "fusion": a .setting) at ``out``, with samroto's
    Python (``python -m samroto.core.splines.export``: the fitting needs numpy, OpenCV and
    OpenImageIO, which a host's Python may lack). ``objects``: [(name, matte pattern)];
    ``options``: more exporter flags (``--name``, ``--tolerance``...). Returns ``out``.
    Raises HostError with what the artist should read (no samroto Python, no mattes, the
    exporter's own one-line reason)."""
    if not objects:
        raise HostError("There are no mattes to convert yet: Track first.", "no_mattes")
    if not python:
        raise HostError("samroto's Python is unknown, and the shapes are fitted there: %s." % how_to_set,
                        "no_python")
    if not (os.path.isfile(python) or shutil.which(python)):
        raise HostError("The samroto Python %s does not exist: %s (the Python where samroto is "
                        "installed)." % (python, how_to_set), "bad_python")
    cmd = [python, "-m", EXPORT_MODULE, "--host", host, str(out)]
    for name, pattern in objects:
        cmd += ["--object", "%s=%s" % (name, pattern)]
    cmd += [str(o) for o in options]
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                              timeout=timeout, creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
    except (OSError, subprocess.SubprocessError) as exc:
        raise HostError("Cannot run the samroto Python %s: %s" % (python, exc), "bad_python")
    if proc.returncode == 0 and os.path.isfile(str(out)):
        return out
    text = (proc.stderr or proc.stdout or "").strip()
    if "No module named 'samroto" in text:
        raise HostError("The Python %s has no samroto installed: %s." % (python, how_to_set), "bad_python")
    lines = text.splitlines()
    reason = lines[-1] if lines else "exit status %d" % proc.returncode
    raise HostError("Fitting the shapes failed: %s" % reason, "export_failed")


# --- prompts ------------------------------------------------------------------------------------

def prompts_document(objects):
    """The prompts JSON (docs/prompts.md) for ``objects``: dicts with ``id``, ``name``,
    ``points`` [(frame, x, y, positive)], ``boxes`` [(frame, x0, y0, x1, y1)] and ``masks``
    [(frame, path)], in source pixels (origin top-left, y down; a box's corners in either
    order; a mask file the plate's size).

    One entry per frame, frames ascending; a frame's points keep their order; of several
    boxes on one frame the last wins (SAM 2 takes one). A mask on a frame is that frame's
    whole prompt (a chosen candidate, a host's matte): points and boxes there stay in the
    host but are not sent. Objects without prompts are left out. Raises HostError when two
    objects share an id or would write the same matte files."""
    out, ids, names = [], set(), {}
    for obj in objects:
        frames = {}
        for frame, x, y, positive in obj.get("points", ()):
            entry = frames.setdefault(int(frame), {"frame": int(frame)})
            entry.setdefault("points", []).append([float(x), float(y)])
            entry.setdefault("labels", []).append(1 if positive else 0)
        for frame, x0, y0, x1, y1 in obj.get("boxes", ()):
            (x0, x1), (y0, y1) = sorted((float(x0), float(x1))), sorted((float(y0), float(y1)))
            frames.setdefault(int(frame), {"frame": int(frame)})["box"] = [x0, y0, x1, y1]
        for frame, path in obj.get("masks", ()):
            frames[int(frame)] = {"frame": int(frame), "mask": str(path)}
        if not frames:
            continue
        obj_id, name = int(obj["id"]), str(obj["name"])
        if obj_id in ids:
            raise HostError("Two objects have the id %d: give each object its own." % obj_id, "bad_prompts")
        ids.add(obj_id)
        key = matte_name(name)
        if key in names:
            other = names[key]
            if other == name:
                raise HostError("Two objects are called %s: give each object its own name." % name, "bad_prompts")
            raise HostError("Objects %r and %r would write the same matte files (%s): rename one."
                            % (other, name, key), "bad_prompts")
        names[key] = name
        out.append({"id": obj_id, "name": name, "prompts": [frames[f] for f in sorted(frames)]})
    return {"version": PROMPTS_VERSION, "objects": out}


def frame_prompt(document, object_id, frame):
    """The object's prompt on ``frame`` in a prompts document (without its ``frame``), as
    ``LiveSession.prompt`` takes it; None when it has none there."""
    for obj in document.get("objects", ()):
        if obj.get("id") == object_id:
            for entry in obj.get("prompts", ()):
                if entry.get("frame") == frame:
                    return {k: v for k, v in entry.items() if k != "frame"}
    return None


def matte_name(name):
    """An object name as the bridge writes it into file names (samroto.core.io.mattes.safe_name)."""
    text = re.sub(r"[^A-Za-z0-9_-]+", "_", str(name)).strip("_") or "obj"
    return text if text[0].isalpha() else "obj_" + text


def flip_y(x, y, height):
    """A point in pixels with y up (origin bottom-left, e.g. Nuke) <-> y down (and back)."""
    return float(x), float(height) - float(y)


def from_normalised(x, y, width, height):
    """Normalised coordinates (0..1, origin bottom-left, y up: Blender's clip space, Fusion)
    -> source pixels (origin top-left, y down)."""
    return float(x) * width, (1.0 - float(y)) * height


def to_normalised(px, py, width, height):
    """Source pixels -> normalised coordinates (the inverse of from_normalised)."""
    return float(px) / width, 1.0 - float(py) / height


# --- frame patterns -----------------------------------------------------------------------------

_TOKEN = re.compile(r"%0?(\d*)d|#+|@+")  # the frame-number token (as samroto.core.io.patterns)


def _split(path):
    cut = max(path.rfind("/"), path.rfind("\\")) + 1
    return path[:cut], path[cut:]


def frame_token(pattern):
    """The frame token in a pattern's file name (``%04d``, ``####``, ``@@@@``), or None."""
    m = _TOKEN.search(_split(str(pattern))[1])
    return m.group(0) if m else None


def _padding(token):
    return int(token[1:-1] or 1) if token.startswith("%") else len(token)


def frame_file(pattern, frame, name=None):
    """One frame's file: ``frame_file("m.####.exr", 1001)`` -> ``m.1001.exr`` (``%04d`` and
    ``@@@@`` too). ``{name}`` becomes ``matte_name(name)`` when a name is given."""
    pattern = str(pattern)
    if name is not None:
        pattern = object_pattern(pattern, name)
    folder, base = _split(pattern)
    m = _TOKEN.search(base)
    if m is None:
        return pattern
    digits = "%0*d" % (_padding(m.group(0)), int(frame))
    return folder + base[:m.start()] + digits + base[m.end():]


def object_pattern(pattern, name):
    """A matte pattern with ``{name}`` replaced the way the bridge replaces it."""
    return str(pattern).replace("{name}", matte_name(name))


def sequence_of_file(path, style="#"):
    """(pattern, frame) for one numbered file: the last run of digits in its name before the
    extension (Blender's rule) becomes a token of the same width, ``####`` (style "#") or
    ``%04d`` (style "%"): ``/x/plate.1001.exr`` -> (``/x/plate.####.exr``, 1001). None when
    the name holds no number."""
    folder, base = _split(str(path))
    stem, ext = os.path.splitext(base)
    runs = list(re.finditer(r"\d+", stem))
    if not runs:
        return None
    m = runs[-1]
    width = m.end() - m.start()
    token = "#" * width if style == "#" else "%0{}d".format(width)
    return folder + stem[:m.start()] + token + stem[m.end():] + ext, int(m.group(0))


def pattern_from_path(path, frame, token="%04d"):
    """A file the bridge reported for ``frame`` -> its sequence pattern: the last number in
    the file name equal to ``frame`` becomes ``token`` (``/m/a.hat.1002.exr`` -> ``/m/a.hat.%04d.exr``).
    The path as it is when no number in the name is that frame."""
    folder, base = _split(str(path))
    runs = [m for m in re.finditer(r"(?<!\d)-?\d+(?!\d)", base) if int(m.group(0)) == int(frame)]
    if not runs:
        return str(path)
    m = runs[-1]
    return folder + base[:m.start()] + token + base[m.end():]


def frames_on_disk(pattern):
    """The frame numbers whose files exist for ``pattern`` (no ``{name}`` left), ascending."""
    folder, base = _split(str(pattern))
    m = _TOKEN.search(base)
    if m is None:
        return []
    padding = _padding(m.group(0))
    regex = re.compile(re.escape(base[:m.start()]) + r"(-?\d+)" + re.escape(base[m.end():]) + "$")
    try:
        names = os.listdir(folder or ".")
    except OSError:
        return []
    found = set()
    for entry in names:
        hit = regex.match(entry)
        digits = hit.group(1).lstrip("-") if hit else ""
        if hit and (len(digits) == padding or (len(digits) > padding and not digits.startswith("0"))):
            found.add(int(hit.group(1)))
    return sorted(found)
