"""Operators that edit the prompts stored on the clip: objects, points, boxes.

``samroto.add_point`` / ``samroto.add_box`` take normalised clip coordinates; scripts and
the Place Prompts mode (tool.py) use them alike.
"""

from typing import TYPE_CHECKING, Any

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatVectorProperty, IntProperty, StringProperty

from . import clipinfo
from .props import PALETTE


def target_clip(context):
    """The clip the artist is working on: the Clip Editor's, else the scene's active clip."""
    clip = getattr(context, "edit_movieclip", None)
    if clip is None:
        space = getattr(context, "space_data", None)
        clip = getattr(space, "clip", None) if space and space.type == "CLIP_EDITOR" else None
    if clip is None and context.scene is not None:
        clip = context.scene.active_clip
    return clip


def current_source_frame(context, clip):
    first = clipinfo.first_file_number(clip.filepath, clip.source)
    return clipinfo.source_frame(context.scene.frame_current, clip.frame_start, clip.frame_offset, first)


def ensure_object(settings):
    """The active object, creating "Object 1" when the clip has none yet."""
    obj = settings.active_object()
    if obj is None:
        obj = add_object(settings, "")
    return obj


def add_object(settings, name):
    obj = settings.objects.add()
    obj.obj_id = settings.next_id
    settings.next_id += 1
    obj.name = name or "Object %d" % obj.obj_id
    obj.color = PALETTE[(obj.obj_id - 1) % len(PALETTE)]
    settings.active_index = len(settings.objects) - 1
    return obj


def drop_masks(obj, frame):
    """A new point or box on a frame replaces the object's mask prompt there (a chosen
    candidate belongs to the click it was chosen for)."""
    for i in reversed(range(len(obj.masks))):
        if obj.masks[i].frame == frame:
            obj.masks.remove(i)


def _redraw(context):
    screen = getattr(context, "screen", None)
    for area in (screen.areas if screen else []):
        if area.type == "CLIP_EDITOR":
            area.tag_redraw()


class _ClipOperator:
    """A mix-in of operators on the clip; each user also derives from bpy.types.Operator."""
    if TYPE_CHECKING:  # what that base provides, for the type check (tests/test_typecheck.py); no
        # annotations at run time, where Blender would read them as operator properties
        poll_message_set: Any
        report: Any

    @classmethod
    def poll(cls, context):
        if target_clip(context) is None:
            cls.poll_message_set("Open a clip in the Movie Clip Editor first")
            return False
        return True

    def _fail(self, clip, exc):
        """Report ``exc`` as the operator's error, kept on the clip for the panel too."""
        clip.samroto.last_message = str(exc)
        self.report({"ERROR"}, str(exc))
        return {"CANCELLED"}


class SAMROTO_OT_object_add(_ClipOperator, bpy.types.Operator):
    bl_idname = "samroto.object_add"
    bl_label = "Add Object"
    bl_description = "Add an object to segment and track (its prompts and matte are its own)"
    bl_options = {"REGISTER", "UNDO"}

    name: StringProperty(name="Name", default="")

    def execute(self, context):
        add_object(target_clip(context).samroto, self.name)
        _redraw(context)
        return {"FINISHED"}


class SAMROTO_OT_object_remove(_ClipOperator, bpy.types.Operator):
    bl_idname = "samroto.object_remove"
    bl_label = "Remove Object"
    bl_description = "Remove the active object and its prompts (its matte files stay on disk)"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        settings = target_clip(context).samroto
        if settings.active_object() is None:
            self.report({"WARNING"}, "No object to remove")
            return {"CANCELLED"}
        settings.objects.remove(settings.active_index)
        settings.active_index = max(0, min(settings.active_index, len(settings.objects) - 1))
        _redraw(context)
        return {"FINISHED"}


class SAMROTO_OT_add_point(_ClipOperator, bpy.types.Operator):
    bl_idname = "samroto.add_point"
    bl_label = "Add Point"
    bl_description = "Add a positive or negative point for the active object on the current frame"
    bl_options = {"REGISTER", "UNDO"}

    co: FloatVectorProperty(name="Position", size=2, description="Normalised clip position (y up)")
    positive: BoolProperty(name="Positive", default=True)
    frame: IntProperty(name="Frame", default=-(2 ** 31) + 1,
                       description="Source frame number (default: the current frame)")

    def execute(self, context):
        clip = target_clip(context)
        if not (0.0 <= self.co[0] <= 1.0 and 0.0 <= self.co[1] <= 1.0):
            self.report({"WARNING"}, "Click inside the clip's frame to place a point")
            return {"CANCELLED"}
        obj = ensure_object(clip.samroto)
        point = obj.points.add()
        point.frame = self.frame if self.frame != -(2 ** 31) + 1 else current_source_frame(context, clip)
        point.co = self.co
        point.positive = self.positive
        drop_masks(obj, point.frame)
        _redraw(context)
        return {"FINISHED"}


class SAMROTO_OT_add_box(_ClipOperator, bpy.types.Operator):
    bl_idname = "samroto.add_box"
    bl_label = "Add Box"
    bl_description = "Set the box around the active object on the current frame (one per frame)"
    bl_options = {"REGISTER", "UNDO"}

    co_a: FloatVectorProperty(name="Corner", size=2)
    co_b: FloatVectorProperty(name="Opposite Corner", size=2)
    frame: IntProperty(name="Frame", default=-(2 ** 31) + 1)

    def execute(self, context):
        clip = target_clip(context)
        lo = [max(0.0, min(self.co_a[i], self.co_b[i])) for i in (0, 1)]
        hi = [min(1.0, max(self.co_a[i], self.co_b[i])) for i in (0, 1)]
        size = clip.size
        if (hi[0] - lo[0]) * size[0] < 2 or (hi[1] - lo[1]) * size[1] < 2:
            self.report({"WARNING"}, "Drag a larger box (at least 2 pixels each way, inside the frame)")
            return {"CANCELLED"}
        obj = ensure_object(clip.samroto)
        frame = self.frame if self.frame != -(2 ** 31) + 1 else current_source_frame(context, clip)
        # SAM 2 takes one box per object per frame: a new box replaces the old one.
        for i in reversed(range(len(obj.boxes))):
            if obj.boxes[i].frame == frame:
                obj.boxes.remove(i)
        box = obj.boxes.add()
        box.frame, box.co_min, box.co_max = frame, lo, hi
        drop_masks(obj, frame)
        _redraw(context)
        return {"FINISHED"}


class SAMROTO_OT_clear_prompts(_ClipOperator, bpy.types.Operator):
    bl_idname = "samroto.clear_prompts"
    bl_label = "Clear Prompts"
    bl_description = "Remove prompts of the active object"
    bl_options = {"REGISTER", "UNDO"}

    scope: EnumProperty(items=[("FRAME", "This Frame", "Prompts on the current frame"),
                               ("OBJECT", "All Frames", "Every prompt of the active object")],
                        default="FRAME")

    def execute(self, context):
        clip = target_clip(context)
        obj = clip.samroto.active_object()
        if obj is None:
            return {"CANCELLED"}
        frame = current_source_frame(context, clip)
        for items in (obj.points, obj.boxes, obj.masks):
            for i in reversed(range(len(items))):
                if self.scope == "OBJECT" or items[i].frame == frame:
                    items.remove(i)
        _redraw(context)
        return {"FINISHED"}


CLASSES = [SAMROTO_OT_object_add, SAMROTO_OT_object_remove, SAMROTO_OT_add_point,
           SAMROTO_OT_add_box, SAMROTO_OT_clear_prompts]
