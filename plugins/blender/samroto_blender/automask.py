"""Segment Everything: SAM 2's automatic masks on the current frame, to pick objects from.

**Segment Everything** asks the bridge for every mask SAM 2's automatic generator finds on
the current frame (``hostkit.LiveSession.segment``: the clip's Live Matte session, so a
frame already clicked on is not encoded again). The masks are drawn over the clip, each in
its own colour and numbered; **Pick Masks** is a click mode in which a click toggles the
smallest mask under the cursor (Shift-click: the largest), and **Add Picked as Objects**
makes each picked mask a new object whose prompt on that frame is that mask (a copy of it
beside the Live Matte's files, so segmenting again never changes it). Track then tracks
those objects like any others.

The work runs in a worker thread (``SegmentJob``, the host kit's ProgressJob): progress
in the status bar and the Clip Editor's header, Esc cancels. ``bpy.ops.samroto.segment_
everything()`` from a script (EXEC) blocks until the masks are in.
"""

import colorsys
import dataclasses
import json
import os
import shutil

import bpy
from bpy.props import BoolProperty, FloatVectorProperty, StringProperty

from . import live, results
from .kit import hostkit
from .ops_prompts import _ClipOperator, _redraw, add_object, current_source_frame, target_clip
from .tool import _ClickMode
from .tracking import _JobOperator, _status

FOUND: dict = {}  # clip name -> hostkit.AutoMasks of the last Segment Everything
PICKED: dict = {}  # clip name -> the picked masks' indices (AutoMask.index)
JOBS: dict = {}  # clip name -> the SegmentJob running for it


def options(settings, extra=""):
    """Meta's generator parameters from the panel (and ``extra``: more of them as JSON)."""
    out = {"points_per_side": settings.auto_points_per_side, "pred_iou_thresh": settings.auto_pred_iou,
           "stability_score_thresh": settings.auto_stability, "min_mask_region_area": settings.auto_min_area}
    if extra:
        try:
            more = json.loads(extra)
        except ValueError as exc:
            raise hostkit.HostError("The extra generator parameters are not JSON (%s): write them as "
                                    "{\"mask_threshold\": 0.0}." % exc, "bad_request")
        if not isinstance(more, dict):
            raise hostkit.HostError("The extra generator parameters must be a JSON object, e.g. "
                                    "{\"mask_threshold\": 0.0}.", "bad_request")
        out.update(more)
    return out


def colour(index):
    """The mask's colour: the bridge's overlay picture uses the same hues (golden ratio)."""
    return colorsys.hsv_to_rgb((index * 0.618033988749895) % 1.0, 0.75, 1.0)


def image_name(clip, mask):
    return "samroto auto %s %03d" % (clip.name, mask.index)


def found_on(clip, frame):
    """The automatic masks of ``frame`` (None when the last Segment Everything was elsewhere)."""
    masks = FOUND.get(clip.name)
    return masks if masks is not None and masks.frame == frame else None


def show(clip, masks):
    """Keep the masks for the overlay and the picking, with nothing picked yet; load each mask
    as an Image (Non-Color) for the overlay to draw."""
    forget(clip)
    FOUND[clip.name] = masks
    PICKED[clip.name] = set()
    for mask in masks:
        if mask.mask_path and os.path.isfile(mask.mask_path):
            live.load_image(image_name(clip, mask), mask.mask_path)
    clip.samroto.last_message = describe(clip)


def forget(clip):
    """Drop the clip's automatic masks and their Images."""
    for mask in FOUND.pop(clip.name, None) or ():
        image = bpy.data.images.get(image_name(clip, mask))
        if image is not None:
            bpy.data.images.remove(image)
    PICKED.pop(clip.name, None)


def describe(clip):
    masks = FOUND.get(clip.name)
    if masks is None:
        return ""
    return "Frame %d: %d automatic masks in %.1f s, %d picked" % (masks.frame, len(masks), masks.seconds,
                                                                   len(PICKED.get(clip.name, ())))


def overlay_masks(clip, frame):
    """What the overlay draws on ``frame``: ``(image name, rgba, label xy in pixels, index)``
    per automatic mask, picked ones bright, the others faint, larger masks first (so
    smaller ones stay visible on top)."""
    masks = found_on(clip, frame)
    if masks is None:
        return []
    picked = PICKED.get(clip.name, set())
    out = []
    for mask in sorted(masks, key=lambda m: -m.area):
        if image_name(clip, mask) not in bpy.data.images:
            continue
        r, g, b = colour(mask.index)
        alpha = 0.7 if mask.index in picked else 0.25
        out.append((image_name(clip, mask), (r, g, b, alpha), mask.point, mask.index))
    return out


