"""Mask prompts from Nuke: the node's mask input, and SAM 2's automatic masks.

**mask from input**: whatever feeds the node's second input (``Mask``: a Roto, a RotoPaint,
a Read of a matte, a keyer) is rendered on the current frame, its alpha written to an EXR,
and that file becomes the current object's mask prompt on the frame; a Track propagates it.

**segment everything**: the bridge's automatic mask generator on the current frame (in a
thread, with Nuke's progress bar and Cancel). The node's output shows the overlay picture
(the frame with the masks tinted and numbered, ``show`` = auto masks) and the Prompts tab
gets one checkbox per mask (``auto1``..); **add picked** makes each ticked mask a new object
whose prompt on that frame is that mask.
"""

import os
import threading

import nuke

from . import frames, knobs, live, tracking
from . import group as group_mod
from .kit import hostkit

AUTO = "auto%d"
# The generator's main parameters as node knobs, with Meta's defaults (docs/automask.md):
# (knob, parameter, label, default, tooltip)
OPTIONS = [
    ("seg_points_per_side", "points_per_side", "grid", 32, "Clicks per side of the grid (32: 1024 clicks)."),
    ("seg_pred_iou_thresh", "pred_iou_thresh", "min IoU", 0.8, "Keep masks SAM 2 predicts at least this good."),
    ("seg_stability_score_thresh", "stability_score_thresh", "min stability", 0.95,
     "Keep masks that hardly change when the cut-off moves."),
    ("seg_mask_threshold", "mask_threshold", "cut-off", 0.0, "The logit a pixel must pass to be inside."),
]


def make_knobs():
    """The generator's knobs for the SAM2 tab, set to Meta's defaults by the caller."""
    made = []
    for name, _, label, default, tip in OPTIONS:
        knob = nuke.Int_Knob(name, label) if isinstance(default, int) else nuke.Double_Knob(name, label)
        knob.setTooltip(tip)
        made.append(knob)
    return made, {o[0]: o[3] for o in OPTIONS}


def options(group):
    """The generator's parameters from the node's knobs (Meta's defaults on an older node)."""
    out = {}
    for name, param, _, default, _ in OPTIONS:
        knob = group.knob(name)
        value = knob.value() if knob is not None else default
        out[param] = int(value) if isinstance(default, int) else float(value)
    return out


class MaskError(hostkit.HostError):
    """A mask prompt cannot be made; the message says what to change."""


def from_input(group, obj, frame):
    """The mask input's alpha on ``frame`` as object ``obj``'s mask prompt there; returns the
    file. The input must be the plate's size (a Roto takes it from the plate it is
    connected to, or from its ``format`` knob)."""
    up = group.input(1)
    if up is None:
        raise MaskError("%s's mask input is not connected: connect a Roto (or any node with the matte in its "
                        "alpha) to it, then press 'mask from input' on the frame." % group.name())
    plate, mask = group.format(), up.format()
    if (mask.width(), mask.height()) != (plate.width(), plate.height()):
        raise MaskError("The mask input is %dx%d but the plate is %dx%d: set the Roto's format to the plate's "
                        "(or Reformat the matte) and press 'mask from input' again."
                        % (mask.width(), mask.height(), plate.width(), plate.height()))
    name = "%s.o%d.input.%d.exr" % (group.name(), obj, frame)
    path = os.path.join(group_mod.matte_dir(group), "masks", name).replace("\\", "/")
    frames.render_now(group, {"path": path, "first": frame, "last": frame}, input_name="Mask", channels="alpha")
    knobs.add_mask(group, obj, frame, path, label="mask input")
    group_mod.set_status(group, "object %d: the mask input's alpha is its prompt on frame %d" % (obj, frame))
    return path


