"""Track: prompts and frames go to the bridge through the host kit's TrackingJob; mattes come
back as EXR files that the node's internal Read nodes show when the work ends.

The main thread gathers everything from the node (knobs, where the frames come from) and
renders nothing. A watcher thread drives a ``nuke.ProgressTask``: first, when the input is
not a Read, it has Nuke render the frames this Track covers, one ``nuke.execute`` per frame
through ``nuke.executeInMainThreadWithResult`` (Nuke's API belongs to its main thread; the
artist can work and Cancel between frames); then it follows the job's events (Cancel stops
the bridge within a frame). It never touches the node: it hands the end to the main thread
with ``nuke.executeInMainThread``.

Frame numbers: the node, its range and its handles use Nuke's frames; the bridge gets the
source's own (a movie counted from 0: Nuke frame f is source frame f - offset) and writes
the mattes with them; the node's internal Reads map them back.
"""

import os
import threading
import time

import nuke

from . import frames, knobs, review
from . import group as group_mod
from .kit import HOW_TO_SET, hostkit, samroto_python

ACTIVE = {}  # type: dict  # node full name -> Job
STATES = {hostkit.DONE: "finished", hostkit.CANCELLED: "cancelled", hostkit.FAILED: "error"}


class TrackError(hostkit.HostError):
    """Tracking cannot start; the message says what to do."""


def build_request(group, direction):
    """Everything the job needs, as plain data (main thread).

    The node's range (``range`` knob: the input's frames, the project's or custom, always
    within the input's frames: a Read's, else the input's ``frameRange()``) and the current
    frame say which frames a Track covers (``hostkit.shot_frames``: forward from the current
    frame, backward to it, both the whole range, "frame" the current frame alone). Those
    frames are the shot the bridge opens, with the prompts keyed on them, so the node's
    mattes are ``samroto track --range A-B --direction D`` 's on the same plate (A-B in the
    source's own numbering: a movie's frames count from 0)."""
    source, in_lo, in_hi = plate(group)
    root = nuke.root()
    mode = group["range"].value()
    if mode == "custom":
        lo, hi = int(group["range_first"].value()), int(group["range_last"].value())
    elif mode == "project":
        lo, hi = int(root["first_frame"].value()), int(root["last_frame"].value())
    else:
        lo, hi = in_lo, in_hi
    if max(lo, in_lo) > min(hi, in_hi):
        raise TrackError("The frame range %d-%d does not overlap the input's frames (%d-%d)." % (lo, hi, in_lo, in_hi))
    lo, hi = max(lo, in_lo), min(hi, in_hi)
    current = nuke.frame()
    if direction == "frame" and not lo <= current <= hi:
        raise TrackError("Frame %d is outside the tracking range %d-%d." % (current, lo, hi))
    first, last = hostkit.shot_frames(direction, lo, hi, current)
    prompts = hostkit.prompts_within(knobs.collect(group, group.format().height()), first, last, direction)
    outdir = group_mod.matte_dir(group)
    if source is None:  # rendered by the Job, off this thread: only the frames this Track covers
        source = frames.render_source(group, first, last, os.path.join(outdir, "plate"))
    offset = source["offset"]
    model = group["model"].value()
    return {
        "node": group.fullName(),
        "source": source,
        "range": [first, last],                     # Nuke's frames
        "offset": offset,                           # Nuke frame f is the source's frame f - offset
        "shot": [first - offset, last - offset],    # the source's own frames: what the bridge opens
        "plate_range": [lo, hi] if source["rendered"] else [source["first"], source["last"]],
        "direction": "forward" if direction == "frame" else direction,
        "prompts": renumber(prompts, offset),       # on the source's frames
        "mattes": group_mod.matte_request(group),
        "model": "" if model == "settings default" else (
            str(group["model_config"].value()) if model == "custom" else model),
        "checkpoint": str(group["checkpoint"].value()) if model == "custom" else "",
        "device": group["device"].value(),
        "python": samroto_python(),
        "matte_dir": outdir,
    }


def plate(group):
    """(the Read source or None when Nuke must render the input, the input's first and last
    frame in Nuke's numbering)."""
    if group.input(0) is None:
        raise TrackError("%s has no input: connect the plate to it." % group.name())
    source = frames.read_source(group)
    in_lo, in_hi = (source["first"], source["last"]) if source is not None else frames.input_range(group)
    return source, in_lo, in_hi


def renumber(document, offset):
    """A prompts document moved from Nuke's frames to the source's (frame - offset)."""
    if not offset:
        return document
    return dict(document, objects=[dict(o, prompts=[dict(p, frame=p["frame"] - offset) for p in o["prompts"]])
                                   for o in document["objects"]])


def shot(request):
    """The request as the kit's Shot: the tracked frames are the shot, in the source's
    own numbering (``samroto track --range`` on the same source opens the same frames)."""
    lo, hi = request["shot"]
    return hostkit.Shot(request["source"]["path"], request["prompts"], lo, hi, mattes=request["mattes"],
                        direction=request["direction"], color=request["source"]["color"],
                        model=request["model"] or None)


def connect_args(request):
    """How the node reaches the bridge, starting one with its model, checkpoint and device."""
    return {"python": request["python"], "name": "samroto-nuke", "how_to_set": HOW_TO_SET,
            "serve_args": hostkit.serve_args(request["model"], request["checkpoint"], request["device"])}


