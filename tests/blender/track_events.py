"""Inside Blender: the Track job's event handling, with a stand-in for the bridge client.

``hostkit.connect`` (how the worker thread reaches the bridge) is replaced by one returning
a stand-in client whose ``track_shot`` keeps the client's contract: it "delivers" pre-made
matte files where the add-on's matte pattern says, one frame at a time in the bridge's
order, with the client's own matte events, and stops when cancelled. Everything else is
real: the host kit's job and worker thread, the modal operator's event handler, progress,
Esc, errors, matte loading and the compositor setup. The real bridge is exercised by
track_bridge.py.

Blender's timers do not fire in background mode (and INVOKE falls back to EXEC there), so
this script starts the job as the operator's invoke does (``tracking.start_job``) and
drives the add-on's event handler (``tracking.handle_event(context, "TIMER")``, what the
modal operator calls on each timer event) directly, sending "ESC" the same way.
"""

import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

import bpy  # noqa: E402

from helpers import args, enable_addon, load_clip, result, set_source_frame  # noqa: E402

a = args()
enable_addon()
bpy.ops.wm.read_homefile(use_empty=True)
from samroto_blender import results, tracking  # noqa: E402
from samroto_blender.kit import hostkit  # noqa: E402

client = hostkit.client
bpy.ops.wm.save_as_mainfile(filepath=a["blend"])
clip = load_clip(a["sequence"])
bpy.ops.samroto.object_add(name="car")
set_source_frame(clip, 1003)
bpy.ops.samroto.add_point(co=(0.4, 0.5))
seen = {}


class StandIn:
    """A connected client's ``track_shot``: forward from start to last, then back to first;
    without a start, the bridge's rule (the first prompted frame, the last one backward)."""

    def __init__(self, delay, fail=None):
        self.delay, self.fail = delay, fail

    def track_shot(self, source, prompts, direction="both", start=None, first=None, last=None,
                   mattes=None, on_event=None, cancelled=None, **rest):
        seen["shot"] = {"direction": direction, "start": start, "first": first, "last": last, "source": source}
        if start is None:
            prompted = sorted(p["frame"] for o in prompts["objects"] for p in o["prompts"])
            start = prompted[-1] if direction == "backward" else prompted[0]
        order = list(range(start, last + 1)) if direction != "backward" else []
        order += list(range(start - (direction == "both"), first - 1, -1)) if direction != "forward" else []
        objects = [{"id": o["id"], "name": o["name"]} for o in prompts["objects"]]
        for frame in order:
            if cancelled.is_set():
                return "cancelled"
            if self.fail and frame == self.fail[0]:
                raise client.EngineError(self.fail[1])
            paths = [hostkit.frame_file(mattes["pattern"], frame, o["name"]) for o in objects]
            for path in paths:
                shutil.copy(results.matte_file(a["mattes"], frame), path)
            on_event(client.Event({"event": "matte", "frame": frame}, client.Matte(frame, objects, paths=paths)))
            time.sleep(self.delay)
        return "done"

    def close(self):
        pass


def stand_in(delay, fail=None):
    return lambda **how: StandIn(delay, fail)


def pump(limit=30.0, esc_after=None):
    """Call the add-on's event handler like the modal timer would; returns (state, steps)."""
    t0, steps, state = time.time(), 0, "RUNNING"
    while state == "RUNNING" and time.time() - t0 < limit:
        job = tracking.ACTIVE.get(clip.name)
        if esc_after is not None and job is not None and len(job.done_frames) >= esc_after:
            state = tracking.handle_event(bpy.context, "ESC", clip.name)
        else:
            state = tracking.handle_event(bpy.context, "TIMER", clip.name)
        steps += 1
        time.sleep(0.02)
    return state, steps


out = {}
# 0. The real bridge link, with no bridge to find: clear messages in the UI, no traceback.
from samroto_blender import prefs  # noqa: E402

p = prefs.get()
p.config_dir, p.python = a["empty_config_dir"], ""
for case, python in (("no_python", ""), ("bad_python", "/nonexistent/bin/python")):
    p.python = python
    try:
        bpy.ops.samroto.track()
        out[case] = None
    except RuntimeError as exc:
        out[case] = str(exc)
p.python = ""

# 1. A full run, started as the operator's invoke starts it.
hostkit.connect = stand_in(0.01)
job = tracking.start_job(bpy.context, clip)
state, steps = pump()
car = clip.samroto.objects["car"]
out["full"] = {"state": state, "steps": steps, "frames": sorted(job.done_frames), "message": clip.samroto.last_message,
               "pattern": car.matte_pattern, "image": car.image_name in bpy.data.images,
               "direction": seen["shot"]["direction"], "start": seen["shot"]["start"],
               "shot": [seen["shot"]["first"], seen["shot"]["last"]],
               "tree": sorted(n.name for n in results.compositor_tree(bpy.context.scene, False).nodes
                              if n.name.startswith("samroto"))}
out["files"] = sorted(os.listdir(os.path.dirname(bpy.path.abspath(car.matte_pattern))))

# 2. Esc mid-way: the job stops, finished mattes stay, the panel says so.
hostkit.connect = stand_in(0.15)
clip.samroto.direction = "FORWARD"
set_source_frame(clip, 1001)
job = tracking.start_job(bpy.context, clip)
state, _ = pump(esc_after=2)
out["cancel"] = {"state": state, "frames": len(job.done_frames), "message": clip.samroto.last_message,
                 "active_left": clip.name in tracking.ACTIVE}

# 3. A bridge error: shown in the panel and reported, the job ends.
hostkit.connect = stand_in(0.0, fail=(1004, "model not found"))
tracking.start_job(bpy.context, clip)
state, _ = pump()
out["error"] = {"state": state, "message": clip.samroto.last_message}

# 4. The blocking form (scripts, render farms): EXEC runs the same job to the end.
hostkit.connect = stand_in(0.0)
clip.samroto.direction = "BACKWARD"
set_source_frame(clip, 1006)
out["exec"] = sorted(bpy.ops.samroto.track())
out["exec_message"] = clip.samroto.last_message
result(out)
