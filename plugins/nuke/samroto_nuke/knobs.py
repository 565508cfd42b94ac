"""The node's prompt knobs: one XY_Knob per point and one BBox_Knob per box, keyed on the
frames where the prompt applies; names say the object and the sign.

    o2_name, o2_channel        object 2's name and output channel
    o2_pos1, o2_neg1           a positive / negative point of object 2 (XY_Knob)
    o2_box1                    a box of object 2 (BBox_Knob: x, y, r, t)
    o2_mask1, o2_mask1_frame   a mask prompt of object 2: its file and its frame (a chosen
                               candidate, the mask input's alpha, an automatic mask)

A handle's keys are its prompts: a point keyed on 1001 and 1040 is two clicks, one on each
frame. Handles are animated from birth, so dragging one on another frame keys it there
(Nuke's autokey), which is how an artist corrects a frame. ``nuke`` is only used through
the node passed in, plus knob constructors.
"""

import re

import nuke

from .kit import hostkit

HANDLE = re.compile(r"^o(\d+)_(pos|neg|box)(\d+)$")
OBJECT = re.compile(r"^o(\d+)_name$")
MASK = re.compile(r"^o(\d+)_mask(\d+)$")
CANDIDATE = "candidate"  # the label of a mask prompt that is a chosen candidate


class PromptError(hostkit.HostError):
    """The node's prompts cannot be sent; the message says what to change."""


def object_ids(node):
    return sorted(int(m.group(1)) for m in map(OBJECT.match, node.knobs()) if m)


def object_info(node, obj):
    return {"id": obj, "name": node["o%d_name" % obj].value() or "object%d" % obj,
            "channel": node["o%d_channel" % obj].value()}


def handles(node, obj=None):
    """[(obj, kind, index, knob)] sorted by object, kind (pos, neg, box) and index."""
    found = []
    for name, knob in node.knobs().items():
        m = HANDLE.match(name)
        if m and (obj is None or int(m.group(1)) == obj):
            found.append((int(m.group(1)), m.group(2), int(m.group(3)), knob))
    order = {"pos": 0, "neg": 1, "box": 2}
    return sorted(found, key=lambda h: (h[0], order[h[1]], h[2]))


def masks(node, obj=None):
    """[(obj, index, frame, file knob)] of the node's mask prompts, by object and frame."""
    found = []
    for name, knob in node.knobs().items():
        m = MASK.match(name)
        if m and (obj is None or int(m.group(1)) == obj):
            frame = node["%s_frame" % name].value()
            found.append((int(m.group(1)), int(m.group(2)), int(frame), knob))
    return sorted(found, key=lambda h: (h[0], h[2], h[1]))


def add_mask(node, obj, frame, path, label="mask"):
    """Object ``obj``'s mask prompt on ``frame``: the file ``path`` (the plate's size). A
    mask on a frame is that frame's whole prompt (the points and boxes there stay in the
    node but are not sent); one mask per object and frame, so an earlier one is replaced."""
    if obj not in object_ids(node):
        raise PromptError("There is no object %d: press 'add object' first." % obj)
    remove_masks(node, obj, frame)
    taken = [i for _, i, _, _ in masks(node, obj)]
    name = "o%d_mask%d" % (obj, (max(taken) + 1) if taken else 1)
    at = nuke.Int_Knob(name + "_frame", "frame")  # first: the file's knobChanged reads it
    node.addKnob(at)
    at.setValue(int(frame))
    knob = nuke.File_Knob(name, "obj%d %s @%d" % (obj, label, frame))
    knob.setTooltip("A mask prompt: on its frame this file is the object's prompt.")
    node.addKnob(knob)
    knob.setValue(str(path).replace("\\", "/"))
    return knob


def remove_masks(node, obj, frame, label=None):
    """Delete ``obj``'s mask prompts on ``frame`` (only those whose label has ``label``)."""
    for _, _, f, knob in masks(node, obj):
        if f == frame and (label is None or label in knob.label()):
            node.removeKnob(node[knob.name() + "_frame"])
            node.removeKnob(knob)


