"""Convert to Mask: an animated Mask datablock per object, fitted to its matte.

One spline per object (the outline of the largest region on each frame; islands and holes
stay in the image matte), the same number of points on every frame, one shape key per
frame. Mask shape keys have no Python API of their own: they are inserted with
``mask.shape_key_insert`` in a Movie Clip Editor in Mask mode (an area is borrowed and
given back when there is none).
"""

import os

import bpy
import numpy as np

from . import clipinfo, contours
from .results import matte_file


def read_matte(path):
    """A matte file's alpha as float32 [rows bottom-up, columns]."""
    image = bpy.data.images.load(path, check_existing=False)
    try:
        width, height = image.size
        channels = image.channels
        pixels = np.empty(width * height * channels, np.float32)
        image.pixels.foreach_get(pixels)
    finally:
        bpy.data.images.remove(image)
    pixels = pixels.reshape(height, width, channels)
    return pixels[..., 3] if channels == 4 else pixels[..., 0]


def matte_frames(obj):
    """Source frames that have a matte file for ``obj``, ascending."""
    pattern = bpy.path.abspath(obj.matte_pattern)
    folder = os.path.dirname(pattern)
    if not obj.matte_pattern or not os.path.isdir(folder):
        return []
    names = set(os.listdir(folder))
    frames = []
    for frame in range(*_guess_range(obj)):
        if os.path.basename(matte_file(pattern, frame)) in names:
            frames.append(frame)
    return frames


def _guess_range(obj):
    clip = obj.id_data
    first = clipinfo.first_file_number(clip.filepath, clip.source)
    lo, hi = clipinfo.source_range(clip.frame_start, clip.frame_offset, clip.frame_duration, first)
    return lo, hi + 1


class _ClipEditorArea:
    """A Movie Clip Editor area in Mask mode for the shape-key operator (borrowed if needed)."""

    def __init__(self, context, clip, mask):
        self.window = context.window or context.window_manager.windows[0]
        self.screen = self.window.screen
        areas = [a for a in self.screen.areas if a.type == "CLIP_EDITOR"]
        self.area = areas[0] if areas else max(self.screen.areas, key=lambda a: a.width * a.height)
        self.old_type = None if areas else self.area.type
        self.area.type = "CLIP_EDITOR"
        self.space = self.area.spaces.active
        self.old = (self.space.clip, self.space.mode, self.space.mask)
        self.space.clip, self.space.mode, self.space.mask = clip, "MASK", mask
        self.region = next(r for r in self.area.regions if r.type == "WINDOW")

    def override(self):
        return bpy.context.temp_override(window=self.window, screen=self.screen, area=self.area,
                                         region=self.region, space_data=self.space)

    def restore(self):
        clip, mode, mask = self.old
        if self.old_type is not None:
            self.space.mode = mode
            self.area.type = self.old_type
        else:
            self.space.clip, self.space.mode = clip, mode


def convert(context, clip, obj):
    """Build (or rebuild) the Mask for ``obj``; returns (mask, point count, frames keyed)."""
    frames = matte_frames(obj)
    if not frames:
        raise clipinfo.ClipError(
            "%s has no matte files yet: track the clip first, then Convert to Mask." % obj.name)
    width, height = clip.size
    outlines = [contours.outline(read_matte(matte_file(bpy.path.abspath(obj.matte_pattern), f)))
                for f in frames]
    count, fitted = contours.fit_sequence(outlines)

    name = "%s %s" % (clip.name, obj.name)
    mask = bpy.data.masks.get(name) or bpy.data.masks.new(name=name)
    while mask.layers:
        mask.layers.remove(mask.layers[0])
    layer = mask.layers.new(name=obj.name)
    spline = layer.splines.new()
    spline.points.add(count - 1)
    spline.use_cyclic = True
    spline.use_fill = True
    for point in spline.points:
        point.handle_type = "AUTO"
        point.select = True  # shape_key_insert keys only layers with selected points

    first = clipinfo.first_file_number(clip.filepath, clip.source)
    scene = context.scene
    scene_frames = [clipinfo.scene_frame(f, clip.frame_start, clip.frame_offset, first) for f in frames]
    mask.frame_start, mask.frame_end = min(scene_frames), max(scene_frames)
    keep_frame = scene.frame_current
    borrowed = _ClipEditorArea(context, clip, mask)
    try:
        with borrowed.override():
            for frame, points in zip(scene_frames, fitted):
                scene.frame_set(frame)
                for point, (x, y) in zip(spline.points, points):
                    point.co = clipinfo.mask_coords((x / width, y / height), (width, height))
                result = bpy.ops.mask.shape_key_insert()
                if "FINISHED" not in result:
                    raise clipinfo.ClipError("Blender refused to key the mask on frame %d" % frame)
    finally:
        borrowed.restore()
        scene.frame_set(keep_frame)
    return mask, count, len(frames)


class SAMROTO_OT_convert_to_mask(bpy.types.Operator):
    bl_idname = "samroto.convert_to_mask"
    bl_label = "Convert to Mask"
    bl_description = ("Make an animated Mask per object from its matte (one spline, a shape "
                      "key per frame) to refine by hand")
    bl_options = {"REGISTER", "UNDO"}

    all_objects: bpy.props.BoolProperty(name="All Objects", default=True)

    @classmethod
    def poll(cls, context):
        from .ops_prompts import target_clip
        return target_clip(context) is not None

    def execute(self, context):
        from .ops_prompts import target_clip
        clip = target_clip(context)
        settings = clip.samroto
        objects = list(settings.objects) if self.all_objects else [settings.active_object()]
        made = []
        for obj in objects:
            if obj is None:
                continue
            try:
                mask, count, keyed = convert(context, clip, obj)
            except clipinfo.ClipError as exc:
                self.report({"ERROR"}, str(exc))
                return {"CANCELLED"}
            made.append("%s (%d points, %d keys)" % (mask.name, count, keyed))
        if not made:
            self.report({"ERROR"}, "No objects: add one and track it first")
            return {"CANCELLED"}
        self.report({"INFO"}, "Masks: " + ", ".join(made))
        return {"FINISHED"}
