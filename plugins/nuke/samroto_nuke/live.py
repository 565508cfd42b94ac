"""The interactive loop: the current frame's matte at once, without a track (issue 18).

When a prompt knob changes (a handle dragged, a mask prompt set, a Finish knob), the node's
``knobChanged`` (node.py's ``KNOB_CHANGED``, set on the node) sends the object's prompt on the current
frame to the bridge through the host kit's ``LiveSession``, which keeps one bridge session
per node, so a frame's image features are computed once and every later prompt there runs
only SAM 2's prompt encoder and mask decoder. A drag's many changes go through
``hostkit.LatestWins``: one request at a time, the newest position winning. The answer
comes back to Nuke's main thread (``nuke.executeInMainThread``) and the node's output shows
it: the object's internal Read switches to the preview files (``show`` = live) until a
Track ends.

A single positive click gives SAM 2's three candidate masks with their predicted IoU
(listed on the node); picking one in the ``candidate`` knob makes it the frame's mask
prompt (a mask knob ``oN_maskK``), which Track then uses. Moving the click again drops
that choice: a new click makes new candidates.
"""

import os
import sys
import threading
import traceback

import nuke

from . import finishing, frames, knobs, tracking
from . import group as group_mod
from .kit import hostkit

INTERVAL = 0.1  # seconds between two previews of a drag (the newest position wins)
CHOICES = ["best", "1", "2", "3"]
LIVE = {}  # type: dict  # node full name -> Live
_QUIET = set()  # type: set  # knobs the plugin is setting itself: their knobChanged is not the artist's


def quietly(node, name, value):
    """Set a knob without answering it as the artist's change (knobChanged also runs for
    changes made from Python: nuke.addKnobChanged, Nuke 17.1)."""
    _QUIET.add(name)
    try:
        node[name].setValue(value)
    finally:
        _QUIET.discard(name)


def live_for(group):
    live = LIVE.get(group.fullName())
    if live is None:
        live = LIVE[group.fullName()] = Live(group.fullName())
    return live