def collect(node, height):
    """The node's prompts as samroto's prompts JSON. Nuke's pixels have their origin at the
    bottom-left, y up; samroto's at the top-left, y down: y' = height - y."""
    objects = {o: dict(object_info(node, o), points=[], boxes=[], masks=[]) for o in object_ids(node)}
    for obj, kind, _, knob in handles(node):
        if obj not in objects:
            raise PromptError("%s belongs to object %d, which has no o%d_name knob; delete it "
                              "or add the object again." % (knob.name(), obj, obj))
        keys = [int(round(k)) for k in knob.getKeyList()]
        if not keys:
            raise PromptError("The handle %s has no keyframe, so samroto cannot tell which frame it "
                              "belongs to: set a key on that frame (or delete the handle)." % knob.name())
        for f in keys:
            v = [knob.valueAt(f, i) for i in range(4 if kind == "box" else 2)]
            if kind == "box":  # x, y, r, t: left, bottom, right, top
                objects[obj]["boxes"].append((f,) + hostkit.flip_y(v[0], v[1], height)
                                             + hostkit.flip_y(v[2], v[3], height))
            else:
                objects[obj]["points"].append((f,) + hostkit.flip_y(v[0], v[1], height) + (kind == "pos",))
    for obj, _, frame, knob in masks(node):
        if obj in objects and str(knob.value()).strip():
            objects[obj]["masks"].append((frame, str(knob.value()).strip()))
    doc = hostkit.prompts_document([objects[o] for o in sorted(objects)])
    if not doc["objects"]:
        raise PromptError("No prompts yet: press '+ point' (or '- point', 'box') on the SAM2 tab, "
                          "drag the handle onto the object in the Viewer, then Track.")
    return doc


def add_object(node, name=None, channel=None):
    """A new object (name + output channel knobs); returns its id."""
    ids = object_ids(node)
    obj = (max(ids) + 1) if ids else 1
    channel = channel or ("rgba.alpha" if obj == 1 else "sam2.obj%d" % obj)
    if channel != "rgba.alpha" and channel != "none":
        # nuke.tcl passes each argument as one Tcl word, unparsed: the list goes without braces
        nuke.tcl("add_layer", "%s %s" % (channel.split(".")[0], channel))
    node.addKnob(nuke.Text_Knob("o%d_divider" % obj, "", "<b>object %d</b>" % obj))
    name_knob = nuke.String_Knob("o%d_name" % obj, "name")
    node.addKnob(name_knob)
    name_knob.setValue(name or "object%d" % obj)
    chan = nuke.Channel_Knob("o%d_channel" % obj, "output")
    node.addKnob(chan)
    chan.setValue(channel)
    matte = nuke.File_Knob("o%d_matte" % obj, "matte files")
    matte.setTooltip("Written by Track: the object's matte sequence, read inside the node.")
    node.addKnob(matte)
    return obj


def add_handle(node, obj, kind, frame, at=None):
    """A new point ('pos'/'neg') or box handle for ``obj``, keyed on ``frame``; ``at`` is
    (x, y) for a point or (x, y, r, t) for a box in Nuke pixels (default: mid-frame)."""
    if obj not in object_ids(node):
        raise PromptError("There is no object %d: press 'add object' first." % obj)
    taken = [i for o, k, i, _ in handles(node, obj) if k == kind]
    index = (max(taken) + 1) if taken else 1
    name = "o%d_%s%d" % (obj, kind, index)
    fmt = node.format()
    w, h = fmt.width(), fmt.height()
    label = {"pos": "obj%d +%d", "neg": "obj%d -%d", "box": "obj%d box%d"}[kind] % (obj, index)
    knob = None  # type: nuke.Knob | None
    if kind == "box":
        knob = nuke.BBox_Knob(name, label)
        at = at or (w * 0.25, h * 0.25, w * 0.75, h * 0.75)
    else:
        knob = nuke.XY_Knob(name, label)
        at = at or (w * 0.5, h * 0.5)
    node.addKnob(knob)
    knob.setAnimated()
    for i, v in enumerate(at):
        knob.setValueAt(float(v), frame, i)
    return knob


def clear_frame(node, obj, frame):
    """Remove ``obj``'s prompts on ``frame``; handles with no key left go away."""
    for _, _, _, knob in handles(node, obj):
        if knob.isKeyAt(frame):
            knob.removeKeyAt(frame)
            if not knob.getKeyList():
                node.removeKnob(knob)
    remove_masks(node, obj, frame)


def clear_object(node, obj):
    """Remove every prompt of ``obj`` (the object itself stays)."""
    for _, _, _, knob in handles(node, obj):
        node.removeKnob(knob)
    for _, _, frame, _ in masks(node, obj):
        remove_masks(node, obj, frame)