def pick(clip, co, largest=False, frame=None):
    """Toggle the automatic mask under normalised clip position ``co`` (the smallest there;
    ``largest``: the largest). Returns the AutoMask toggled, or None when none is there."""
    masks = FOUND.get(clip.name)
    if masks is None or (frame is not None and masks.frame != frame):
        raise hostkit.HostError("No automatic masks on this frame: press Segment Everything first.", "no_masks")
    x, y = hostkit.from_normalised(co[0], co[1], clip.size[0], clip.size[1])
    if largest:
        under = [m for m in masks if m.contains(x, y)]
        mask = max(under, key=lambda m: (m.area, -m.index)) if under else None
    else:
        mask = hostkit.mask_at(masks, x, y)
    if mask is not None:
        PICKED.setdefault(clip.name, set()).symmetric_difference_update({mask.index})
    clip.samroto.last_message = describe(clip)
    return mask


def add_picked(context, clip):
    """Each picked mask -> a new object whose prompt on the masks' frame is that mask.
    Returns the new objects."""
    masks = FOUND.get(clip.name)
    picked = [m for m in masks or () if m.index in PICKED.get(clip.name, ())]
    if masks is None or not picked:
        raise hostkit.HostError("No mask picked: press Pick Masks and click the masks to keep.", "no_masks")
    frame = masks.frame
    if current_source_frame(context, clip) != frame:
        raise hostkit.HostError("The automatic masks are of frame %d: go back there to add them (or Segment "
                                "Everything again here)." % frame, "wrong_frame")
    settings = clip.samroto
    folder = os.path.join(results.matte_dir(clip, settings), "live", "masks")
    os.makedirs(folder, exist_ok=True)
    created, kept = [], []
    for mask in picked:
        obj = add_object(settings, "")
        # a copy of its own: the next Segment Everything of this frame rewrites the originals
        path = os.path.join(folder, "%s.%d.auto%d.png" % (hostkit.matte_name(obj.name), frame, mask.index))
        shutil.copyfile(mask.mask_path, path)
        kept.append(dataclasses.replace(mask, mask_path=path))
        created.append(obj)
    for obj, spec in zip(created, hostkit.prompts_from_masks(kept, frame, created[0].obj_id,
                                                             [o.name for o in created])):
        assert spec["id"] == obj.obj_id  # add_object numbers them in a row
        for mask_frame, path in spec["masks"]:
            prompt = obj.masks.add()
            prompt.frame, prompt.filepath, prompt.candidate = mask_frame, results.blend_relative(path), 0
    forget(clip)
    if settings.live_matte:  # each new object's matte on the frame at once (cached image features)
        for obj in created:
            live.preview(context, clip, obj, frame)
    settings.last_message = "Added %d objects from the automatic masks of frame %d" % (len(created), frame)
    return created


class SegmentJob(object):
    """One Segment Everything in a worker thread (the host kit's ProgressJob); ``step(context)``
    (the modal timer, or a script's loop) applies what arrived and returns RUNNING, FINISHED,
    CANCELLED or ERROR."""

    def __init__(self, context, clip, extra=""):
        self.clip_name = clip.name
        self.frame = current_source_frame(context, clip)
        self.options = options(clip.samroto, extra)
        self.session = live.live_session(context, clip)
        self.state, self.message = "RUNNING", ""
        frame, opts, session = self.frame, self.options, self.session
        self.worker = hostkit.ProgressJob(
            lambda progress, cancelled: session.segment(frame, opts, progress=progress, cancelled=cancelled),
            what="Segment Everything", name="samroto-segment")

    def start(self):
        self.worker.start()
        return self

    def cancel(self):
        self.worker.cancel()

    @property
    def done(self):
        """Grid clicks done of ``total`` (the panel's and the status bar's progress)."""
        return self.worker.done

    @property
    def total(self):
        return self.worker.total

    def step(self, context):
        if self.state != "RUNNING":
            return self.state
        worker = self.worker
        if worker.poll() == hostkit.RUNNING:
            _status(context, "samroto: Segment Everything on frame %d: %d/%d clicks (Esc cancels)"
                    % (self.frame, worker.done, worker.total), 100.0 * worker.fraction)
            return self.state
        _status(context, None, 0)
        JOBS.pop(self.clip_name, None)
        clip = bpy.data.movieclips.get(self.clip_name)
        self.state = {hostkit.DONE: "FINISHED", hostkit.CANCELLED: "CANCELLED"}.get(worker.state, "ERROR")
        if self.state == "FINISHED" and clip is not None:
            show(clip, worker.result)
        self.message = {"FINISHED": describe(clip) if clip else "",
                        "CANCELLED": "Segment Everything cancelled on frame %d" % self.frame}.get(
                            self.state, worker.message)
        if clip is not None:
            clip.samroto.last_message = self.message
        return self.state


