"""Prompts from the clip's Fusion comp: tools named ``samroto_<object>_box|pos|neg``.

Fusion scripting calls used (Fusion Scripting Guide): Composition.GetToolList, GetAttrs
(COMPN_GlobalStart/End, COMPN_RenderStart/End), CurrentTime, AddTool, FindTool, Lock/Unlock;
Operator.GetAttrs (TOOLS_Name, TOOLS_RegID, TOOLB_PassThrough), GetInput(id, time),
SetInput, SetAttrs; Input.GetKeyFrames (the keyframe times of the spline an input is
connected to; None if not animated with a spline), Input.GetConnectedOutput / Output.GetTool
and Operator.GetInputList for a point animated through a path modifier.
The result is the prompts JSON, schema v1 (core/prompts.py): source frame numbers, source
pixels, origin top-left, y down.
"""

import re

from .kit import hostkit

NAME_RE = re.compile(r"^samroto_(?P<obj>[A-Za-z0-9_-]+?)_(?P<kind>box|pos|neg|mask)(?:_?\d+)*$")
BOX_TOOL = "RectangleMask"
POINT_TOOL = "EllipseMask"
MASK_TOOL = "Loader"  # samroto_<object>_mask: a matte image as the object's prompt on one frame


class PromptReadError(hostkit.HostError):
    """The comp's prompt tools cannot be turned into prompts; the message says how to fix it."""


def _values(table):
    """A Lua table as Python sees it (dict with 1-based float keys, or a list) -> list."""
    if table is None:
        return []
    if isinstance(table, dict):
        return [table[k] for k in sorted(table)]
    return list(table)


def _point(value):
    vals = _values(value)
    if len(vals) < 2:
        raise PromptReadError("expected a point, got %r" % (value,))
    return float(vals[0]), float(vals[1])


def rect_to_box(cx, cy, rect_width, rect_height, width, height):
    """A Fusion rectangle -> [x0, y0, x1, y1] in source pixels, clipped to the frame. Fusion's
    centre is normalised (0..1, origin bottom-left, y up); its Width and Height are fractions
    of the image *width* (a 0.5 x 0.5 Rectangle is square on a 16:9 frame)."""
    px, py = hostkit.from_normalised(cx, cy, width, height)
    half_w = abs(float(rect_width)) * width / 2.0
    half_h = abs(float(rect_height)) * width / 2.0
    x0, x1 = max(0.0, px - half_w), min(float(width), px + half_w)
    y0, y1 = max(0.0, py - half_h), min(float(height), py + half_h)
    return [x0, y0, x1, y1]


def keyframe_times(tool, input_id):
    """Keyframe times of one input. Fusion animates an input only through a modifier
    connected to it: a number through a BezierSpline (its keys are the input's
    ``GetKeyFrames()``), a point such as Center through a path (a Polyline path times its
    locked points with a Displacement spline, an XY path keys X and Y splines), whose keys
    are those of the path's own animated inputs. An input with nothing connected is not
    animated, whatever SetInput was given: it is a prompt on the current frame."""
    inp = getattr(tool, input_id, None)
    if inp is None:
        return set()
    out = inp.GetConnectedOutput() if hasattr(inp, "GetConnectedOutput") else None
    modifier = out.GetTool() if out is not None else None
    if modifier is not None and hasattr(modifier, "GetInputList") and \
            "Spline" not in str(modifier.GetAttrs().get("TOOLS_RegID", "")):
        times = set()  # type: set
        for sub in _values(modifier.GetInputList()):
            times.update(float(t) for t in _values(sub.GetKeyFrames()))
        return times
    return set(float(t) for t in _values(inp.GetKeyFrames()))


class CompTime(object):
    """Comp time <-> source frame number for a timeline item's comp.

    The Fusion page's global range is the clip's whole source (Resolve manual, "Time Ruler
    Controls in the Fusion Page"): comp time ``GlobalStart`` is source offset 0. Where the
    global range does not have the source's length, the render range (the item's in and
    out points) is mapped to the used source range, at the clip's speed when retimed."""

    def __init__(self, comp, clip):
        attrs = comp.GetAttrs()
        g0, g1 = attrs.get("COMPN_GlobalStart"), attrs.get("COMPN_GlobalEnd")
        self.speed = 1.0
        if g0 is not None and g1 is not None and int(round(g1 - g0)) + 1 == clip.frame_count:
            # The global range is the whole source: its start is source offset 0.
            self.start, self.base = float(g0), clip.first
        else:
            # Otherwise the render range is the item's used range (its in-point).
            self.start, self.base = float(attrs.get("COMPN_RenderStart", 0)), clip.used_range[0]
            self.speed = getattr(clip, "speed", 1.0)

    def to_frame(self, t):
        return self.base + int(round((float(t) - self.start) * self.speed))

    def to_time(self, frame):
        return int(round(self.start + (int(frame) - self.base) / self.speed))


def prompt_tools(comp):
    """[(tool, object name, kind)] for every samroto prompt tool that is not switched off."""
    found = []
    for tool in _values(comp.GetToolList(False)):
        attrs = tool.GetAttrs()
        m = NAME_RE.match(str(attrs.get("TOOLS_Name", "")))
        if not m or attrs.get("TOOLB_PassThrough"):
            continue
        found.append((tool, m.group("obj"), m.group("kind")))
    return found


