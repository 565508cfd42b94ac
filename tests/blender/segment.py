"""Inside Blender, against a real bridge (micro fixture model): Segment Everything through the
add-on's operators (issue 20). The automatic masks of the current frame are shown over the
clip; two of them are picked by clicking (a click toggles the smallest mask under it: a
third one picked and unpicked again); Add Picked as Objects makes each an object whose
prompt on that frame is that mask; Track tracks them. Also: Esc (cancel) mid-way, and bad
extra parameters. The driver (tests/test_blender.py) checks the pixels.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

import bpy  # noqa: E402
import numpy as np  # noqa: E402

from helpers import args, image_pixels, open_on_bridge, panel, result, set_source_frame, track  # noqa: E402

a = args()
clip = open_on_bridge(a)
from samroto_blender import automask, live, overlay  # noqa: E402

out = {}
W, H = clip.size
FRAME = a["frame"]
settings = clip.samroto
settings.auto_points_per_side = a["options"]["points_per_side"]
settings.auto_pred_iou = a["options"]["pred_iou_thresh"]
settings.auto_stability = a["options"]["stability_score_thresh"]
extra = json.dumps({"mask_threshold": a["options"]["mask_threshold"]})
set_source_frame(clip, FRAME)

# Bad extra parameters: a clear error, nothing shown.
try:
    bpy.ops.samroto.segment_everything(extra="{mask_threshold: 1")
    out["bad_extra"] = ["no error", settings.last_message]
except RuntimeError as exc:  # bpy.ops raises what the operator reported as an error
    out["bad_extra"] = [str(exc), settings.last_message]

# Esc mid-way (what the modal operator does on Esc): the job ends cancelled, nothing shown.
job = automask.SegmentJob(bpy.context, clip, json.dumps({"points_per_batch": 1})).start()
automask.JOBS[clip.name] = job
while job.done == 0 and job.step(bpy.context) == "RUNNING":
    time.sleep(0.02)
job.cancel()
while job.step(bpy.context) == "RUNNING":
    time.sleep(0.02)
out["cancel"] = {"state": job.state, "done": job.done, "total": job.total, "message": job.message,
                 "found": clip.name in automask.FOUND, "jobs": list(automask.JOBS)}

# Segment Everything on the current frame.
out["segment_op"] = list(bpy.ops.samroto.segment_everything(extra=extra))
masks = automask.FOUND[clip.name]
out["message"] = settings.last_message
out["masks"] = [{"index": m.index, "bbox": list(m.bbox), "area": m.area, "path": m.mask_path,
                 "iou": m.predicted_iou, "stability": m.stability_score} for m in masks]
out["overlay"] = [[name, [round(c, 3) for c in rgba], index] for name, rgba, _, index in
                  automask.overlay_masks(clip, FRAME)]
out["overlay_images"] = {name: list(bpy.data.images[name].size) for name, _, _, _ in
                         automask.overlay_masks(clip, FRAME)}
out["overlay_other_frame"] = automask.overlay_masks(clip, FRAME + 1)
out.update(panel(clip))  # what the panel shows with the masks found


def mask_pixels(path):
    """A mask PNG's first channel (a grey PNG has no alpha), rows top-down."""
    return image_pixels(path)[..., 0]


# Where to click: a pixel whose smallest covering mask is the one wanted (rows top-down).
pixels = {m.index: mask_pixels(m.mask_path) > 0.5 for m in masks}
areas = {m.index: m.area for m in masks}


def click_for(index):
    inside = pixels[index].copy()
    for other, px in pixels.items():
        if other != index and areas[other] <= areas[index]:
            inside &= ~px
    ys, xs = np.nonzero(inside)
    if not len(xs):
        return None
    i = len(xs) // 2
    return ((xs[i] + 0.5) / W, 1.0 - (ys[i] + 0.5) / H)  # Blender's clip space, y up


