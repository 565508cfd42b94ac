"""Prompts drawn over the clip in the Movie Clip Editor (a colour per object).

``overlay_shapes`` computes what to draw (pure: testable without a GPU); ``draw`` hands it
to Blender's ``gpu`` module, which only exists with a window (not in background mode).
"""

from typing import Any

import bpy

from . import clipinfo
from .kit import hostkit
from .tool import DRAG  # the box being dragged, drawn while the mouse moves
_HANDLE: list = []


def overlay_shapes(settings, source_frame, to_region, active_index=-1):
    """Line segments and markers for the prompts on ``source_frame``.

    Returns a list of ``(rgba, kind, coords)`` with kind ``"lines"`` (pairs of region
    points) or ``"points"``; ``to_region`` maps normalised clip coords to region pixels.
    """
    shapes = []
    for index, obj in enumerate(settings.objects):
        alpha = 1.0 if index == active_index else 0.6
        rgba = (obj.color[0], obj.color[1], obj.color[2], alpha)
        for box in obj.boxes:
            if box.frame != source_frame:
                continue
            (x0, y0), (x1, y1) = to_region(box.co_min), to_region(box.co_max)
            corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
            shapes.append((rgba, "lines", [c for i in range(4) for c in (corners[i], corners[(i + 1) % 4])]))
        for point in obj.points:
            if point.frame != source_frame:
                continue
            x, y = to_region(point.co)
            shapes.append((rgba, "points", [(x, y)]))
            r = 7.0
            if point.positive:  # a plus: include
                cross = [(x - r, y), (x + r, y), (x, y - r), (x, y + r)]
            else:  # a diagonal cross: exclude
                cross = [(x - r, y - r), (x + r, y + r), (x - r, y + r), (x + r, y - r)]
            shapes.append(((1.0, 1.0, 1.0, alpha) if point.positive else (0.0, 0.0, 0.0, alpha), "lines", cross))
    if "box" in DRAG:
        (ax, ay), (bx, by) = (to_region(c) for c in DRAG["box"])
        corners = [(ax, ay), (bx, ay), (bx, by), (ax, by)]
        shapes.append(((1.0, 1.0, 1.0, 0.8), "lines", [c for i in range(4) for c in (corners[i], corners[(i + 1) % 4])]))
    return shapes


def overlay_mattes(clip, source_frame, active_index=-1):
    """The Live Matte previews to draw on ``source_frame``: ``(image name, rgba)`` per object
    whose latest preview (live.PREVIEWS) is of that frame, in the object's colour."""
    from . import live

    out = []
    for index, obj in enumerate(clip.samroto.objects):
        preview = live.PREVIEWS.get((clip.name, obj.obj_id))
        name = live.image_name(clip, obj)
        if preview is None or preview.frame != source_frame or name not in bpy.data.images:
            continue
        out.append((name, (obj.color[0], obj.color[1], obj.color[2], 0.5 if index == active_index else 0.35)))
    return out


_SHADER: list = []


def _matte_shader():
    """A textured quad whose alpha is the matte's first channel, in one colour (the builtin
    image shaders take the texture's own alpha, which a one-channel matte file has at 1)."""
    if not _SHADER:
        import gpu

        info = gpu.types.GPUShaderCreateInfo()
        info.push_constant("MAT4", "ModelViewProjectionMatrix")
        info.push_constant("VEC4", "color")
        info.sampler(0, "FLOAT_2D", "image")
        info.vertex_in(0, "VEC2", "pos")
        info.vertex_in(1, "VEC2", "texCoord")
        # stub gap (fake-bpy-module 4.2-5.0): the constructor takes the interface's name (gpu docs)
        iface = gpu.types.GPUStageInterfaceInfo("samroto_matte_iface")  # type: ignore[call-arg,unused-ignore]
        iface.smooth("VEC2", "uv")
        info.vertex_out(iface)
        info.fragment_out(0, "VEC4", "fragColor")
        info.vertex_source("void main() { uv = texCoord; gl_Position = ModelViewProjectionMatrix * vec4(pos, 0.0, 1.0); }")
        info.fragment_source("void main() { fragColor = vec4(color.rgb, color.a * texture(image, uv).r); }")
        _SHADER.append(gpu.shader.create_from_info(info))  # type: ignore[func-returns-value,unused-ignore]  # 4.2 stub gap
    return _SHADER[0]


def _draw_mattes(clip, frame, region, active_index):
    """The Segment Everything masks (automask.py), the tracked mattes (Review Mattes), then
    the Live Matte on top."""
    from . import automask, review

    shown = automask.overlay_masks(clip, frame)
    _draw_images([(name, rgba) for name, rgba, _, _ in shown] + review.overlay_review(clip, frame, active_index)
                 + overlay_mattes(clip, frame, active_index), region)
    if shown:
        _draw_labels(clip, shown, region)


