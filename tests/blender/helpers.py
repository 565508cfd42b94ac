"""Shared by the scripts that run INSIDE Blender (the ``bpy`` module from PyPI).

tests/test_blender.py runs each script with a bpy virtualenv's Python, passing one JSON
argument, with BLENDER_USER_SCRIPTS pointing at a folder where `samroto install blender`
put the add-on. A script prints ``RESULT <json>`` and then the end marker as its last lines; any exception
fails it.
"""

import json
import os
import sys
import time

import bpy
import numpy as np


def args():
    return json.loads(sys.argv[1])


END = "SAMROTO-SCRIPT-END"  # the last line a script prints (tests/test_blender.py: run_in_blender)


def result(data):
    """Print the script's result and the end marker: everything after is interpreter exit."""
    print("RESULT " + json.dumps(data), flush=True)
    print(END, flush=True)


def enable_addon():
    """Enable the add-on the way Blender's preferences do (from BLENDER_USER_SCRIPTS/addons)."""
    import addon_utils

    addon_utils.modules_refresh()
    bpy.ops.preferences.addon_enable(module="samroto_blender")
    import samroto_blender

    assert "samroto_blender" in bpy.context.preferences.addons, "add-on did not enable"
    return samroto_blender


def load_clip(path):
    clip = bpy.data.movieclips.load(path)
    bpy.context.scene.active_clip = clip
    scene = bpy.context.scene
    scene.frame_start = clip.frame_start
    scene.frame_end = clip.frame_start + clip.frame_duration - 1
    return clip


def open_on_bridge(a):
    """The add-on enabled on an empty scene and talking to the test's running bridge (found
    in ``a["config_dir"]``; none is started), the .blend saved (mattes go next to it) and the
    clip ``a["sequence"]`` loaded; returns the clip."""
    enable_addon()
    bpy.ops.wm.read_homefile(use_empty=True)
    from samroto_blender import prefs

    p = prefs.get()
    p.python = ""
    p.config_dir = a["config_dir"]
    bpy.ops.wm.save_as_mainfile(filepath=a["blend"])
    return load_clip(a["sequence"])


def track(clip, limit=180.0):
    """Track ``clip`` as its panel is set, stepping the job as the modal operator's timer does;
    returns what the driver compares with `samroto track` on the same shot (tests/plugin_parity.py):
    the state, the panel's message, the frames tracked, the request and each object's mattes."""
    from samroto_blender import tracking

    job = tracking.start_job(bpy.context, clip)
    t0, state = time.time(), "RUNNING"
    while state == "RUNNING" and time.time() - t0 < limit:
        state = tracking.handle_event(bpy.context, "TIMER", clip.name)
        time.sleep(0.05)
    req = job.request
    return {"state": state, "message": clip.samroto.last_message, "frames": sorted(job.done_frames),
            "source": req["source"], "prompts": req["prompts"], "direction": req["direction"],
            "first": req["range"][0], "last": req["range"][1], "color": req["color"], "finish": req["finish"],
            "patterns": {o.name: bpy.path.abspath(o.matte_pattern) for o in clip.samroto.objects}}


class Recorder:
    """A stand-in for a panel's layout that records each call: [name, its string arguments, text]."""

    def __init__(self, log):
        self.log = log

    def __getattr__(self, name):
        def call(*args, **kwargs):
            self.log.append([name, [x for x in args if isinstance(x, str)], kwargs.get("text", "")])
            return Recorder(self.log)
        return call


def panel(clip):
    """The samroto sidebar panel's draw code for ``clip``, run against a recording layout
    (panels are not drawn in background mode): catches mistakes in the draw code and shows
    what the artist sees, {"panel_ops": operator ids, "panel_labels": label texts}."""
    from samroto_blender import ui

    space = type("Space", (), {"type": "CLIP_EDITOR", "clip": clip})()
    context = type("Context", (), {"space_data": space, "scene": bpy.context.scene})
    drawn = []
    ui.SAMROTO_PT_main.draw(type("Panel", (), {"layout": Recorder(drawn)}), context)
    return {"panel_ops": [x[0] for name, x, _ in drawn if name == "operator"],
            "panel_labels": [text for name, _, text in drawn if name == "label"]}


