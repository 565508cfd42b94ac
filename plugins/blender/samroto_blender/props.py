"""Prompts and settings stored on the Movie Clip, so the .blend owns them.

Each clip gets ``clip.samroto`` (a PropertyGroup): a list of objects, each with its points
and boxes. Frames are the source's own frame numbers (see clipinfo); positions are Blender's
normalised clip coordinates (0..1, y up), so they survive proxies and scene offsets. A bridge
restart loses nothing: a session is rebuilt from these on every Track.
"""

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, FloatVectorProperty,
                       IntProperty, PointerProperty, StringProperty)

# Blender 4.5+ warns about "//" paths unless the property says it takes them.
_RELATIVE = {"options": {"PATH_SUPPORTS_BLEND_RELATIVE"}} if bpy.app.version >= (4, 5, 0) else {}

# Distinct, readable colours for new objects (cycled).
PALETTE = [
    (1.0, 0.35, 0.2), (0.2, 0.75, 1.0), (0.45, 1.0, 0.3), (1.0, 0.85, 0.2),
    (0.85, 0.4, 1.0), (1.0, 0.45, 0.7), (0.3, 1.0, 0.85), (0.9, 0.9, 0.9),
]


# What a change of a setting does, set by the module that knows (live.py: "finish",
# review.py: "review"): they import this module, so it cannot import them.
ON_CHANGE: dict = {}


def _changed(what, settings, context):
    handler = ON_CHANGE.get(what)
    if handler is not None:
        handler(settings, context)


def _finish_changed(settings, context):
    _changed("finish", settings, context)


def _review_changed(settings, context):
    _changed("review", settings, context)


class SamrotoPoint(bpy.types.PropertyGroup):
    frame: IntProperty(name="Frame", description="Source frame number")
    co: FloatVectorProperty(name="Position", size=2, description="Normalised clip position (y up)")
    positive: BoolProperty(name="Positive", default=True,
                           description="Include (positive) or exclude (negative) this point")


class SamrotoBox(bpy.types.PropertyGroup):
    frame: IntProperty(name="Frame", description="Source frame number")
    co_min: FloatVectorProperty(name="Min", size=2, description="Lower-left corner (normalised)")
    co_max: FloatVectorProperty(name="Max", size=2, description="Upper-right corner (normalised)")


class SamrotoMask(bpy.types.PropertyGroup):
    """A mask prompt on one frame: the frame's whole prompt for its object (its points and
    box there stay, drawn, but are not sent). A chosen SAM 2 candidate, or a host image."""
    frame: IntProperty(name="Frame", description="Source frame number")
    filepath: StringProperty(name="Mask", subtype="FILE_PATH", **_RELATIVE,
                             description="The mask image (the clip's size; inside: alpha, else any channel > 0)")
    candidate: IntProperty(name="Candidate", default=0, min=0, max=3,
                           description="SAM 2's candidate it is (1-3), 0 for a mask from an image")


class SamrotoObject(bpy.types.PropertyGroup):
    # `name` (from PropertyGroup) is what the artist sees and what the matte files are named by.
    obj_id: IntProperty(name="Id", description="samroto object id (stable across renames)")
    color: FloatVectorProperty(name="Colour", subtype="COLOR", size=3, min=0.0, max=1.0,
                               default=(1.0, 0.35, 0.2))
    points: CollectionProperty(type=SamrotoPoint)
    boxes: CollectionProperty(type=SamrotoBox)
    masks: CollectionProperty(type=SamrotoMask)
    matte_pattern: StringProperty(
        name="Matte", subtype="FILE_PATH", **_RELATIVE,
        description="The matte sequence written by the last track (#### = frame number)")
    image_name: StringProperty(description="The Image datablock holding the matte sequence")
    scores: StringProperty(description="SAM 2's object score on each tracked frame (JSON {frame: score}; "
                                       "<= 0: the object was lost there)")