class Live(object):
    """One node's live session (the bridge session, its previews, the pending requests)."""

    def __init__(self, node_name):
        self.node_name = node_name
        self.session = None  # type: hostkit.LiveSession | None
        self.context = None  # type: dict | None  # what the session was opened on
        self.previews = {}  # type: dict  # (object id, Nuke frame) -> FramePreview
        self.errors = []  # type: list  # what went wrong in the background, newest last
        self.worker = hostkit.LatestWins(self._work, INTERVAL, name="samroto-nuke-live")
        self.busy = 0  # candidate choices and segmentations running in their threads
        self.segmenting = None  # type: object  # the running masks.Segmentation, or None
        self.auto = None  # type: hostkit.AutoMasks | None  # the last segmentation's masks
        self.rendered = None  # type: tuple | None  # (frame, pattern) Nuke last rendered for a non-Read input

    # -- main thread ---------------------------------------------------------------------------
    def open(self, group):
        """The session on the node's plate (a new one when the plate, range, colour or model
        changed); returns the context: {offset, first, last (Nuke frames), ...}. The input
        is a Read: the session opens its files over the Read's frames; otherwise Nuke renders
        the current frame and the session opens that one frame."""
        source, lo, hi = tracking.plate(group)
        frame = nuke.frame()
        if not lo <= frame <= hi:
            raise hostkit.HostError("Frame %d is outside the input's frames %d-%d." % (frame, lo, hi))
        folder = os.path.join(group_mod.matte_dir(group), "live").replace("\\", "/")
        if source is None:  # rendered once per frame (a drag's updates reuse it)
            source = frames.render_source(group, frame, frame, os.path.join(folder, "plate"))
            if self.rendered != (frame, source["path"]) or not os.path.isfile(hostkit.frame_file(source["path"], frame)):
                frames.render_now(group, source)
                self.rendered = (frame, source["path"])
            lo = hi = frame
        request = {"python": tracking.samroto_python(), "model": _model(group),
                   "checkpoint": str(group["checkpoint"].value()) if group["model"].value() == "custom" else "",
                   "device": group["device"].value()}
        offset = source["offset"]
        session = hostkit.LiveSession(lambda: hostkit.connect(**tracking.connect_args(request)), source["path"],
                                      lo - offset, hi - offset, folder, color=source["color"],
                                      model=request["model"] or None, finish=finishing.overrides(group) or False)
        key = (session.key(), folder, request["python"], request["checkpoint"], request["device"])
        if self.session is None or (self.context or {}).get("key") != key:
            if self.session is not None:
                self.session.close()
            self.session, self.previews = session, {}
        self.session.finish = session.finish  # the Finish tab applies to the next preview
        self.context = {"key": key, "offset": offset, "first": lo, "last": hi, "rendered": source["rendered"]}
        return self.context

    def request(self, group, obj):
        """Preview object ``obj``'s prompt on the current frame (answered later, on the main
        thread, by ``_shown``)."""
        frame = nuke.frame()
        context = self.open(group)
        document = knobs.collect(group, group.format().height())
        prompt = hostkit.frame_prompt(tracking.renumber(document, context["offset"]), obj, frame - context["offset"])
        if prompt is None:
            group_mod.set_status(group, "live: object %d has no prompt on frame %d" % (obj, frame))
            return False
        name = knobs.object_info(group, obj)["name"]
        self.worker.push((self.session, frame, obj, name, prompt, dict(context)))
        group_mod.set_status(group, "live: object %d, frame %d..." % (obj, frame))
        return True

    def choose(self, group, index):
        """Candidate ``index`` (0..2) of the object's single click on the current frame
        becomes its mask prompt there (in a thread; ``_chosen`` on the main thread)."""
        obj, frame = int(group["object"].value()), nuke.frame()
        preview, session = self.previews.get((obj, frame)), self.session
        if session is None or preview is None or not preview.candidates:
            raise hostkit.HostError("There are no candidates for object %d on frame %d: SAM 2 gives three for a "
                                    "single + point. Place one point there (live on), then pick." % (obj, frame),
                                    "no_candidates")
        context = dict(self.context or {})
        self.busy += 1

        def run():
            try:
                got = session.choose(frame - context["offset"], obj, index)
                nuke.executeInMainThread(self._chosen, args=(obj, frame, index, preview, got, context))
            except Exception as exc:  # handed to the main thread, which shows it
                nuke.executeInMainThread(self._failed, args=(exc,))

        threading.Thread(target=run, name="samroto-nuke-choose", daemon=True).start()

    def _node(self):
        return nuke.toNode("root." + self.node_name)

    def _show(self, group, obj, frame, preview, context):
        path = preview.paths.get(obj)
        if not path:
            return
        knob = group.knob("o%d_live" % obj)
        if knob is None:  # the object's preview files (hidden: the node manages it)
            knob = nuke.File_Knob("o%d_live" % obj, "live preview")
            group.addKnob(knob)
            knob.setVisible(False)
        quietly(group, knob.name(), hostkit.pattern_from_path(path.replace("\\", "/"), frame - context["offset"]))
        quietly(group, "show", "live")
        group_mod.connect_mattes(group, context["first"], context["last"], context["offset"])
        group_mod.reload_mattes(group)

    def _shown(self, value, preview):
        self.worker.take()  # (the results are handled here; drop the worker's copy)
        group = self._node()
        _, frame, obj, _, _, context = value
        if group is None or context["key"] != (self.context or {}).get("key"):
            return  # the node went, or the session was replaced: a newer answer comes
        self.previews[(obj, frame)] = preview
        self._show(group, obj, frame, preview, context)
        chosen = [k for o, _, f, k in knobs.masks(group, obj) if f == frame and knobs.CANDIDATE in k.label()]
        if not chosen:
            quietly(group, "candidate", "best")
        quietly(group, "candidates", describe_candidates(obj, frame, preview))
        group_mod.set_status(group, "live: object %d, frame %d: %s" % (obj, frame, describe(preview)))

    def _chosen(self, obj, frame, index, clicked, got, context):
        self.busy -= 1
        group = self._node()
        if group is None:
            return
        _QUIET.add("o%d_mask" % obj)  # the new mask knobs: already previewed
        try:
            knobs.add_mask(group, obj, frame, got.mask, label="%s %d" % (knobs.CANDIDATE, index + 1))
        finally:
            _QUIET.discard("o%d_mask" % obj)
        shown = hostkit.FramePreview(got.frame, obj, got.paths, clicked.candidates, index, False, got.encoder_runs,
                                     False, got.seconds, got.mask)
        self.previews[(obj, frame)] = shown
        self._show(group, obj, frame, shown, context)
        quietly(group, "candidates", describe_candidates(obj, frame, shown))
        group_mod.set_status(group, "live: object %d, frame %d: candidate %d is the frame's prompt now; Track uses it"
                             % (obj, frame, index + 1))

    def _failed(self, exc):
        self.worker.take()
        self.errors.append(exc)
        if isinstance(exc, hostkit.HostError):
            text = str(exc)
        else:
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
            text = "%s: %s" % (type(exc).__name__, exc)
        group = self._node()
        if group is not None:  # the status line only: a dialog on every drag would be in the way
            group_mod.set_status(group, "Error: " + text)

    # -- the worker thread: the bridge only ------------------------------------------------
    def _work(self, value):
        session, frame, obj, name, prompt, context = value
        try:
            preview = session.prompt(frame - context["offset"], obj, name, prompt)
        except Exception as exc:
            nuke.executeInMainThread(self._failed, args=(exc,))
            raise
        nuke.executeInMainThread(self._shown, args=(value, preview))
        return preview

    def idle(self):
        return self.worker.idle and not self.busy and self.segmenting is None

    def close(self):
        self.worker.close()
        if self.session is not None:
            self.session.close()


