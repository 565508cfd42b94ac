"""Inside Blender: track against a real bridge (`samroto serve` on the micro fixture model,
started by the pytest driver; the add-on finds it through the discovery file in the
"Bridge folder" preference). Each run reports its shot (source, prompts, direction,
frames, colour) and its matte sequences, which the driver compares with `samroto track`'s
(tests/plugin_parity.py); Convert to Mask reports the Mask's keys, which it compares with
core's shapes.

Blender's timers do not fire in background mode, so the script starts the job as the Track
operator's invoke does (``tracking.start_job``) and calls the add-on's event handler
(``tracking.handle_event(context, "TIMER")``, what the modal operator runs on each timer
event) until the job ends.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

import bpy  # noqa: E402
import numpy as np  # noqa: E402

from helpers import (args, enable_addon, image_alpha, load_clip, mask_keys, render_alpha, result,  # noqa: E402
                     set_source_frame)

a = args()
addon = enable_addon()
bpy.ops.wm.read_homefile(use_empty=True)
from samroto_blender import prefs, results, to_mask, tracking  # noqa: E402

out = {}
p = prefs.get()
p.python = ""
p.config_dir = a["empty_config_dir"]
bpy.ops.wm.save_as_mainfile(filepath=a["blend"])
clip = load_clip(a["sequence"])
bpy.ops.samroto.object_add(name="car")
set_source_frame(clip, 1003)
bpy.ops.samroto.add_point(co=(0.4, 0.55))
bpy.ops.samroto.add_box(co_a=(0.1, 0.25), co_b=(0.6, 0.85))

# 1. No bridge running and no samroto Python: a clear message, not a traceback.
try:
    bpy.ops.samroto.track()
    out["no_bridge"] = None
except RuntimeError as exc:
    out["no_bridge"] = str(exc)
out["no_bridge_panel"] = clip.samroto.last_message


def pump(name, limit=120.0):
    t0, state, steps = time.time(), "RUNNING", 0
    while state == "RUNNING" and time.time() - t0 < limit:
        state = tracking.handle_event(bpy.context, "TIMER", name)
        steps += 1
        time.sleep(0.05)
    return state, steps


def shot(job, clip):
    """What the job tracked and where its mattes are (absolute patterns), for the driver."""
    req = job.request
    return {"source": req["source"], "prompts": req["prompts"], "direction": req["direction"],
            "first": req["range"][0], "last": req["range"][1], "color": req["color"],
            "frames": sorted(job.done_frames),
            "patterns": {o.name: bpy.path.abspath(o.matte_pattern) for o in clip.samroto.objects
                         if o.obj_id in req["outputs"]}}


# 2. Track the image sequence, both ways from 1003.
p.config_dir = a["config_dir"]
t0 = time.time()
job = tracking.start_job(bpy.context, clip)
state, steps = pump(clip.name)
car = clip.samroto.objects["car"]
pattern = bpy.path.abspath(car.matte_pattern)
out["seq"] = {"state": state, "message": clip.samroto.last_message, "frames": sorted(job.done_frames),
              "seconds": round(time.time() - t0, 2), "pattern": car.matte_pattern, "steps": steps,
              "shot": shot(job, clip)}
if state != "FINISHED":  # nothing more to check: let the driver show the message
    result(out)
    sys.exit(0)
sizes, files = [], []
for frame in range(1001, 1007):
    path = results.matte_file(pattern, frame)
    files.append(os.path.isfile(path))
    if files[-1]:
        image = bpy.data.images.load(path, check_existing=False)
        sizes.append(list(image.size))
        bpy.data.images.remove(image)
out["seq_files"], out["seq_sizes"] = files, sizes

# The compositor the job set up renders a frame whose alpha is the matte.
scene = bpy.context.scene
errors, coverage = [], []
for frame in (1001, 1004):
    set_source_frame(clip, frame)
    alpha = render_alpha(scene, os.path.join(a["out"], "bridge_render_%d.exr" % frame))
    matte = image_alpha(results.matte_file(pattern, frame))
    errors.append(float(np.abs(alpha - matte).max()))
    coverage.append(float(matte.mean()))
out["render_error"], out["coverage"] = errors, coverage

# Convert to Mask: a key on every tracked frame, each core's shape for that frame's matte.
p.python = a["python"]  # the exporter runs in samroto's Python
(made,) = to_mask.convert(bpy.context, clip, [car])
mask, points, keyed = made
out["mask"] = {"layers": len(mask.layers), "points": points, "keyed": keyed, "pattern": pattern,
               "keys": mask_keys(clip, mask, range(1001, 1007))}

# Backward from source frame 1005 over the scene's frames 1002-1006: the shot is 1002-1005
# (the scene range's start to the current frame), into another folder.
clip.samroto.frame_range, clip.samroto.direction = "SCENE", "BACKWARD"
clip.samroto.output_dir = os.path.join(a["out"], "backward")
scene.frame_start, scene.frame_end = scene.frame_start + 1, scene.frame_end
set_source_frame(clip, 1005)
job = tracking.start_job(bpy.context, clip)
state, _ = pump(clip.name)
out["backward"] = {"state": state, "message": clip.samroto.last_message, "shot": shot(job, clip)}
clip.samroto.frame_range, clip.samroto.direction, clip.samroto.output_dir = "CLIP", "BOTH", ""
car.matte_pattern = out["seq"]["pattern"]

# 3. The movie clip, forward from frame 2.
movie = load_clip(a["movie"])
bpy.ops.samroto.object_add(name="ball")
set_source_frame(movie, 2)
bpy.ops.samroto.add_point(co=(0.45, 0.5))
movie.samroto.direction = "FORWARD"
job = tracking.start_job(bpy.context, movie)
state, _ = pump(movie.name)
ball = movie.samroto.objects["ball"]
mpattern = bpy.path.abspath(ball.matte_pattern)
out["movie"] = {"state": state, "message": movie.samroto.last_message, "frames": sorted(job.done_frames),
                "files": [os.path.isfile(results.matte_file(mpattern, f)) for f in range(0, 8)],
                "shot": shot(job, movie)}

# 4. Save, reload: prompts and the matte paths are in the .blend.
clip_name = clip.name
before = tracking.prompts_document(clip)
bpy.ops.wm.save_mainfile()
bpy.ops.wm.read_homefile(use_empty=True)
bpy.ops.wm.open_mainfile(filepath=a["blend"])
reloaded = bpy.data.movieclips[clip_name]
out["reload"] = {"same_prompts": tracking.prompts_document(reloaded) == before,
                 "pattern": reloaded.samroto.objects["car"].matte_pattern,
                 "image": reloaded.samroto.objects["car"].image_name in bpy.data.images}
result(out)
