"""Convert to Mask: an animated Mask datablock per object, fitted to its matte.

The shapes are samroto's (``samroto.core.splines``, the same fitting as Nuke's Convert to
Roto): samroto's Python runs the shared exporter through the host kit
(``hostkit.export_shapes(..., "blender", ...)``), which writes mask JSON (one layer per
piece of each object, one cyclic spline with the same point count on every frame, free
Bezier handles, Blender's mask coordinates; core/splines/blender.py). This module only
turns that JSON into Mask datablocks. Mask shape keys have no Python API of their own:
they are inserted with ``mask.shape_key_insert`` in a Movie Clip Editor in Mask mode (an
area is borrowed and given back when there is none).
"""

import json
import os
import shutil
import tempfile

import bpy

from . import clipinfo, prefs
from .kit import HOW_TO_SET, hostkit


def matte_sequences(objects):
    """[(object name, absolute matte pattern)] of the objects with matte files on disk."""
    found = []
    for obj in objects:
        pattern = bpy.path.abspath(obj.matte_pattern) if obj.matte_pattern else ""
        if pattern and hostkit.frames_on_disk(pattern):
            found.append((obj.name, pattern))
    return found


def export_masks(context, objects):
    """The exporter's mask JSON (a dict) for ``objects``' matte sequences."""
    folder = tempfile.mkdtemp(prefix="samroto_mask_")
    try:
        out = os.path.join(folder, "mask.json")
        hostkit.export_shapes(prefs.bridge(context)["python"], "blender", out, matte_sequences(objects),
                              how_to_set=HOW_TO_SET)
        with open(out) as fh:
            return json.load(fh)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


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


def build_mask(context, clip, name, layers):
    """The Mask ``name`` (rebuilt when it exists) holding ``layers`` (the JSON's), one shape
    key per keyed frame; returns (mask, points, frames keyed)."""
    mask = bpy.data.masks.get(name) or bpy.data.masks.new(name=name)
    while mask.layers:
        mask.layers.remove(mask.layers[0])
    made = []  # (spline data, its keys by source frame, the Blender spline)
    for layer_data in layers:
        layer = mask.layers.new(name=layer_data["name"])
        for data in layer_data["splines"]:
            spline = layer.splines.new()
            spline.points.add(data["n_points"] - 1)
            spline.use_cyclic = bool(data["cyclic"])
            spline.use_fill = True
            for point in spline.points:
                point.handle_type = data["handle_type"]
            made.append(({k["frame"]: k["points"] for k in data["keys"]}, spline))
    first = clipinfo.first_file_number(clip.filepath, clip.source)
    frames = sorted({f for keys, _ in made for f in keys})
    scene_frames = [clipinfo.scene_frame(f, clip.frame_start, clip.frame_offset, first) for f in frames]
    mask.frame_start, mask.frame_end = min(scene_frames), max(scene_frames)
    scene = context.scene
    keep_frame = scene.frame_current
    borrowed = _ClipEditorArea(context, clip, mask)
    try:
        with borrowed.override():
            for frame, at in zip(frames, scene_frames):
                scene.frame_set(at)
                for keys, spline in made:
                    rows = keys.get(frame)
                    for i, point in enumerate(spline.points):
                        point.select = rows is not None  # shape_key_insert keys layers with selected points
                        if rows is not None:
                            r = rows[i]
                            point.co, point.handle_left, point.handle_right = r[0:2], r[2:4], r[4:6]
                # stub gap (fake-bpy-module 4.2-5.0): operator calls typed as returning None
                if "FINISHED" not in bpy.ops.mask.shape_key_insert():  # type: ignore[operator,attr-defined,unused-ignore]
                    raise clipinfo.ClipError("Blender refused to key the mask on frame %d" % frame)
    finally:
        borrowed.restore()
        scene.frame_set(keep_frame)
    return mask, sum(len(s.points) for _, s in made), len(frames)


def convert(context, clip, objects):
    """Build (or rebuild) a Mask ``<clip> <object>`` per object that has mattes; returns
    [(mask, points, frames keyed)]."""
    data = export_masks(context, objects)
    by_object: dict = {}
    for layer in data["layers"]:
        by_object.setdefault(layer["object"], []).append(layer)
    return [build_mask(context, clip, "%s %s" % (clip.name, obj.name), by_object[obj.name])
            for obj in objects if obj.name in by_object]


class SAMROTO_OT_convert_to_mask(bpy.types.Operator):
    bl_idname = "samroto.convert_to_mask"
    bl_label = "Convert to Mask"
    bl_description = ("Make an animated Mask per object from its matte (a spline per piece, a "
                      "shape key per frame) to refine by hand")
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
        objects = [o for o in objects if o is not None]
        if not objects:
            self.report({"ERROR"}, "No objects: add one and track it first")
            return {"CANCELLED"}
        try:
            made = convert(context, clip, objects)
        except hostkit.HostError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, "Masks: " + ", ".join("%s (%d points, %d keys)" % (m.name, n, k) for m, n, k in made))
        return {"FINISHED"}