class Job(object):
    def __init__(self, request, group):
        self.request = request
        self.track = hostkit.TrackingJob(shot(request), lambda: hostkit.connect(**connect_args(request)))
        self.renderer = frames.Renderer(group, request["source"]) if request["source"]["rendered"] else None
        self.rendered = []  # the frames of the input Nuke rendered for this Track
        self.scores = {}  # type: dict  # object id -> {Nuke frame: SAM 2's object score}
        self.state = "running"  # running, finished, cancelled, error
        self.message = ""
        self.finished = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="samroto-progress", daemon=True)

    @property
    def done_frames(self):
        """The frames with mattes, in the source's numbering (the matte files')."""
        return sorted(self.track.frames)

    @property
    def nuke_frames(self):
        """The frames with mattes, in Nuke's numbering."""
        return [f + self.request["offset"] for f in self.done_frames]

    def start(self):
        if not os.path.isdir(self.request["matte_dir"]):
            os.makedirs(self.request["matte_dir"])
        ACTIVE[self.request["node"]] = self
        self.thread.start()
        return self

    # -- watcher thread: Nuke's progress bar, no node access here --------------------------
    def _render(self, task):
        """Nuke renders the input's frames for this Track, one ``nuke.execute`` per call on
        its main thread; returns None once they are on disk (or when the input is a Read),
        else how the job ends: (state, message)."""
        renderer, source = self.renderer, self.request["source"]
        if renderer is None:
            return None
        todo = list(range(source["first"], source["last"] + 1))
        problem = nuke.executeInMainThreadWithResult(renderer.start)
        for i, f in enumerate(todo):
            if problem != "":
                break
            if task.isCancelled():
                return "cancelled", "cancelled while Nuke rendered the input (%d of %d frames)" % (i, len(todo))
            task.setMessage("rendering the input: frame %d (%d of %d)" % (f, i + 1, len(todo)))
            task.setProgress(int(100 * i / len(todo)))
            problem = nuke.executeInMainThreadWithResult(renderer.frame, args=(f,))
            if problem == "":
                self.rendered.append(f)
        if problem != "":  # None: the call raised (Nuke printed it)
            return "error", problem or "Nuke could not render the input for tracking (see the Script Editor)"
        task.setProgress(0)
        task.setMessage("starting the samroto bridge")
        return None

    def _watch(self):
        task = nuke.ProgressTask("SAM2Matte: tracking %s" % self.request["node"])
        task.setMessage("starting the samroto bridge")
        ended = self._render(task)
        if ended is not None:
            del task
            nuke.executeInMainThread(self._finish, args=ended)
            return
        job, end = self.track.start(), None
        while end is None:
            events = job.poll()
            mattes = [e for e in events if isinstance(e, hostkit.Matte)]
            for matte in mattes:  # SAM 2's object score per frame (protocol 1.3; older bridges send none)
                for obj in matte.objects:
                    if obj.get("score") is not None:
                        self.scores.setdefault(obj.get("id"), {})[matte.frame + self.request["offset"]] = obj["score"]
            if mattes:
                task.setProgress(int(100 * len(job.frames) / max(1, job.total)))
                task.setMessage("frame %d (%d of %d)" % (mattes[-1].frame + self.request["offset"],  # Nuke's
                                                        len(job.frames), job.total))
            end = next((e for e in events if isinstance(e, (hostkit.Done, hostkit.Cancelled, hostkit.Error))), None)
            if end is None:
                if task.isCancelled():
                    job.cancel()  # the bridge stops within a frame
                time.sleep(0.05)
        message = end.message if isinstance(end, hostkit.Error) else (
            "cancelled after %d frame(s)" % len(job.frames) if isinstance(end, hostkit.Cancelled) else "")
        del task  # Nuke removes a progress bar when its task goes away
        nuke.executeInMainThread(self._finish, args=(STATES[job.state], message))

    # -- main thread ---------------------------------------------------------------------
    def _finish(self, state, message):
        self.state, self.message = state, message
        ACTIVE.pop(self.request["node"], None)
        try:
            if self.renderer is not None:
                self.renderer.finish()
            group = nuke.toNode("root." + self.request["node"])  # whatever group the main loop is in
            if group is None:
                return  # deleted while tracking: the mattes stay on disk
            if group.knob("show") is not None:
                group["show"].setValue("tracked")
            for obj, pattern in self.track.patterns.items():
                if group.knob("o%d_matte" % obj) is not None:
                    group["o%d_matte" % obj].setValue(pattern.replace("\\", "/"))
            for obj, scores in self.scores.items():
                review.store_scores(group, obj, scores)
            lo, hi = self.request["plate_range"]
            group_mod.connect_mattes(group, lo, hi, self.request["offset"])
            group_mod.reload_mattes(group)
            if state == "error":
                group_mod.report_error(group, message)
            else:
                done = self.nuke_frames
                span = "%d-%d" % (done[0], done[-1]) if done else "none"
                group_mod.set_status(group, "%s: %d frame(s) tracked (%s)%s" % (
                    state, len(done), span, "; " + message if message else ""))
        finally:
            self.finished.set()


def start(group, direction):
    if group.fullName() in ACTIVE:
        raise TrackError("%s is already tracking; cancel it in the progress bar first." % group.name())
    job = Job(build_request(group, direction), group)
    group_mod.set_status(group, "tracking...")
    return job.start()