def _model(group):
    model = group["model"].value()
    return "" if model == "settings default" else (
        str(group["model_config"].value()) if model == "custom" else model)


def describe(preview):
    how = "image encoder ran" if preview.encoded else "cached image features"
    return "matte in %.2f s (%s; encoder runs %d)" % (preview.seconds, how, preview.encoder_runs)


def describe_candidates(obj, frame, preview):
    if not preview.candidates:
        return "object %d, frame %d: one mask (candidates come from a single + point)" % (obj, frame)
    items = ["%d: IoU %.2f%s" % (c.index + 1, c.iou, " (shown)" if c.index == preview.best else "")
             for c in preview.candidates]
    return "object %d, frame %d: %s" % (obj, frame, "   ".join(items))


def _object_of(node, name):
    m = knobs.HANDLE.match(name) or knobs.MASK.match(name)
    if m:
        return int(m.group(1))
    if name in finishing.KNOBS or name in ("live", "object"):
        return int(node["object"].value())
    return None


def on_knob_changed(node, knob):
    """The node's knobChanged (main thread): a prompt changed, preview it; a candidate
    picked, make it the frame's prompt. Errors go to the status line."""
    name = knob.name() if knob is not None else ""
    if name in _QUIET or node.knob("live") is None or any(name.startswith(q) for q in _QUIET):
        return
    try:
        if name == "candidate":
            return _candidate_changed(node)
        obj = _object_of(node, name)
        if obj is None or not node["live"].value() or obj not in knobs.object_ids(node):
            return
        m = knobs.HANDLE.match(name)
        if m and node[name].isKeyAt(nuke.frame()):  # a moved click: its old candidate choice goes
            _QUIET.add(name)
            try:
                knobs.remove_masks(node, obj, nuke.frame(), label=knobs.CANDIDATE)
            finally:
                _QUIET.discard(name)
        live_for(node).request(node, obj)
    except hostkit.HostError as exc:
        group_mod.set_status(node, "Error: " + str(exc))
    except Exception as exc:  # say it on the node; keep the traceback for the Script Editor
        traceback.print_exc(file=sys.stderr)
        group_mod.set_status(node, "Error: %s: %s" % (type(exc).__name__, exc))


def _candidate_changed(node):
    value = node["candidate"].value()
    live = live_for(node)
    if value == "best":  # back to the click itself
        obj = int(node["object"].value())
        knobs.remove_masks(node, obj, nuke.frame(), label=knobs.CANDIDATE)
        if node["live"].value():
            live.request(node, obj)
        return
    try:
        live.choose(node, int(value) - 1)
    except hostkit.HostError:
        quietly(node, "candidate", "best")  # nothing was chosen
        raise