class Segmentation(object):
    """One ``segment everything`` run: the bridge works in a thread that drives Nuke's progress
    bar; the masks come back to the main thread (``_done``)."""

    def __init__(self, group, frame):
        self.live = live.live_for(group)
        self.context = dict(self.live.open(group))
        self.session, self.frame, self.options = self.live.session, frame, options(group)
        self.found = None  # type: hostkit.AutoMasks | None
        self.error = None  # type: Exception | None
        self.finished = threading.Event()
        self.thread = threading.Thread(target=self._run, name="samroto-nuke-segment", daemon=True)

    def start(self):
        self.live.segmenting = self
        self.thread.start()
        return self

    def _run(self):
        task = nuke.ProgressTask("SAM2Matte: segment everything on frame %d" % self.frame)
        task.setMessage("finding SAM 2's automatic masks")

        def progress(done, total):
            task.setProgress(int(100 * done / max(1, total)))
            task.setMessage("frame %d: %d of %d clicks" % (self.frame, done, total))

        found = None  # type: hostkit.AutoMasks | None
        error = None  # type: Exception | None
        try:
            found = self.session.segment(self.frame - self.context["offset"], self.options, progress=progress,
                                         cancelled=task.isCancelled)
        except Exception as exc:  # handed to the main thread, which reports it
            error = exc
        del task  # Nuke removes a progress bar when its task goes away
        nuke.executeInMainThread(self._done, args=(found, error))

    def _done(self, found, error):
        self.found, self.error = found, error
        self.live.segmenting = None
        try:
            group = nuke.toNode("root." + self.live.node_name)
            if group is None:
                return
            if error is not None:
                text = str(error) if isinstance(error, hostkit.HostError) else "%s: %s" % (type(error).__name__, error)
                if getattr(error, "code", "") == "cancelled":
                    group_mod.set_status(group, "segment everything cancelled")
                else:
                    group_mod.report_error(group, text)
                return
            self.live.auto = found
            show_masks(group, self.frame, found, self.context)
        finally:
            self.finished.set()


def segment(group):
    """Start ``segment everything`` on the current frame; returns the Segmentation."""
    running = live.live_for(group).segmenting
    if running is not None:
        raise MaskError("%s is already finding the automatic masks; cancel it in the progress bar first."
                        % group.name())
    group_mod.set_status(group, "segment everything: frame %d..." % nuke.frame())
    return Segmentation(group, nuke.frame()).start()


def _auto_knobs(group):
    return [k for name, k in group.knobs().items() if name.startswith("auto")]


def show_masks(group, frame, found, context):
    """The masks as checkboxes on the Prompts tab and their overlay in the node's output."""
    for knob in _auto_knobs(group):
        group.removeKnob(knob)
    group.addKnob(nuke.Text_Knob("auto_divider", "", "<b>automatic masks, frame %d</b> (tick, then 'add picked')"
                                 % frame))
    at = nuke.Int_Knob("auto_frame", "frame")
    group.addKnob(at)
    at.setValue(frame)
    at.setVisible(False)
    overlay = nuke.File_Knob("auto_overlay", "overlay")
    group.addKnob(overlay)
    overlay.setValue(str(found.overlay or "").replace("\\", "/"))
    for mask in found:
        x0, y0, x1, y1 = mask.bbox
        tick = nuke.Boolean_Knob(AUTO % mask.index, "#%d  %d px  IoU %.2f  at x %d-%d, y %d-%d" % (
            mask.index, mask.area, mask.predicted_iou, x0, x1, group.format().height() - y1,
            group.format().height() - y0))  # Nuke's y goes up
        group.addKnob(tick)
    live.quietly(group, "show", "auto masks")
    group_mod.connect_mattes(group, context["first"], context["last"], context["offset"])
    group_mod.set_status(group, "segment everything: %d masks on frame %d; tick the ones to keep, then 'add picked'"
                         % (len(found), frame))


def add_picked(group):
    """Each ticked automatic mask becomes a new object whose prompt on the masks' frame is
    that mask (``hostkit.prompts_from_masks``); returns the new objects' ids."""
    found = getattr(live.live_for(group), "auto", None)
    frame_knob = group.knob("auto_frame")
    if not found or frame_knob is None:
        raise MaskError("No automatic masks to pick from: press 'segment everything' on a frame first.")
    picked = [m for m in found if group.knob(AUTO % m.index) is not None and group[AUTO % m.index].value()]
    if not picked:
        raise MaskError("No automatic mask is ticked: tick the ones to keep (auto1, auto2...), then 'add picked'.")
    frame = int(frame_knob.value())
    first = max(knobs.object_ids(group) or [0]) + 1
    made = []
    for entry in hostkit.prompts_from_masks(picked, frame, first_object_id=first,
                                            names=["auto%d" % m.index for m in picked]):
        obj = knobs.add_object(group, entry["name"])
        for mask_frame, path in entry["masks"]:
            knobs.add_mask(group, obj, mask_frame, path, label="auto mask")
        made.append(obj)
    for m in picked:
        live.quietly(group, AUTO % m.index, False)
    live.quietly(group, "show", "tracked")
    source, lo, hi = tracking.plate(group)
    group_mod.connect_mattes(group, lo, hi, source["offset"] if source is not None else 0)
    group_mod.set_status(group, "added %d object(s) from the automatic masks on frame %d: %s; Track them"
                         % (len(made), frame, ", ".join("object %d" % o for o in made)))
    return made