def set_source_frame(clip, source_frame):
    """Go to the scene frame that shows ``source_frame`` of ``clip``."""
    from samroto_blender import clipinfo

    first = clipinfo.first_file_number(clip.filepath, clip.source)
    bpy.context.scene.frame_set(clipinfo.scene_frame(source_frame, clip.frame_start, clip.frame_offset, first))


def image_pixels(path):
    """A file's pixels as Blender reads them, (rows top-down, columns, channels)."""
    image = bpy.data.images.load(path, check_existing=False)
    w, h = image.size
    px = np.empty(w * h * image.channels, np.float32)
    image.pixels.foreach_get(px)
    channels = image.channels
    bpy.data.images.remove(image)
    return px.reshape(h, w, channels)[::-1]


def image_alpha(path):
    """A file's alpha channel, rows top-down (as samroto writes them)."""
    px = image_pixels(path)
    return px[..., 3] if px.shape[2] == 4 else px[..., 0]


def render_alpha(scene, path):
    """Render the current frame (compositor only: no camera needed) to EXR; alpha top-down."""
    scene.render.image_settings.file_format = "OPEN_EXR"
    scene.render.image_settings.color_depth = "32"
    scene.render.image_settings.color_mode = "RGBA"
    scene.render.filepath = path
    bpy.ops.render.render(write_still=True)
    return image_alpha(path if path.endswith(".exr") else path + ".exr")


def mask_raster(mask, frame, size, path):
    """Rasterise ``mask`` on ``frame`` with the compositor's Mask node (Blender's own
    rasteriser), in a scratch scene so the test scene's compositor stays as it is."""
    from samroto_blender import results

    scene = bpy.data.scenes.new("mask check")
    if results.IS_50:
        tree = bpy.data.node_groups.new("mask check", "CompositorNodeTree")
        tree.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
        scene.compositing_node_group = tree
        out = tree.nodes.new("NodeGroupOutput")
    else:
        scene.use_nodes = True
        tree = scene.node_tree
        for node in list(tree.nodes):
            tree.nodes.remove(node)
        out = tree.nodes.new("CompositorNodeComposite")
    node = tree.nodes.new("CompositorNodeMask")
    node.mask = mask
    if hasattr(node, "use_feather"):
        node.use_feather = False
    setalpha = tree.nodes.new("CompositorNodeSetAlpha")
    if results.IS_50:
        setalpha.inputs["Type"].default_value = "Replace Alpha"
    else:
        setalpha.mode = "REPLACE_ALPHA"
    tree.links.new(node.outputs[0], setalpha.inputs["Alpha"])
    tree.links.new(setalpha.outputs[0], out.inputs[0])
    scene.render.resolution_x, scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    scene.frame_set(frame)
    scene.render.image_settings.file_format = "OPEN_EXR"
    scene.render.image_settings.color_depth = "32"
    scene.render.image_settings.color_mode = "RGBA"
    scene.render.filepath = path
    with bpy.context.temp_override(scene=scene):
        bpy.ops.render.render(write_still=True, scene=scene.name)
    alpha = image_alpha(path)
    bpy.data.scenes.remove(scene)
    return alpha


def mask_keys(clip, mask, frames):
    """What ``mask`` shows on each source frame: {layer name: {frame: [[co x, co y, handle_left
    x, y, handle_right x, y] per point]}} (one spline a layer), as the mask JSON writes them."""
    out = {}
    for frame in frames:
        set_source_frame(clip, frame)
        for layer in mask.layers:
            (spline,) = layer.splines
            out.setdefault(layer.name, {})[str(frame)] = [
                list(p.co) + list(p.handle_left) + list(p.handle_right) for p in spline.points]
    return out
