"""Mattes into Blender: an Image sequence per object, and the compositor wiring.

Compositor layout (idempotent; our nodes are named "samroto: ..." and rebuilt in place,
everything else in the tree is left alone):

    Movie Clip ──────────────────────────► Set Alpha (Replace) ──► Composite / Group Output
    Matte <obj A> ─┐                          ▲
    Matte <obj B> ─┴─ Maximum ────────────────┘

Blender 4.x keeps the tree in ``scene.node_tree`` (with a Composite node); Blender 5.0 has
no ``scene.node_tree``: the compositor is a node group (``scene.compositing_node_group``)
whose Group Output is the result. 5.0 also dropped ``CompositorNodeMath``: compositor trees
take ``ShaderNodeMath`` there (which 4.x refuses in a compositor tree).

The scene's view transform is set to Standard (no look, exposure 0, gamma 1), like the
render size: Blender's default (Filmic in 4.x, AgX from 4.0) would change the plate's
colours in the composited output.
"""

import json
import os

import bpy

from . import clipinfo
from .kit import hostkit

PREFIX = "samroto: "
IS_50 = bpy.app.version >= (5, 0, 0)


# --- matte files --------------------------------------------------------------------------

def scores(obj):
    """The object's SAM 2 object score per tracked frame, {frame: score} (<= 0: lost there),
    kept on the object by Track (review.py jumps to the lost frames)."""
    try:
        return {int(f): float(s) for f, s in json.loads(obj.scores or "{}").items()}
    except (ValueError, TypeError, AttributeError):
        return {}


def keep_scores(obj, new):
    """Merge a Track's scores ({frame: score}) into the object's: the newest win."""
    merged = scores(obj)
    merged.update({int(f): float(s) for f, s in new.items()})
    obj.scores = json.dumps({str(f): s for f, s in sorted(merged.items())})


matte_file = hostkit.frame_file  # ``car.####.exr`` + 1001 -> ``car.1001.exr`` (also ``%04d``)


def blend_relative(path):
    """A path relative to the .blend (``//...``) when the .blend is saved, else absolute."""
    try:
        return bpy.path.relpath(path) if bpy.data.filepath else path
    except ValueError:  # another drive on Windows
        return path


def matte_dir(clip, settings):
    """Absolute folder for this clip's mattes (Output setting, default ``//samroto/<clip>``)."""
    base = settings.output_dir or "//samroto/"
    if base.startswith("//") and not bpy.data.filepath:
        raise clipinfo.ClipError(
            "Save the .blend first: mattes are written next to it (or set an absolute "
            "Output folder in the samroto panel).")
    return os.path.join(bpy.path.abspath(base), clip_folder_name(clip.name))


def clip_folder_name(name):
    """``plate.1001.exr`` -> ``plate_exr``, ``plate.mov`` -> ``plate_mov``: the clip's name
    without its frame number (a movie and a sequence of the same shot stay apart)."""
    stem, ext = os.path.splitext(name)
    stem = stem.rstrip("0123456789").rstrip("._-") or stem
    return bpy.path.clean_name(stem + ("_" + ext.lstrip(".") if ext else ""))


def load_matte_image(clip, obj, frame):
    """The Image datablock (a sequence) for ``obj``'s matte, created or refreshed."""
    pattern = bpy.path.abspath(obj.matte_pattern)
    first_file = matte_file(pattern, frame)
    image = bpy.data.images.get(obj.image_name) if obj.image_name else None
    if image is None:
        image = bpy.data.images.load(first_file, check_existing=True)
        image.name = "%s %s" % (clip.name, obj.name)
        image.use_fake_user = True  # kept in the .blend even when no node uses it
        obj.image_name = image.name
    image.filepath = blend_relative(first_file)
    image.source = "SEQUENCE"
    image.colorspace_settings.name = "Non-Color"  # type: ignore[assignment]  # stub gap: OCIO names are not an enum
    image.reload()
    return image


def configure_image_user(image_user, clip):
    """Make an image sequence user show the matte of the clip frame on screen.

    A sequence shows file ``scene_frame - frame_start + frame_offset + 1``; the matte files
    carry the clip's source frame numbers.
    """
    first = clipinfo.first_file_number(clip.filepath, clip.source)
    source_at_start = clipinfo.source_frame(clip.frame_start, clip.frame_start, clip.frame_offset, first)
    image_user.frame_start = clip.frame_start
    image_user.frame_duration = clip.frame_duration
    image_user.frame_offset = source_at_start - 1


# --- compositor ---------------------------------------------------------------------------

