"""Inside Blender, every version of the matrix: the add-on registers, two objects are
tracked (a stand-in client delivers pre-made mattes, as in track_events.py) and composited.

Checks what broke on real Blenders: the union of two mattes (5.0 dropped
``CompositorNodeMath``), a job that fails on Blender's side ending instead of staying
"already being tracked", and the composited plate keeping its colours (the view transform).
The rendered files are read by the test (tests/test_blender.py) with OpenImageIO.
"""

import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

import bpy  # noqa: E402

from helpers import args, enable_addon, load_clip, render_alpha, result, set_source_frame  # noqa: E402

a = args()
enable_addon()
bpy.ops.wm.read_homefile(use_empty=True)
from samroto_blender import results, tracking  # noqa: E402
from samroto_blender.kit import hostkit  # noqa: E402

client = hostkit.client
out = {"version": list(bpy.app.version), "view_transform_before": bpy.context.scene.view_settings.view_transform}
bpy.ops.wm.save_as_mainfile(filepath=a["blend"])
clip = load_clip(a["sequence"])
for name, co in (("car", (0.3, 0.5)), ("tree", (0.7, 0.5))):
    bpy.ops.samroto.object_add(name=name)
    set_source_frame(clip, a["prompt_frame"])
    bpy.ops.samroto.add_point(co=co)


class StandIn:
    """``Client.track_shot``'s contract: every frame of the shot, each object's matte copied
    from ``a["mattes"]`` (``{name}.####.exr``) where the add-on's pattern says."""

    def track_shot(self, source, prompts, direction="both", start=None, first=None, last=None,
                   mattes=None, on_event=None, cancelled=None, **rest):
        objects = [{"id": o["id"], "name": o["name"]} for o in prompts["objects"]]
        for frame in range(first, last + 1):
            if cancelled.is_set():
                return "cancelled"
            paths = [hostkit.frame_file(mattes["pattern"], frame, o["name"]) for o in objects]
            for o, path in zip(objects, paths):
                shutil.copy(hostkit.frame_file(a["mattes"], frame, o["name"]), path)
            on_event(client.Event({"event": "matte", "frame": frame}, client.Matte(frame, objects, paths=paths)))
        return "done"

    def close(self):
        pass


hostkit.connect = lambda **how: StandIn()


def pump(limit=60.0):
    t0, state = time.time(), "RUNNING"
    while state == "RUNNING" and time.time() - t0 < limit:
        state = tracking.handle_event(bpy.context, "TIMER", clip.name)
        time.sleep(0.02)
    return state


# 1. Two objects, tracked and wired: the union of both mattes is the alpha.
job = tracking.start_job(bpy.context, clip)
state = pump()
scene = bpy.context.scene
tree = results.compositor_tree(scene, create=False)
out["two"] = {"state": state, "message": clip.samroto.last_message, "active_left": clip.name in tracking.ACTIVE,
              "frames": sorted(job.done_frames),
              "nodes": sorted((n.name, n.bl_idname) for n in tree.nodes if n.name.startswith(results.PREFIX)),
              "view_transform": [scene.view_settings.view_transform, scene.view_settings.look]}
set_source_frame(clip, a["render_frame"])
render_alpha(scene, os.path.join(a["out"], "two.exr"))  # written for the test to read
scene.render.image_settings.file_format = "PNG"
scene.render.image_settings.color_mode = "RGBA"
scene.render.image_settings.color_depth = "16"
scene.render.filepath = os.path.join(a["out"], "two.png")
bpy.ops.render.render(write_still=True)

# 2. Something failing on Blender's side mid-job ends the job; the clip can be tracked again.
broken = results.load_matte_image


def fail(*_args, **_kwargs):
    raise RuntimeError("simulated failure")


results.load_matte_image = fail
tracking.start_job(bpy.context, clip)
state = pump()
out["failed"] = {"state": state, "message": clip.samroto.last_message, "active_left": clip.name in tracking.ACTIVE}
results.load_matte_image = broken
try:
    tracking.start_job(bpy.context, clip)
    out["again"] = pump()
except hostkit.HostError as exc:
    out["again"] = str(exc)
result(out)