class SAMROTO_OT_segment_everything(_JobOperator, bpy.types.Operator):
    bl_idname = "samroto.segment_everything"
    bl_label = "Segment Everything"
    bl_description = ("SAM 2's automatic masks on the current frame, drawn over the clip: pick the ones "
                      "to keep as objects (Esc cancels)")

    extra: StringProperty(name="More Parameters", default="", options={"SKIP_SAVE"},
                          description="More of the generator's parameters as JSON (Meta's names), "
                                      "e.g. {\"crop_n_layers\": 1}")

    def _start(self, context):
        clip = target_clip(context)
        if clip.name in JOBS:
            self.report({"ERROR"}, "Segment Everything is already running on %s (Esc cancels it)." % clip.name)
            return None
        try:
            job = SegmentJob(context, clip, self.extra).start()
        except hostkit.HostError as exc:
            self._fail(clip, exc)
            return None
        JOBS[clip.name] = job
        return job


class SAMROTO_OT_pick_mask(_ClipOperator, bpy.types.Operator):
    bl_idname = "samroto.pick_mask"
    bl_label = "Pick Mask"
    bl_description = "Pick (or unpick) the automatic mask under a position: the smallest there"

    co: FloatVectorProperty(name="Position", size=2, description="Normalised clip position (y up)")
    largest: BoolProperty(name="Largest", default=False, description="The largest mask there instead")

    def execute(self, context):
        clip = target_clip(context)
        try:
            mask = pick(clip, self.co, self.largest, current_source_frame(context, clip))
        except hostkit.HostError as exc:
            return self._fail(clip, exc)
        _redraw(context)
        if mask is None:
            self.report({"INFO"}, "No automatic mask there")
            return {"CANCELLED"}
        return {"FINISHED"}


PICK_HINT = "samroto: click = pick/unpick the mask under the cursor, Shift-click = the largest there  |  " \
            "Enter: add picked as objects, Esc: done"


class SAMROTO_OT_pick_masks(_ClickMode, bpy.types.Operator):
    bl_idname = "samroto.pick_masks"
    bl_label = "Pick Masks"
    bl_description = ("Click the automatic masks to keep (Shift-click: the largest under the cursor); "
                      "Enter adds them as objects, Esc ends")

    @classmethod
    def poll(cls, context):
        if not super().poll(context):
            return False
        if context.space_data.clip.name not in FOUND:
            cls.poll_message_set("Press Segment Everything first")
            return False
        return True

    def invoke(self, context, event):
        return self._begin(context, PICK_HINT)

    def modal(self, context, event):
        if event.type in {"ESC", "RIGHTMOUSE"} and event.value == "PRESS":
            self._stop()
            return {"FINISHED"}
        if event.type in {"RET", "NUMPAD_ENTER"} and event.value == "PRESS":
            self._stop()
            with context.temp_override(area=self.area, region=self.region):
                bpy.ops.samroto.add_picked()  # type: ignore[attr-defined]  # ours: registered at run time
            return {"FINISHED"}
        if event.type != "LEFTMOUSE" or event.value != "PRESS":
            return {"PASS_THROUGH"}  # zoom, pan, frame change...
        xy = self._region_xy(event)
        if not self._inside(xy):
            return {"PASS_THROUGH"}  # the sidebar, header, timeline
        with context.temp_override(area=self.area, region=self.region):
            bpy.ops.samroto.pick_mask(co=self._clip_co(xy), largest=event.shift)  # type: ignore[attr-defined]  # ours
        self.area.tag_redraw()
        return {"RUNNING_MODAL"}


class SAMROTO_OT_add_picked(_ClipOperator, bpy.types.Operator):
    bl_idname = "samroto.add_picked"
    bl_label = "Add Picked as Objects"
    bl_description = ("Each picked automatic mask becomes a new object whose prompt on this frame is that "
                      "mask; Track then tracks them")
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        clip = target_clip(context)
        try:
            created = add_picked(context, clip)
        except (hostkit.HostError, OSError) as exc:
            return self._fail(clip, exc)
        _redraw(context)
        self.report({"INFO"}, "Added %s" % ", ".join(o.name for o in created))
        return {"FINISHED"}


class SAMROTO_OT_clear_automasks(_ClipOperator, bpy.types.Operator):
    bl_idname = "samroto.clear_automasks"
    bl_label = "Clear Automatic Masks"
    bl_description = "Stop showing the automatic masks (nothing picked is added)"

    def execute(self, context):
        forget(target_clip(context))
        _redraw(context)
        return {"FINISHED"}


CLASSES = [SAMROTO_OT_segment_everything, SAMROTO_OT_pick_mask, SAMROTO_OT_pick_masks, SAMROTO_OT_add_picked,
           SAMROTO_OT_clear_automasks]