def compositor_tree(scene, create=True):
    """The scene's compositing node tree (4.x node_tree, 5.0 node group)."""
    if IS_50:
        tree = scene.compositing_node_group
        if tree is None and create:
            # stub gap (fake-bpy-module 4.2): the tree types are listed as 'DUMMY' only
            tree = bpy.data.node_groups.new("Compositing", "CompositorNodeTree")  # type: ignore[arg-type,unused-ignore]
            scene.compositing_node_group = tree
        if tree is not None and not any(s.in_out == "OUTPUT" for s in tree.interface.items_tree
                                        if getattr(s, "item_type", "SOCKET") == "SOCKET"):
            tree.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
        return tree
    if create and not scene.use_nodes:
        scene.use_nodes = True
        # Blender's default tree renders the 3D scene (Render Layers): a clip comp needs none.
        for node in list(scene.node_tree.nodes):
            if node.bl_idname == "CompositorNodeRLayers":
                scene.node_tree.nodes.remove(node)
    return scene.node_tree


def _output_node(tree):
    kind = "NodeGroupOutput" if IS_50 else "CompositorNodeComposite"
    for node in tree.nodes:
        if node.bl_idname == kind:
            return node
    node = tree.nodes.new(kind)
    node.location = (700, 0)
    return node


def _node(tree, name, kind, location):
    node = tree.nodes.get(PREFIX + name)
    if node is not None and node.bl_idname != kind:
        tree.nodes.remove(node)
        node = None
    if node is None:
        node = tree.nodes.new(kind)
        node.name = node.label = PREFIX + name
    node.location = location
    return node


def build_compositor(scene, clip, objects, set_resolution=True):
    """Wire clip + mattes into the compositor; returns the tree."""
    images = [(obj, bpy.data.images.get(obj.image_name)) for obj in objects]
    images = [(obj, img) for obj, img in images if img is not None]
    if not images:
        raise clipinfo.ClipError("No mattes yet: track the clip first, then set up the compositor.")
    tree = compositor_tree(scene)
    # Our previous matte nodes may belong to renamed/removed objects: rebuild them.
    for node in list(tree.nodes):
        if node.name.startswith(PREFIX + "Matte ") or node.name.startswith(PREFIX + "Union"):
            tree.nodes.remove(node)

    clip_node = _node(tree, "Clip", "CompositorNodeMovieClip", (-600, 200))
    clip_node.clip = clip
    alpha = None
    for i, (obj, image) in enumerate(images):
        matte = _node(tree, "Matte " + obj.name, "CompositorNodeImage", (-600, -120 - 260 * i))
        matte.image = image
        configure_image_user(matte, clip)
        if alpha is None:
            alpha = matte.outputs["Alpha"]
        else:
            union = _node(tree, "Union %d" % i, math_node_type(), (-300, -120 - 260 * i))
            _set_math_max(union)
            tree.links.new(alpha, union.inputs[0])
            tree.links.new(matte.outputs["Alpha"], union.inputs[1])
            alpha = union.outputs[0]

    set_alpha = _node(tree, "Set Alpha", "CompositorNodeSetAlpha", (0, 100))
    if IS_50:
        set_alpha.inputs["Type"].default_value = "Replace Alpha"
    else:
        set_alpha.mode = "REPLACE_ALPHA"
    tree.links.new(clip_node.outputs["Image"], set_alpha.inputs["Image"])
    tree.links.new(alpha, set_alpha.inputs["Alpha"])
    out = _output_node(tree)
    tree.links.new(set_alpha.outputs["Image"], out.inputs[0])

    if set_resolution:
        scene.render.resolution_x, scene.render.resolution_y = clip.size[0], clip.size[1]
        scene.render.resolution_percentage = 100
        scene.render.film_transparent = True
        plate_view_transform(scene)
    return tree


def math_node_type():
    """The Math node a compositor tree takes: ``CompositorNodeMath`` up to 4.5; 5.0 removed
    it and compositor node groups use the shader ``ShaderNodeMath`` (4.x refuses that one)."""
    return "CompositorNodeMath" if hasattr(bpy.types, "CompositorNodeMath") else "ShaderNodeMath"


def plate_view_transform(scene):
    """Composite the plate with its colours as they are: the Standard view transform (the
    display's own curve and nothing else), no look, exposure 0, gamma 1, no curves. New
    scenes default to AgX (Filmic before 4.0), which tone-maps the plate."""
    view = scene.view_settings
    view.view_transform = "Standard"
    view.look = "None"
    view.exposure = 0.0
    view.gamma = 1.0
    view.use_curve_mapping = False


def _set_math_max(node):
    if hasattr(node, "operation"):
        node.operation = "MAXIMUM"
    else:  # 5.0 moved node options to menu inputs
        node.inputs["Operation"].default_value = "Maximum"


class SAMROTO_OT_setup_compositor(bpy.types.Operator):
    bl_idname = "samroto.setup_compositor"
    bl_label = "Setup Compositor"
    bl_description = ("Wire the clip and its mattes into the scene's compositor "
                      "(Movie Clip -> Set Alpha with the matte) and match the render size")
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        from .ops_prompts import target_clip
        return target_clip(context) is not None

    def execute(self, context):
        from .ops_prompts import target_clip
        clip = target_clip(context)
        try:
            build_compositor(context.scene, clip, list(clip.samroto.objects))
        except clipinfo.ClipError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, "Compositor set up for %s" % clip.name)
        return {"FINISHED"}


CLASSES = [SAMROTO_OT_setup_compositor]
