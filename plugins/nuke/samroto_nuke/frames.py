"""Where the node's frames come from, as the bridge wants them: a file pattern + frame
numbers + colour space.

Fast path: the input is a Read node, reached only through true pass-throughs (Dot, NoOp, a
disabled node), whose frames are not retimed: the bridge reads the Read's own files.
Otherwise Nuke renders the input to a temporary EXR sequence with a Write node
(``nuke.execute``) and the bridge reads that; the EXRs hold Nuke's working space (linear).
"""

import os
import re

import nuke

from .kit import hostkit

PASS_THROUGH = ("Dot", "NoOp")


class FrameError(hostkit.HostError):
    """The node's input cannot be handed over; the message says what to change."""


def _disabled(node):
    knob = node.knob("disable")
    return bool(knob is not None and knob.value())


def upstream_read(node):
    """The Read node feeding ``node`` unchanged, or None."""
    current = node.input(0)
    seen = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if current.Class() in PASS_THROUGH or (_disabled(current) and current.Class() != "Read"):
            current = current.input(0)
            continue
        return current if current.Class() == "Read" and not _disabled(current) else None
    return None


def _retimed(read):
    frame = read.knob("frame")
    return bool(frame is not None and str(frame.value()).strip())


def read_color(read):
    """The Read's colour space as samroto's colour setting (docs/io.md)."""
    if read.knob("raw") is not None and read["raw"].value():
        return {"input": "auto"}
    name = str(read["colorspace"].value()) if read.knob("colorspace") is not None else "default"
    m = re.match(r"^default \((.*)\)$", name)
    name = m.group(1) if m else name
    simple = {"linear": "linear", "scene_linear": "linear", "default": "auto",
              "srgb": "srgb", "rec709": "rec709"}
    if name.lower() in simple:
        return {"input": simple[name.lower()]}
    return ocio_color(name)


def ocio_color(name):
    """An OCIO colour space by name, with the script's custom OCIO config when it has one."""
    root = nuke.root()
    knob = root.knob("customOCIOConfigPath")
    color = {"input": name}
    if knob is not None and root.knob("OCIO_config") is not None and root["OCIO_config"].value() == "custom":
        if str(knob.value()):
            color["ocio_config"] = str(knob.value())
    return color


def working_space():
    knob = nuke.root().knob("workingSpaceLUT")
    name = str(knob.value()) if knob is not None else ""
    if not name or name.lower() in ("linear", "scene_linear"):
        return {"input": "linear"}
    return ocio_color(name)


def read_source(node):
    """{"path", "first", "last", "color", "rendered": False} from an upstream Read, or None."""
    read = upstream_read(node)
    if read is None or _retimed(read):
        return None
    path = nuke.filename(read)
    if not path:
        return None
    return {"path": path, "first": int(read["first"].value()), "last": int(read["last"].value()),
            "color": read_color(read), "rendered": False, "read": read.name()}


def render_source(group, first, last, directory):
    """Render the group's input over first..last into ``directory``/plate.%04d.exr."""
    if group.input(0) is None:
        raise FrameError("%s has no input: connect the plate to it." % group.name())
    if not os.path.isdir(directory):
        os.makedirs(directory)
    pattern = os.path.join(directory, "plate.%04d.exr").replace("\\", "/")
    group.begin()
    try:
        plate = nuke.toNode("Plate")
        write = nuke.nodes.Write(file=pattern, file_type="exr", channels="rgb", create_directories=True)
        write.setInput(0, plate)
        try:
            nuke.execute(write, int(first), int(last), 1)
        finally:
            nuke.delete(write)
    except RuntimeError as exc:
        raise FrameError("Nuke could not render %s's input for tracking: %s" % (group.name(), exc))
    finally:
        group.end()
    return {"path": pattern, "first": int(first), "last": int(last), "color": working_space(),
            "rendered": True}
