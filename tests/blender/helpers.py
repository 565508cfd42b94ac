"""Shared by the scripts that run INSIDE Blender (the ``bpy`` module from PyPI).

tests/test_blender.py runs each script with a bpy virtualenv's Python, passing one JSON
argument, with BLENDER_USER_SCRIPTS pointing at a folder where `samroto install blender`
put the add-on. A script prints ``RESULT <json>`` and then the end marker as its last lines; any exception
fails it.
"""

import json
import os
import sys

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


def set_source_frame(clip, source_frame):
    """Go to the scene frame that shows ``source_frame`` of ``clip``."""
    from samroto_blender import clipinfo

    first = clipinfo.first_file_number(clip.filepath, clip.source)
    bpy.context.scene.frame_set(clipinfo.scene_frame(source_frame, clip.frame_start, clip.frame_offset, first))


def image_alpha(path):
    """A file's alpha channel, rows top-down (as samroto writes them)."""
    image = bpy.data.images.load(path, check_existing=False)
    w, h = image.size
    px = np.empty(w * h * image.channels, np.float32)
    image.pixels.foreach_get(px)
    channels = image.channels
    bpy.data.images.remove(image)
    px = px.reshape(h, w, channels)
    return (px[..., 3] if channels == 4 else px[..., 0])[::-1]


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
