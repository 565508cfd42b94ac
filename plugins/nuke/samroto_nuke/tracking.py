"""Track: prompts and frames go to the bridge in a worker thread; mattes come back as EXR
files that the node's internal Read nodes show when the work ends.

The main thread gathers everything from the node (knobs, frames; it may render the input
first), then a worker thread talks to the bridge with a ``nuke.ProgressTask`` (its Cancel
button stops the bridge within a frame). The worker never touches the node: it hands
results to the main thread with ``nuke.executeInMainThread``.
"""

import os
import re
import threading
import traceback

import nuke

from . import frames, knobs, link, node as node_mod

ACTIVE = {}  # node full name -> Job


class TrackError(Exception):
    """Tracking cannot start or failed; the message says what to do."""


def _input_range(source):
    return source["first"], source["last"]


def build_request(group, direction):
    """Everything the worker needs, as plain data (main thread)."""
    if group.input(0) is None:
        raise TrackError("%s has no input: connect the plate to it." % group.name())
    root = nuke.root()
    source = frames.read_source(group)
    mode = group["range"].value()
    if mode == "custom":
        lo, hi = int(group["range_first"].value()), int(group["range_last"].value())
    elif mode == "project" or source is None:
        lo, hi = int(root["first_frame"].value()), int(root["last_frame"].value())
    else:
        lo, hi = source["first"], source["last"]
    if source is not None:
        lo, hi = max(lo, source["first"]), min(hi, source["last"])
    if lo > hi:
        raise TrackError("The frame range %d-%d does not overlap the input's frames." % (lo, hi))
    current = nuke.frame()
    if direction == "frame" and not lo <= current <= hi:
        raise TrackError("Frame %d is outside the tracking range %d-%d." % (current, lo, hi))
    height = group.format().height()
    prompts = knobs.collect(group, height)
    outdir = node_mod.matte_dir(group)
    if source is None:
        source = frames.render_source(group, lo, hi, os.path.join(outdir, "plate"))
    prompts = within(prompts, source["first"], source["last"])
    start = min(max(current, lo), hi)
    if direction == "frame":
        lo = hi = start
    model = group["model"].value()
    return {
        "node": group.fullName(),
        "source": source,
        "range": [lo, hi],
        "plate_range": [source["first"], source["last"]],
        "start": start,
        "direction": "forward" if direction == "frame" else direction,
        "prompts": prompts,
        "mattes": node_mod.matte_request(group),
        "model": "" if model == "settings default" else (
            str(group["model_config"].value()) if model == "custom" else model),
        "checkpoint": str(group["checkpoint"].value()) if model == "custom" else "",
        "device": group["device"].value(),
        "python": link.samroto_python(),
        "matte_dir": outdir,
    }


def within(doc, first, last):
    """Only the prompts on the input's frames (handles keyed elsewhere stay in the node)."""
    objects = []
    for obj in doc["objects"]:
        kept = [p for p in obj["prompts"] if first <= p["frame"] <= last]
        if kept:
            objects.append(dict(obj, prompts=kept))
    if not objects:
        raise TrackError("No prompt is keyed on the input's frames %d-%d: key a handle on one of them."
                         % (first, last))
    return dict(doc, objects=objects)


class Job(object):
    def __init__(self, request):
        self.request = request
        lo, hi = request["range"]
        start, direction = request["start"], request["direction"]
        self.total = {"forward": hi - start + 1, "backward": start - lo + 1}.get(direction, hi - lo + 1)
        self.done_frames = []
        self.patterns = {}  # object id -> matte sequence pattern, from the paths the bridge reports
        self.state = "running"  # running, finished, cancelled, error
        self.message = ""
        self.finished = threading.Event()
        self.thread = threading.Thread(target=self._work, name="samroto-track", daemon=True)

    def start(self):
        if not os.path.isdir(self.request["matte_dir"]):
            os.makedirs(self.request["matte_dir"])
        ACTIVE[self.request["node"]] = self
        self.thread.start()
        return self

    # -- worker thread: no node access here ----------------------------------------------
    def _work(self):
        task = nuke.ProgressTask("SAM2Matte: tracking %s" % self.request["node"])
        task.setMessage("starting the samroto bridge")
        state, message = "finished", ""
        try:
            def on_matte(frame, objects, paths):
                for obj, path in zip(objects, paths):
                    self.patterns[obj["id"]] = pattern_from_path(path, frame)
                if frame not in self.done_frames:  # "both" may report the start frame twice
                    self.done_frames.append(frame)
                task.setProgress(int(100 * len(self.done_frames) / max(1, self.total)))
                task.setMessage("frame %d (%d of %d)" % (frame, len(self.done_frames), self.total))

            outcome = link.run_track(self.request, on_matte, task.isCancelled)
            if outcome == "cancelled" or task.isCancelled():
                state, message = "cancelled", "cancelled after %d frame(s)" % len(self.done_frames)
        except link.BridgeError as exc:
            state, message = "error", str(exc)
        except Exception as exc:
            traceback.print_exc()
            state, message = "error", "tracking failed: %s: %s" % (type(exc).__name__, exc)
        del task  # Nuke removes a progress bar when its task goes away
        nuke.executeInMainThread(self._finish, args=(state, message))

    # -- main thread ---------------------------------------------------------------------
    def _finish(self, state, message):
        self.state, self.message = state, message
        ACTIVE.pop(self.request["node"], None)
        try:
            group = nuke.toNode(self.request["node"])
            if group is None:
                return  # deleted while tracking: the mattes stay on disk
            for obj, pattern in self.patterns.items():
                if group.knob("o%d_matte" % obj) is not None:
                    group["o%d_matte" % obj].setValue(pattern)
            lo, hi = self.request["plate_range"]
            node_mod.connect_mattes(group, lo, hi)
            node_mod.reload_mattes(group)
            if state == "error":
                node_mod.report_error(group, message)
            else:
                done = sorted(self.done_frames)
                span = "%d-%d" % (done[0], done[-1]) if done else "none"
                node_mod.set_status(group, "%s: %d frame(s) tracked (%s)%s" % (
                    state, len(done), span, "; " + message if message else ""))
        finally:
            self.finished.set()


def pattern_from_path(path, frame):
    """/m/SAM2Matte1.hat.1002.exr (frame 1002) -> /m/SAM2Matte1.hat.%04d.exr (the node asks
    the bridge for 4-digit padding)."""
    path = str(path).replace("\\", "/")
    folder, name = path.rsplit("/", 1) if "/" in path else ("", path)
    m = list(re.finditer(r"(?<!\d)-?\d+(?!\d)", name))
    m = [x for x in m if int(x.group()) == frame]
    if not m:
        return path
    last = m[-1]
    name = name[:last.start()] + "%04d" + name[last.end():]
    return (folder + "/" + name) if folder else name


def start(group, direction):
    if group.fullName() in ACTIVE:
        raise TrackError("%s is already tracking; cancel it in the progress bar first." % group.name())
    job = Job(build_request(group, direction))
    node_mod.set_status(group, "tracking...")
    return job.start()