class SamrotoClipSettings(bpy.types.PropertyGroup):
    objects: CollectionProperty(type=SamrotoObject)
    active_index: IntProperty(name="Active Object", default=0)
    next_id: IntProperty(default=1)
    direction: EnumProperty(
        name="Direction",
        items=[("BOTH", "Both", "Track forward and backward from the current frame"),
               ("FORWARD", "Forward", "Track from the current frame to the end"),
               ("BACKWARD", "Backward", "Track from the current frame to the start")],
        default="BOTH")
    frame_range: EnumProperty(
        name="Range",
        items=[("CLIP", "Clip", "Every frame of the clip"),
               ("SCENE", "Scene", "The scene's frame range (where the clip covers it)")],
        default="CLIP")
    output_dir: StringProperty(
        name="Output", subtype="DIR_PATH", default="//samroto/", **_RELATIVE,
        description="Where mattes are written (// = next to the .blend)")
    last_message: StringProperty(description="The last tracking result or error, shown in the panel")
    live_matte: BoolProperty(
        name="Live Matte", default=True,
        description="Show the current frame's matte as soon as a prompt changes (no Track needed); "
                    "the first prompt on a frame runs SAM 2's image encoder, later ones reuse it")

    # Finishing (finishing.py): samroto's finish.* settings with Blender's names and units
    finish_custom: BoolProperty(
        name="Finishing", default=False, update=_finish_changed,
        description="Finish the mattes with these controls (previewed on the current frame, applied to "
                    "the whole Track); off: the bridge's own finishing settings")
    finish_refine: BoolProperty(
        name="Refine Edges", default=True, update=_finish_changed,
        description="Snap the matte's edge to the edges in the plate as it is scaled up (off: SAM 2's own "
                    "bilinear edge)")
    finish_refine_radius: FloatProperty(
        name="Edge Radius", default=0.0, min=0.0, max=64.0, subtype="PIXEL",
        update=_finish_changed,
        description="How far from SAM 2's edge the refinement looks, in plate pixels (0: automatic)")
    finish_fill_holes: FloatProperty(
        name="Fill Holes", default=0.0, min=0.0, update=_finish_changed,
        description="Fill holes in the matte up to this area, in plate pixels (0: off)")
    finish_remove_specks: FloatProperty(
        name="Remove Specks", default=0.0, min=0.0, update=_finish_changed,
        description="Remove separate specks up to this area, in plate pixels (0: off)")
    finish_largest_only: BoolProperty(
        name="Largest Piece Only", default=False, update=_finish_changed,
        description="Keep only the largest piece of each object's matte")
    finish_stabilize: FloatProperty(
        name="Temporal Stabilization", default=0.0, min=0.0, max=0.95, subtype="FACTOR",
        update=_finish_changed,
        description="Calm edge chatter where the plate does not move (0: off); moving edges never lag")
    finish_dilate_erode: FloatProperty(
        name="Dilate/Erode", default=0.0, min=-64.0, max=64.0, subtype="PIXEL",
        update=_finish_changed,
        description="Move the matte's edge out (positive) or in (negative) by this many pixels, with a clean "
                    "edge there (as the compositor's Dilate/Erode node)")
    finish_feather: FloatProperty(
        name="Feather", default=0.0, min=0.0, max=64.0, subtype="PIXEL",
        update=_finish_changed,
        description="Soften the edge: the width of the ramp from 10% to 90%, in pixels")
    finish_choke: FloatProperty(
        name="Choke", default=0.0, min=-64.0, max=64.0, subtype="PIXEL",
        update=_finish_changed,
        description="Pull the soft edge in by this many pixels without hardening it (negative spreads it)")
    finish_exclusive: BoolProperty(
        name="Non-Overlapping", default=True, update=_finish_changed,
        description="Objects never share a pixel's coverage: the strongest keeps it")
    review: BoolProperty(
        name="Review Mattes", default=False, update=_review_changed,
        description="Draw every object's tracked matte of the current frame over the clip (step with "
                    "the frame keys; Previous/Next Lost jump to where SAM 2 lost the object)")
    # Segment Everything: Meta's automatic mask generator's main parameters (its defaults)
    auto_points_per_side: IntProperty(
        name="Points per Side", default=32, min=1, max=256,
        description="The grid of clicks the generator tries (32: 32 x 32 clicks); more finds smaller "
                    "objects and takes longer")
    auto_pred_iou: FloatProperty(
        name="Quality", default=0.8, min=0.0, max=1.0,
        description="Keep masks SAM 2 predicts at least this good (pred_iou_thresh); lower shows more")
    auto_stability: FloatProperty(
        name="Stability", default=0.95, min=0.0, max=1.0,
        description="Keep masks whose outline barely moves with the threshold (stability_score_thresh)")
    auto_min_area: IntProperty(
        name="Clean-up Area", default=0, min=0,
        description="Fill holes and drop specks up to this many of SAM 2's low-res pixels "
                    "(min_mask_region_area)")

    def active_object(self):
        if 0 <= self.active_index < len(self.objects):
            return self.objects[self.active_index]
        return None

    def object_by_id(self, obj_id):
        for obj in self.objects:
            if obj.obj_id == obj_id:
                return obj
        return None


CLASSES = [SamrotoPoint, SamrotoBox, SamrotoMask, SamrotoObject, SamrotoClipSettings]


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    # a property registered at run time: no stub knows it
    bpy.types.MovieClip.samroto = PointerProperty(type=SamrotoClipSettings)  # type: ignore[attr-defined,func-returns-value,unused-ignore]


def unregister():
    del bpy.types.MovieClip.samroto  # type: ignore[attr-defined]
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
