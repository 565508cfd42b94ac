"""Inside Blender: the add-on's Blender-side parts, without a bridge.

Enable the add-on; check its UI is registered; add prompts through its operators on an
image-sequence clip and a movie clip; check the request the bridge would get (source path,
frame numbers, pixel coordinates with y down); wire a generated matte sequence into the
compositor and render a frame whose alpha must equal the matte; Convert to Mask and
rasterise the Mask with Blender's own Mask node against the matte; save, reload, and
check the prompts are still there. Clear errors for no prompts / missing clip files.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import bpy  # noqa: E402
import numpy as np  # noqa: E402

from helpers import (args, enable_addon, image_alpha, load_clip, mask_keys, mask_raster, render_alpha,  # noqa: E402
                     panel, result, set_source_frame)

a = args()
out = {}
addon = enable_addon()
bpy.ops.wm.read_homefile(use_empty=True)  # a clip-only scene (the default cube would render)
from samroto_blender import clipinfo, overlay, results, tracking  # noqa: E402
from samroto_blender.kit import hostkit  # noqa: E402

# --- UI registration ----------------------------------------------------------------------
out["panel"] = hasattr(bpy.types, "SAMROTO_PT_main")
out["operators"] = sorted(name for name in dir(bpy.ops.samroto) if not name.startswith("_"))
out["manifest_and_bl_info"] = [os.path.isfile(os.path.join(os.path.dirname(addon.__file__), "blender_manifest.toml")),
                              addon.bl_info["blender"]]

# --- prompts on an image sequence ----------------------------------------------------------
bpy.ops.wm.save_as_mainfile(filepath=a["blend"])  # mattes go next to the .blend
clip = load_clip(a["sequence"])
W, H = clip.size
out["seq_clip"] = {"size": [W, H], "frame_start": clip.frame_start, "duration": clip.frame_duration}

# No prompts yet: a clear error, not a traceback.
try:
    tracking.build_request(bpy.context, clip)
    out["no_prompts_error"] = None
except clipinfo.ClipError as exc:
    out["no_prompts_error"] = str(exc)
try:  # an operator that reports an ERROR raises in scripts (and shows a popup in the UI)
    bpy.ops.samroto.track()
    out["no_prompts_op"] = None
except RuntimeError as exc:
    out["no_prompts_op"] = str(exc)
out["no_prompts_panel_message"] = clip.samroto.last_message

bpy.ops.samroto.object_add(name="car")
set_source_frame(clip, 1002)
bpy.ops.samroto.add_point(co=(0.25, 0.75), positive=True)
bpy.ops.samroto.add_point(co=(0.9, 0.1), positive=False)
bpy.ops.samroto.add_box(co_a=(0.5, 0.25), co_b=(0.125, 0.875))
bpy.ops.samroto.add_box(co_a=(0.1, 0.2), co_b=(0.6, 0.9))  # replaces the box on this frame
set_source_frame(clip, 1004)
bpy.ops.samroto.add_point(co=(0.5, 0.5))
bpy.ops.samroto.object_add(name="tree")
bpy.ops.samroto.add_point(co=(0.75, 0.25))
out_of_frame = bpy.ops.samroto.add_point(co=(1.5, 0.5))
out["outside_click"] = sorted(out_of_frame)
request = tracking.build_request(bpy.context, clip)
out["request"] = {k: request[k] for k in ("source", "color", "range", "direction", "prompts", "size")}
# Forward from the current frame (1004): the shot is 1004 to the clip's end, its prompts those on it.
forward = tracking.build_request(bpy.context, clip, "FORWARD")
out["forward"] = {"range": forward["range"], "frames": [[p["frame"] for p in o["prompts"]]
                                                        for o in forward["prompts"]["objects"]]}
set_source_frame(clip, 1006)
try:
    tracking.build_request(bpy.context, clip, "FORWARD")
    out["forward_no_prompts"] = None
except hostkit.HostError as exc:
    out["forward_no_prompts"] = str(exc)
set_source_frame(clip, 1004)
out["request_outputs"] = {str(k): v for k, v in request["outputs"].items()}

# The overlay draws the current frame's prompts in each object's colour.
shapes = overlay.overlay_shapes(clip.samroto, 1004, lambda co: (co[0] * 100, co[1] * 100), 1)
out["overlay"] = [[kind, [list(map(round, c)) for c in coords]] for _, kind, coords in shapes]

# Place Prompts: the modal's gesture logic, driven with synthetic events (background mode
# dispatches no mouse events). A click adds a point, Alt-click a negative one, a drag a box.
from samroto_blender import tool  # noqa: E402

bpy.ops.samroto.object_add(name="gestures")
g = tool.PromptGesture()
tool.apply(g.handle("LEFTMOUSE", "PRESS", (10, 10), (0.2, 0.3)))
tool.apply(g.handle("LEFTMOUSE", "RELEASE", (11, 10), (0.21, 0.3)))
tool.apply(g.handle("LEFTMOUSE", "PRESS", (40, 40), (0.6, 0.6)))
tool.apply(g.handle("LEFTMOUSE", "RELEASE", (40, 40), (0.6, 0.6), negative=True))
tool.apply(g.handle("LEFTMOUSE", "PRESS", (10, 10), (0.1, 0.1)))
tool.apply(g.handle("MOUSEMOVE", "NOTHING", (30, 20), (0.3, 0.2)))
out["drag_preview"] = [list(c) for c in overlay.DRAG["box"]]
tool.apply(g.handle("LEFTMOUSE", "RELEASE", (50, 40), (0.5, 0.4)))
gest = clip.samroto.objects["gestures"]
out["gestures"] = {"points": [[round(v, 3) for v in p.co] + [p.positive] for p in gest.points],
                   "boxes": [[round(v, 3) for v in b.co_min] + [round(v, 3) for v in b.co_max] for b in gest.boxes],
                   "preview_cleared": "box" not in overlay.DRAG}
bpy.ops.samroto.object_remove()

out.update(panel(clip))  # the sidebar panel's draw code

# --- compositor with a (generated) matte sequence -------------------------------------------
car = clip.samroto.objects["car"]
car.matte_pattern = results.blend_relative(a["mattes"])
results.load_matte_image(clip, car, 1001)
bpy.ops.samroto.setup_compositor()
scene = bpy.context.scene
tree = results.compositor_tree(scene, create=False)
out["tree"] = sorted(n.name for n in tree.nodes if n.name.startswith("samroto"))
out["tree_kind"] = "compositing_node_group" if results.IS_50 else "scene.node_tree"
render_errors = []
for frame in (1001, 1003, 1006):
    set_source_frame(clip, frame)
    alpha = render_alpha(scene, os.path.join(a["out"], "render_%d.exr" % frame))
    matte = image_alpha(results.matte_file(a["mattes"], frame))
    render_errors.append(float(np.abs(alpha - matte).max()))
out["render_alpha_error"] = render_errors
# A PNG of a composited frame for the docs.
set_source_frame(clip, 1003)
scene.render.image_settings.file_format = "PNG"
scene.render.image_settings.color_mode = "RGBA"
scene.render.filepath = os.path.join(a["out"], "composited.png")
bpy.ops.render.render(write_still=True)

# --- Convert to Mask ---------------------------------------------------------------------------
clip.samroto.active_index = 0
assert bpy.ops.samroto.convert_to_mask(all_objects=False) == {"FINISHED"}
mask = bpy.data.masks["%s car" % clip.name]
layer = mask.layers[0]
out["mask"] = {"layers": len(mask.layers), "splines": len(layer.splines),
               "points": len(layer.splines[0].points), "cyclic": layer.splines[0].use_cyclic}
ious = []
for frame in range(1001, 1007):
    first = clipinfo.first_file_number(clip.filepath, clip.source)
    sf = clipinfo.scene_frame(frame, clip.frame_start, clip.frame_offset, first)
    raster = mask_raster(mask, sf, (W, H), os.path.join(a["out"], "mask_%d.exr" % frame)) > 0.5
    matte = image_alpha(results.matte_file(a["mattes"], frame)) > 0.5
    ious.append(float((raster & matte).sum() / max(1, (raster | matte).sum())))
out["mask_iou"] = ious
# keys: moving to two frames gives two different shapes
pts = []
for frame in (1001, 1006):
    set_source_frame(clip, frame)
    pts.append([tuple(p.co) for p in layer.splines[0].points])
out["mask_moves"] = float(np.abs(np.array(pts[0]) - np.array(pts[1])).max())
out["mask_keys"] = mask_keys(clip, mask, range(1001, 1007))

# --- movie clip ---------------------------------------------------------------------------------
movie = load_clip(a["movie"])
bpy.ops.samroto.object_add(name="ball")
set_source_frame(movie, 3)
bpy.ops.samroto.add_point(co=(0.5, 0.5))
req = tracking.build_request(bpy.context, movie)
out["movie"] = {"source": req["source"], "range": req["range"],
                "size": req["size"], "prompts": req["prompts"]}

# --- save + reload: the .blend owns the prompts ----------------------------------------------------
clip_name, movie_name = clip.name, movie.name
before = tracking.prompts_document(bpy.data.movieclips[clip_name])
bpy.ops.wm.save_mainfile()
bpy.ops.wm.read_homefile(use_empty=True)
bpy.ops.wm.open_mainfile(filepath=a["blend"])
after = tracking.prompts_document(bpy.data.movieclips[clip_name])
out["prompts_survive"] = before == after and len(after["objects"]) == 2
out["mask_survives"] = "%s car" % clip_name in bpy.data.masks

# --- clip missing on disk ---------------------------------------------------------------------------
reloaded = bpy.data.movieclips[movie_name]
reloaded.filepath = a["movie"] + ".missing.mp4"
bpy.context.scene.active_clip = reloaded
try:
    tracking.build_request(bpy.context, reloaded)
    out["missing_error"] = None
except clipinfo.ClipError as exc:
    out["missing_error"] = str(exc)

# Disabling the add-on unregisters everything cleanly.
bpy.ops.preferences.addon_disable(module="samroto_blender")
out["disabled"] = not hasattr(bpy.types.MovieClip, "samroto") and not hasattr(bpy.types, "SAMROTO_PT_main")
result(out)
