"""The samroto panel in the Movie Clip Editor's sidebar (N panel, "samroto" tab)."""

import bpy

from . import tracking
from .ops_prompts import current_source_frame


class SAMROTO_UL_objects(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0, flt_flag=0):
        row = layout.row(align=True)
        row.prop(item, "color", text="")
        row.prop(item, "name", text="", emboss=False)
        row.label(text="%d pts, %d boxes" % (len(item.points), len(item.boxes)))


class SAMROTO_PT_main(bpy.types.Panel):
    bl_space_type = "CLIP_EDITOR"
    bl_region_type = "UI"
    bl_category = "samroto"
    bl_label = "samroto (SAM 2)"

    @classmethod
    def poll(cls, context):
        return getattr(context.space_data, "clip", None) is not None

    def draw(self, context):
        layout = self.layout
        clip = context.space_data.clip
        settings = clip.samroto

        layout.label(text="Objects")
        row = layout.row()
        row.template_list("SAMROTO_UL_objects", "", settings, "objects", settings, "active_index", rows=3)
        col = row.column(align=True)
        col.operator("samroto.object_add", icon="ADD", text="")
        col.operator("samroto.object_remove", icon="REMOVE", text="")

        obj = settings.active_object()
        if obj is None:
            layout.operator("samroto.place_prompts", icon="RESTRICT_SELECT_OFF")
        else:
            frame = current_source_frame(context, clip)
            here = sum(1 for p in obj.points if p.frame == frame) + sum(1 for b in obj.boxes if b.frame == frame)
            box = layout.box()
            box.label(text="Frame %d: %d prompt(s) for %s" % (frame, here, obj.name))
            box.operator("samroto.place_prompts", icon="RESTRICT_SELECT_OFF")
            row = box.row(align=True)
            row.operator("samroto.clear_prompts", text="Clear Frame").scope = "FRAME"
            row.operator("samroto.clear_prompts", text="Clear Object").scope = "OBJECT"
            draw_live(box, clip, obj, frame)

        draw_segment(layout.box(), clip, current_source_frame(context, clip))

        layout.separator()
        layout.prop(settings, "direction")
        layout.prop(settings, "frame_range")
        layout.prop(settings, "output_dir")
        if clip.name in tracking.ACTIVE:
            job = tracking.ACTIVE[clip.name]
            layout.label(text="Tracking: %d/%d frames" % (len(job.done_frames), job.track.total), icon="TIME")
            layout.operator("samroto.cancel", icon="CANCEL")
        else:
            layout.operator("samroto.track", icon="TRACKING", text="Track")
        draw_finishing(layout.box(), settings)
        draw_review(layout, clip, settings)
        row = layout.row(align=True)
        row.operator("samroto.setup_compositor", icon="NODETREE")
        row.operator("samroto.convert_to_mask", icon="MOD_MASK")
        if settings.last_message:
            layout.label(text=settings.last_message, icon="INFO")


def draw_finishing(layout, settings):
    """The finishing controls (finishing.py), shown when Finishing is on."""
    layout.prop(settings, "finish_custom")
    if not settings.finish_custom:
        return
    col = layout.column(align=True)
    for prop in ("finish_refine", "finish_refine_radius", "finish_fill_holes", "finish_remove_specks",
                 "finish_largest_only", "finish_stabilize", "finish_dilate_erode", "finish_feather", "finish_choke",
                 "finish_exclusive"):
        col.prop(settings, prop)


def draw_review(layout, clip, settings):
    """Review Mattes and the jumps to where SAM 2 lost the active object (Alt: any object)."""
    from . import review

    row = layout.row(align=True)
    row.prop(settings, "review", icon="HIDE_OFF")
    row.operator("samroto.jump_lost", text="", icon="TRIA_LEFT").direction = "PREVIOUS"
    row.operator("samroto.jump_lost", text="Lost", icon="TRIA_RIGHT").direction = "NEXT"
    obj = settings.active_object()
    text = review.describe(obj) if obj is not None else ""
    if text:
        layout.label(text=text, icon="ERROR" if "lost on" in text else "CHECKMARK")


def draw_segment(layout, clip, frame):
    """Segment Everything: the button (or its progress), the generator's main settings, and
    with masks on this frame, picking and adding them."""
    from . import automask

    settings = clip.samroto
    job = automask.JOBS.get(clip.name)
    if job is not None:
        layout.label(text="Segmenting frame %d: %d/%d clicks (Esc cancels)" % (job.frame, job.done, job.total),
                     icon="TIME")
    else:
        layout.operator("samroto.segment_everything", icon="SELECT_SUBTRACT")
    row = layout.row(align=True)
    row.prop(settings, "auto_points_per_side", text="Points")
    row.prop(settings, "auto_pred_iou")
    row.prop(settings, "auto_stability")
    if automask.found_on(clip, frame) is not None:
        layout.label(text=automask.describe(clip), icon="IMAGE_ALPHA")
        row = layout.row(align=True)
        row.operator("samroto.pick_masks", icon="RESTRICT_SELECT_OFF")
        row.operator("samroto.add_picked", icon="ADD")
        row.operator("samroto.clear_automasks", icon="X", text="")


def draw_live(layout, clip, obj, frame):
    """Live Matte: the toggle, Show Matte, SAM 2's candidates of the frame's click (the
    chosen one pressed) and whether the image encoder ran (live.describe)."""
    from . import live

    row = layout.row(align=True)
    row.prop(clip.samroto, "live_matte")
    row.operator("samroto.show_matte", icon="HIDE_OFF")
    layout.operator("samroto.mask_prompt", icon="IMAGE_DATA")
    preview = live.PREVIEWS.get((clip.name, obj.obj_id))
    if preview is None or preview.frame != frame:
        return
    if preview.candidates:
        row = layout.row(align=True)
        row.label(text="Candidates:")
        for cand in preview.candidates:
            op = row.operator("samroto.choose_candidate", text="%d (%.2f)" % (cand.index + 1, cand.iou),
                              depress=cand.index == preview.best)
            op.index = cand.index + 1
    layout.label(text=live.describe(preview), icon="IMAGE_ALPHA")


CLASSES = [SAMROTO_UL_objects, SAMROTO_PT_main]
