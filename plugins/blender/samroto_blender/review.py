"""Review: step through the tracked frames with each object's matte drawn over the clip, and
jump to the frames where SAM 2 lost an object.

Every tracked frame's matte event carries SAM 2's object score per object (a logit: at or
below 0 the model says the object is occluded or gone there, and its matte is empty); a
Track keeps them on the object (``SamrotoObject.scores``, JSON {frame: score}), so they
survive saving the .blend. **Review Mattes** draws the current frame's tracked matte of
every object over the clip (loaded on each frame change, ``on_frame_change``); Blender's
own frame keys step through the frames; **Previous Lost** / **Next Lost** jump to the
nearest frame where the active object (or any, with Alt) was lost.
"""

import os

import bpy
from bpy.app.handlers import persistent
from bpy.props import BoolProperty, EnumProperty

from . import clipinfo, live, props, results
from .kit import hostkit
from .ops_prompts import _ClipOperator, _redraw, current_source_frame, target_clip

SHOWN: dict = {}  # (clip name, object id) -> the source frame whose matte the review image holds


scores = results.scores  # the object's {frame: SAM 2's object score}, kept by Track


def image_name(clip, obj):
    return "samroto review %s %s" % (clip.name, obj.name)


def load_frame(clip, frame):
    """Load each object's tracked matte of source ``frame`` into its review image (none where
    the object has no matte file there)."""
    for obj in clip.samroto.objects:
        key = (clip.name, obj.obj_id)
        path = results.matte_file(bpy.path.abspath(obj.matte_pattern), frame) if obj.matte_pattern else ""
        if path and os.path.isfile(path):
            if SHOWN.get(key) != frame:
                live.load_image(image_name(clip, obj), path)
                SHOWN[key] = frame
        else:
            SHOWN.pop(key, None)


def overlay_review(clip, frame, active_index=-1):
    """The tracked mattes to draw on ``frame`` with Review Mattes on: ``(image name, rgba)``."""
    if not clip.samroto.review:
        return []
    out = []
    for index, obj in enumerate(clip.samroto.objects):
        name = image_name(clip, obj)
        if SHOWN.get((clip.name, obj.obj_id)) == frame and name in bpy.data.images:
            out.append((name, (obj.color[0], obj.color[1], obj.color[2], 0.5 if index == active_index else 0.35)))
    return out


@persistent
def on_frame_change(scene, depsgraph=None):
    """Keep the review images on the frame shown (clips with Review Mattes on)."""
    for clip in bpy.data.movieclips:
        settings = getattr(clip, "samroto", None)  # registered at run time (props.py)
        if settings is not None and settings.review:
            try:
                first = clipinfo.first_file_number(clip.filepath, clip.source)
                load_frame(clip, clipinfo.source_frame(scene.frame_current, clip.frame_start, clip.frame_offset,
                                                       first))
            except Exception as exc:  # noqa: BLE001 - a review image must never break playback
                settings.last_message = "Review: %s" % exc


def describe(obj):
    lost = hostkit.lost_frames(scores(obj))
    if not lost:
        return "%s: not lost on any tracked frame" % obj.name if scores(obj) else ""
    shown = ", ".join(str(f) for f in lost[:8]) + (" ..." if len(lost) > 8 else "")
    return "%s lost on %d frame(s): %s" % (obj.name, len(lost), shown)


class SAMROTO_OT_jump_lost(_ClipOperator, bpy.types.Operator):
    bl_idname = "samroto.jump_lost"
    bl_label = "Jump to Lost Frame"
    bl_description = ("Go to the nearest tracked frame where SAM 2's object score says the active object "
                      "(or any object) was lost: occluded or gone")

    direction: EnumProperty(items=[("NEXT", "Next", "The next one after the current frame"),
                                   ("PREVIOUS", "Previous", "The last one before the current frame")],
                            default="NEXT")
    any_object: BoolProperty(name="Any Object", default=False, description="Any object's, not only the active one's")

    def invoke(self, context, event):
        self.any_object = self.any_object or event.alt
        return self.execute(context)

    def execute(self, context):
        clip = target_clip(context)
        settings = clip.samroto
        objects = list(settings.objects) if self.any_object else [o for o in [settings.active_object()] if o]
        current = current_source_frame(context, clip)
        forward = self.direction == "NEXT"
        found = [(f, o) for o in objects for f in [hostkit.next_lost(scores(o), current, forward)] if f is not None]
        if not found:
            who = "any object" if self.any_object else (objects[0].name if objects else "the active object")
            self.report({"INFO"}, "No tracked frame %s %d where %s was lost" % (
                "after" if forward else "before", current, who))
            return {"CANCELLED"}
        frame, obj = (min if forward else max)(found, key=lambda item: item[0])
        first = clipinfo.first_file_number(clip.filepath, clip.source)
        context.scene.frame_set(clipinfo.scene_frame(frame, clip.frame_start, clip.frame_offset, first))
        settings.last_message = "Frame %d: SAM 2 lost %s (object score %.2f)" % (frame, obj.name, scores(obj)[frame])
        self.report({"INFO"}, settings.last_message)
        _redraw(context)
        return {"FINISHED"}


def on_review_toggle(settings, context):
    """Review Mattes switched on: load the current frame's mattes at once."""
    clip = settings.id_data  # the MovieClip the settings live on
    if isinstance(clip, bpy.types.MovieClip) and settings.review:
        load_frame(clip, current_source_frame(context, clip))


props.ON_CHANGE["review"] = on_review_toggle

CLASSES = [SAMROTO_OT_jump_lost]


def register():
    if on_frame_change not in bpy.app.handlers.frame_change_post:
        bpy.app.handlers.frame_change_post.append(on_frame_change)


def unregister():
    if on_frame_change in bpy.app.handlers.frame_change_post:
        bpy.app.handlers.frame_change_post.remove(on_frame_change)
    SHOWN.clear()
