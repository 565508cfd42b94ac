"""Prompts drawn over the clip in the Movie Clip Editor (a colour per object).

``overlay_shapes`` computes what to draw (pure: testable without a GPU); ``draw`` hands it
to Blender's ``gpu`` module, which only exists with a window (not in background mode).
"""

import bpy

from . import clipinfo

DRAG = {}  # the box being dragged right now: {"box": (co_a, co_b)}
_HANDLE = []


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


def draw():
    context = bpy.context
    space, region = context.space_data, context.region
    clip = getattr(space, "clip", None)
    if clip is None or not hasattr(clip, "samroto") or not clip.samroto.objects and "box" not in DRAG:
        return
    import gpu
    from gpu_extras.batch import batch_for_shader

    first = clipinfo.first_file_number(clip.filepath, clip.source)
    frame = clipinfo.source_frame(context.scene.frame_current, clip.frame_start, clip.frame_offset, first)

    def to_region(co):
        return region.view2d.view_to_region(co[0], co[1], clip=False)

    settings = clip.samroto
    # POLYLINE_* takes a line width on every GPU backend (OpenGL, Metal, Vulkan).
    lines = gpu.shader.from_builtin("POLYLINE_UNIFORM_COLOR")
    fill = gpu.shader.from_builtin("UNIFORM_COLOR")
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
