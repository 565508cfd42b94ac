"""samroto for Blender: SAM 2 mattes in the Movie Clip Editor.

In the Movie Clip Editor's sidebar (samroto tab), press Place Prompts and click on an
object (or Segment Everything and pick SAM 2's automatic masks), press Track, and get a matte on every frame, wired into the compositor; Convert to
Mask makes an animated Mask to refine by hand. The SAM 2 work runs in the local samroto
bridge; this add-on is a thin client (see docs/blender.md).
"""

bl_info = {
    "name": "samroto (SAM 2 mattes)",
    "author": "samroto authors",
    "version": (0, 1, 0),
    "blender": (4, 2, 0),
    "location": "Movie Clip Editor > Sidebar (N) > samroto",
    "description": "Click an object, track a SAM 2 matte through the clip, composite or convert to Mask",
    "doc_url": "https://github.com/samroto/samroto/blob/main/docs/blender.md",
    "category": "Compositing",
}

import bpy  # noqa: E402

from . import automask, live, ops_prompts, overlay, prefs, props, results, review, to_mask, tool, tracking, ui  # noqa: E402,E501

_CLASSES: list = (prefs.CLASSES + ops_prompts.CLASSES + tool.CLASSES + live.CLASSES + automask.CLASSES
            + review.CLASSES + tracking.CLASSES + results.CLASSES + [to_mask.SAMROTO_OT_convert_to_mask] + ui.CLASSES)


def register():
    props.register()
    for cls in _CLASSES:
        bpy.utils.register_class(cls)
    overlay.register()
    review.register()


def unregister():
    for job in list(tracking.ACTIVE.values()) + list(automask.JOBS.values()):
        job.cancel()
    automask.FOUND.clear()
    automask.PICKED.clear()
    live.close_all()
    review.unregister()
    overlay.unregister()
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
    props.unregister()
