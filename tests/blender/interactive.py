"""Inside Blender, against a real bridge (micro fixture model): the Live Matte loop through
the add-on's operators (issue 18). A click gives the frame's matte without a Track (an
image the overlay draws over the clip); a second click on the frame is served from cached
image features (the session's image-encoder runs stay at 1); a single click offers SAM 2's
three candidates, and choosing candidate 2 makes it the frame's mask prompt, which Track
uses. The Place Prompts mode's asynchronous requests: a dragged box's 30 updates cost a
few requests, the newest winning. The driver (tests/test_blender.py) checks the files.
"""

import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

import bpy  # noqa: E402

from helpers import args, open_on_bridge, result, set_source_frame, track  # noqa: E402

a = args()
clip = open_on_bridge(a)
from samroto_blender import live, overlay, tracking  # noqa: E402

out = {}
W, H = clip.size


def co(x, y):  # source pixels (y down) -> Blender's normalised clip space (y up)
    return (x / W, 1.0 - y / H)


def snapshot(obj):
    got = live.PREVIEWS.get((clip.name, obj.obj_id))
    return {"frame": got.frame, "encoded": got.encoded, "encoder_runs": got.encoder_runs,
            "candidates": [[c.index, round(c.iou, 4), c.path] for c in got.candidates], "best": got.best,
            "path": got.paths.get(obj.obj_id), "seconds": round(got.seconds, 3),
            "message": clip.samroto.last_message}


bpy.ops.samroto.object_add(name="car")
car = clip.samroto.objects["car"]
set_source_frame(clip, 1001)

# 1. A click: the frame's matte at once, no Track (the image encoder runs: the first prompt here).
bpy.ops.samroto.add_point(co=co(*a["hero"]))
out["first"] = {"op": list(bpy.ops.samroto.show_matte()), **snapshot(car)}
image = bpy.data.images.get(live.image_name(clip, car))
out["first"]["image"] = None if image is None else [list(image.size), bpy.path.abspath(image.filepath)]
out["overlay"] = [[name, [round(c, 3) for c in rgba]] for name, rgba in overlay.overlay_mattes(clip, 1001, 0)]
out["overlay_other_frame"] = overlay.overlay_mattes(clip, 1002, 0)

# 2. A second click on the same frame: served from the cached features (counter unchanged).
bpy.ops.samroto.add_point(co=co(8, 8), positive=False)
out["second"] = {"op": list(bpy.ops.samroto.show_matte()), **snapshot(car)}

# 3. A single click elsewhere: three candidates; Track with the one SAM 2 ranks best...
bpy.ops.samroto.clear_prompts(scope="FRAME")
bpy.ops.samroto.add_point(co=co(*a["ambiguous"]))
bpy.ops.samroto.show_matte()
out["click"] = snapshot(car)
clip.samroto.direction = "FORWARD"


out["track_best"] = best = track(clip, limit=120.0)
folder = os.path.dirname(best["patterns"]["car"])
kept = os.path.join(a["out"], "best")
shutil.copytree(folder, kept, ignore=shutil.ignore_patterns("live"))
best["patterns"] = {"car": os.path.join(kept, os.path.basename(best["patterns"]["car"]))}

# ...then choose candidate 2: the frame's mask prompt, and Track follows it.
out["choose_op"] = list(bpy.ops.samroto.choose_candidate(index=2))
out["chosen"] = snapshot(car)
out["masks"] = [[m.frame, bpy.path.abspath(m.filepath), m.candidate] for m in car.masks]
out["panel_message"] = clip.samroto.last_message
out["track_chosen"] = track(clip, limit=120.0)
# a new click on that frame drops the choice (its candidates belong to the old click)
bpy.ops.samroto.add_point(co=co(*a["ambiguous"]))
out["masks_after_click"] = len(car.masks)

# Mask from Image: a file, or an Image datablock of the clip's size, as the prompt on a frame.
bpy.ops.samroto.object_add(name="prop")
prop = clip.samroto.objects["prop"]
set_source_frame(clip, 1003)
out["mask_file_op"] = list(bpy.ops.samroto.mask_prompt(filepath=out["masks"][0][1]))
out["mask_file_preview"] = snapshot(prop)
set_source_frame(clip, 1004)
roto = bpy.data.images.new("roto", W, H, alpha=True)
import numpy as np  # noqa: E402
pixels = np.zeros((H, W, 4), np.float32)
pixels[20:60, 30:80, :] = 1.0  # rows bottom-up in Blender: a rectangle
roto.pixels.foreach_set(pixels.ravel())
out["mask_image_op"] = list(bpy.ops.samroto.mask_prompt(image="roto"))
out["mask_image"] = [[m.frame, bpy.path.abspath(m.filepath), m.candidate] for m in prop.masks]
out["prop_prompts"] = tracking.prompts_document(clip)["objects"][1]["prompts"]
clip.samroto.active_index = 0

# 4. The Place Prompts mode's asynchronous Live Matte: a box dragged with 30 updates in a
# second becomes a few requests, the newest winning (Blender's timers do not run in
# background mode: the script calls the timer function, live.poll, itself).
bpy.ops.samroto.clear_prompts(scope="FRAME")
set_source_frame(clip, 1002)
boxes = [((0.2, 0.2), (0.45 + 0.01 * i, 0.7)) for i in range(30)]
t0 = time.time()
for box in boxes:
    live.request_async(bpy.context, clip, box=box)
    time.sleep(1.0 / 30)
loop = live.LOOPS[clip.name]
loop.wait_idle(30)
answers = loop.take()
for _, answer in answers:
    live.show(clip, answer)
live.poll()
last = live.PREVIEWS[(clip.name, car.obj_id)]
out["drag"] = {"pushed": loop.debouncer.pushed, "sent": loop.debouncer.sent, "frame": last.frame,
               "answered": len(answers), "last_box": answers[-1][0][5]["box"], "errors": [
                   str(r) for _, r in answers if isinstance(r, Exception)],
               "seconds": round(time.time() - t0, 2), "encoder_runs": last.encoder_runs}
live.close_all()
result(out)
# bpy 4.5's exit handlers hung after this script (in its own delayed_close_thread_run, a
# condition variable destroyed at exit while its thread waits on it): the result is out, so
# leave without them.
sys.stdout.flush()
os._exit(0)