def read_prompts(comp, clip):
    """The prompts document (dict, schema v1) from the comp, plus the prompt frames.

    Each keyframe of a tool's Center (or a box's Width/Height) is a prompt on that frame;
    a tool without keyframes is a prompt on the comp's current frame. Objects are numbered
    1, 2, ... in name order.
    """
    clock = CompTime(comp, clip)
    current = float(comp.CurrentTime)
    W, H = clip.width, clip.height
    objects, box_frames = {}, set()  # type: (dict, set)  # name -> {"name", "points", "boxes"}; (name, frame) with a box
    for tool, obj, kind in prompt_tools(comp):
        name = tool.GetAttrs().get("TOOLS_Name")
        found = objects.setdefault(obj, {"name": obj, "points": [], "boxes": [], "masks": []})
        if kind == "mask":
            found["masks"].append(mask_prompt(tool, name, clock))
            continue
        ids = ("Center", "Width", "Height") if kind == "box" else ("Center",)
        times = set()
        for input_id in ids:
            times |= keyframe_times(tool, input_id)
        for t in sorted(times or {current}):
            frame = clock.to_frame(t)
            cx, cy = _point(tool.GetInput("Center", t))
            if kind == "box":
                if (obj, frame) in box_frames:
                    raise PromptReadError(
                        "Object %r has two boxes on frame %d (%s and another samroto_%s_box tool): "
                        "keep one box per object per frame." % (obj, frame, name, obj))
                box_frames.add((obj, frame))
                box = rect_to_box(cx, cy, tool.GetInput("Width", t), tool.GetInput("Height", t), W, H)
                if box[2] - box[0] < 1 or box[3] - box[1] < 1:
                    raise PromptReadError("%s on frame %d lies outside the picture or has no size: "
                                          "drag it over the object." % (name, frame))
                found["boxes"].append([frame] + box)
            else:
                px, py = hostkit.from_normalised(cx, cy, W, H)
                if not (0 <= px <= W and 0 <= py <= H):
                    raise PromptReadError("%s on frame %d is outside the picture (%.0f, %.0f): "
                                          "drag it onto the object." % (name, frame, px, py))
                found["points"].append((frame, px, py, kind == "pos"))
    document = hostkit.prompts_document([dict(objects[obj], id=index)
                                         for index, obj in enumerate(sorted(objects), start=1)])
    if not document["objects"]:
        raise PromptReadError(
            "No samroto prompts in this clip's Fusion comp. Run Workspace > Scripts > samroto > "
            "Add Prompts, then drag the samroto_obj1_box / _pos / _neg tools onto the object "
            "in the Fusion page.")
    frames = sorted({p["frame"] for o in document["objects"] for p in o["prompts"]})
    return document, frames


def mask_prompt(tool, name, clock):
    """(frame, path) of a mask Loader ``samroto_<object>_mask``: the image its Clip names (a
    matte the plate's size: a Magic Mask or roto export, a chosen SAM 2 candidate) is the
    object's whole prompt on the frame where the Loader starts (its GlobalIn)."""
    if tool.GetAttrs().get("TOOLS_RegID") not in (MASK_TOOL, None, ""):
        raise PromptReadError("%s is a %s; a samroto mask prompt is a Loader reading a matte image." % (
            name, tool.GetAttrs().get("TOOLS_RegID")))
    path = tool.GetInput("Clip")
    if not path:
        raise PromptReadError("%s reads no file: set its Clip to the matte image (the plate's size)." % name)
    start = tool.GetInput("GlobalIn")
    return clock.to_frame(float(start or 0)), str(path)


def next_object_name(comp):
    taken = {obj for _, obj, _ in prompt_tools(comp)}
    for tool in _values(comp.GetToolList(False)):
        m = NAME_RE.match(str(tool.GetAttrs().get("TOOLS_Name", "")))
        if m:
            taken.add(m.group("obj"))
    n = 1
    while "obj%d" % n in taken:
        n += 1
    return "obj%d" % n


def add_prompt_tools(comp, clip, obj_name=None):
    """Create a box, an include point and an exclude point for a new object, centred."""
    obj_name = obj_name or next_object_name(comp)
    made = []
    comp.Lock()
    try:
        specs = [("box", BOX_TOOL, {"Center": {1: 0.5, 2: 0.5}, "Width": 0.3, "Height": 0.3 * clip.height / clip.width}),
                 ("pos", POINT_TOOL, {"Center": {1: 0.5, 2: 0.5}, "Width": 0.01, "Height": 0.01}),
                 ("neg", POINT_TOOL, {"Center": {1: 0.5, 2: 0.2}, "Width": 0.01, "Height": 0.01})]
        for kind, reg_id, inputs in specs:
            tool = comp.AddTool(reg_id, -32768, -32768)
            if tool is None:
                raise PromptReadError("Fusion could not add a %s tool to the comp." % reg_id)
            tool.SetAttrs({"TOOLS_Name": "samroto_%s_%s" % (obj_name, kind)})
            for key, value in inputs.items():
                tool.SetInput(key, value)
            made.append(tool)
    finally:
        comp.Unlock()
    return obj_name, made


def clip_comp(item, create=True):
    """The timeline item's first Fusion comp (TimelineItem.GetFusionCompByIndex(1)); one is
    added with AddFusionComp when the clip has none and ``create`` is true."""
    if item.GetFusionCompCount() >= 1:
        return item.GetFusionCompByIndex(1)
    if not create:
        return None
    comp = item.AddFusionComp()
    if comp is None:
        raise PromptReadError("Resolve could not add a Fusion composition to %s." % item.GetName())
    return comp