clicks = {m.index: click_for(m.index) for m in masks}
reachable = [i for i, c in clicks.items() if c is not None]
want = [reachable[0], reachable[len(reachable) // 2]]  # the best mask and one from the middle
other = next(i for i in reachable if i not in want)
out["want"] = want
out["pick_ops"] = [list(bpy.ops.samroto.pick_mask(co=clicks[i])) for i in (want[0], other, want[1])]
out["picked_three"] = sorted(automask.PICKED[clip.name])
out["unpick_op"] = list(bpy.ops.samroto.pick_mask(co=clicks[other]))  # a second click unpicks it
out["picked"] = sorted(automask.PICKED[clip.name])
out["overlay_picked"] = sorted(index for _, rgba, _, index in automask.overlay_masks(clip, FRAME) if rgba[3] > 0.5)
out["miss_op"] = list(bpy.ops.samroto.pick_mask(co=(2.0, 2.0)))  # outside the frame: nothing

# Add Picked as Objects: each picked mask -> an object whose prompt on the frame is that mask.
out["add_op"] = list(bpy.ops.samroto.add_picked())
out["objects"] = [{"id": o.obj_id, "name": o.name, "masks": [[m.frame, bpy.path.abspath(m.filepath), m.candidate]
                                                           for m in o.masks], "points": len(o.points)}
                  for o in settings.objects]
out["after_add"] = {"found": clip.name in automask.FOUND, "message": settings.last_message}
out["live"] = {o.name: live.PREVIEWS[(clip.name, o.obj_id)].paths.get(o.obj_id) for o in settings.objects}
out["live_overlay"] = [name for name, _ in overlay.overlay_mattes(clip, FRAME)]
out["encoder_runs"] = [live.PREVIEWS[(clip.name, o.obj_id)].encoder_runs for o in settings.objects]

# Track them (both ways from the frame over the clip).
out["track"] = track(clip)

# Review: the tracked mattes drawn on the frame shown, and jumps to where SAM 2 lost an object.
from samroto_blender import review  # noqa: E402
out["scores"] = {o.name: review.scores(o) for o in settings.objects}
settings.review = True
out["review_here"] = [name for name, _ in review.overlay_review(clip, FRAME)]
set_source_frame(clip, 1005)  # the frame-change handler loads that frame's mattes
out["review_1005"] = {name: bpy.path.abspath(bpy.data.images[name].filepath)
                      for name, _ in review.overlay_review(clip, 1005)}
out["review_other"] = review.overlay_review(clip, 1004)


def jumps(start, direction):
    set_source_frame(clip, start)
    seen = []
    while bpy.ops.samroto.jump_lost(direction=direction, any_object=True) == {"FINISHED"} and len(seen) < 20:
        seen.append(live.current_source_frame(bpy.context, clip))
    return seen


out["jumps_next"] = jumps(1001, "NEXT")
out["jumps_previous"] = jumps(1008, "PREVIOUS")
out["jump_message"] = settings.last_message
out["review_label"] = review.describe(settings.objects[0])

# Finishing (issue 18 item 5): the panel's controls, previewed on the frame, applied to a Track.
settings.output_dir = "//finished/"  # the first track's mattes stay where they are
settings.finish_custom = True
for prop, value in a["finish"].items():
    setattr(settings, prop, value)
set_source_frame(clip, FRAME)
settings.active_index = 0
out["finish_preview_op"] = list(bpy.ops.samroto.show_matte())
first_obj = settings.objects[0]
out["finish_preview"] = live.PREVIEWS[(clip.name, first_obj.obj_id)].paths.get(first_obj.obj_id)
from samroto_blender import finishing  # noqa: E402
out["finish_overrides"] = finishing.overrides(settings)
out["finished_track"] = track(clip)
live.close_all()
result(out)
sys.stdout.flush()
os._exit(0)  # as interactive.py: bpy 4.5's exit handlers can hang after a bridge session