def _draw_labels(clip, shown, region):
    """Each automatic mask's number where the generator's click found it."""
    import blf

    for _, rgba, point, index in shown:
        if point is None:
            continue
        u, v = hostkit.to_normalised(point[0], point[1], clip.size[0], clip.size[1])
        x, y = region.view2d.view_to_region(u, v, clip=False)
        blf.size(0, 14)
        blf.color(0, 1.0, 1.0, 1.0, 1.0 if rgba[3] > 0.5 else 0.7)
        blf.position(0, x - 4, y - 5, 0)
        blf.draw(0, str(index))


def _draw_images(mattes, region):
    import gpu
    from gpu_extras.batch import batch_for_shader

    if not mattes or _SHADER == [None]:  # nothing to draw, or this GPU backend cannot
        return
    (x0, y0), (x1, y1) = (region.view2d.view_to_region(u, v, clip=False) for u, v in ((0.0, 0.0), (1.0, 1.0)))
    shader = _matte_shader()
    corners, uv = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], [(0, 0), (1, 0), (1, 1), (0, 1)]
    order = (0, 1, 2, 0, 2, 3)
    batch = batch_for_shader(shader, "TRIS", {"pos": [corners[i] for i in order], "texCoord": [uv[i] for i in order]})
    for name, rgba in mattes:
        texture = gpu.texture.from_image(bpy.data.images[name])
        shader.bind()
        shader.uniform_float("ModelViewProjectionMatrix",
                             gpu.matrix.get_projection_matrix() @ gpu.matrix.get_model_view_matrix())
        shader.uniform_float("color", rgba)
        shader.uniform_sampler("image", texture)
        batch.draw(shader)


def draw():
    context = bpy.context
    space, region = context.space_data, context.region
    clip = getattr(space, "clip", None)
    if clip is None or not hasattr(clip, "samroto"):
        return
    from . import automask

    if not clip.samroto.objects and "box" not in DRAG and clip.name not in automask.FOUND:
        return
    import gpu
    from gpu_extras.batch import batch_for_shader

    first = clipinfo.first_file_number(clip.filepath, clip.source)
    frame = clipinfo.source_frame(context.scene.frame_current, clip.frame_start, clip.frame_offset, first)

    def to_region(co):
        return region.view2d.view_to_region(co[0], co[1], clip=False)

    settings = clip.samroto
    gpu.state.blend_set("ALPHA")
    try:  # the automatic masks and the Live Matte under the prompts
        _draw_mattes(clip, frame, region, settings.active_index)
    except Exception as exc:  # noqa: BLE001 - a GPU backend without this shader: prompts still draw
        if not _SHADER or _SHADER[0] is not None:
            print("samroto: cannot draw the Live Matte over the clip: %s: %s" % (type(exc).__name__, exc))
            _SHADER[:] = [None]
    # POLYLINE_* takes a line width on every GPU backend (OpenGL, Metal, Vulkan).
    # Any: fake-bpy-module 4.2 types from_builtin as returning None (tests/test_typecheck.py)
    lines: Any = gpu.shader.from_builtin("POLYLINE_UNIFORM_COLOR")  # type: ignore[func-returns-value,unused-ignore]
    fill: Any = gpu.shader.from_builtin("UNIFORM_COLOR")  # type: ignore[func-returns-value,unused-ignore]
    gpu.state.blend_set("ALPHA")
    for rgba, kind, coords in overlay_shapes(settings, frame, to_region, settings.active_index):
        if kind == "lines":
            lines.bind()
            lines.uniform_float("viewportSize", (region.width, region.height))
            lines.uniform_float("lineWidth", 2.0)
            lines.uniform_float("color", rgba)
            batch_for_shader(lines, "LINES", {"pos": coords}).draw(lines)
        else:  # a filled square marker per point
            tris = []
            for x, y in coords:
                a, b, c, d = (x - 5, y - 5), (x + 5, y - 5), (x + 5, y + 5), (x - 5, y + 5)
                tris += [a, b, c, a, c, d]
            fill.bind()
            fill.uniform_float("color", rgba)
            batch_for_shader(fill, "TRIS", {"pos": tris}).draw(fill)
    gpu.state.blend_set("NONE")


def register():
    if not bpy.app.background:
        _HANDLE.append(bpy.types.SpaceClipEditor.draw_handler_add(draw, (), "WINDOW", "POST_PIXEL"))


def unregister():
    while _HANDLE:
        bpy.types.SpaceClipEditor.draw_handler_remove(_HANDLE.pop(), "WINDOW")
