"""Inside the SAM2Matte group and on its status line: where its mattes live, the internal
``Read`` + ``Copy`` per object that show them, and messages in Nuke's terms.

Inside: ``Plate`` (Input) -> one ``Copy`` per object, whose A input is an internal ``Read``
of that object's matte sequence, copying its alpha into the object's output channel ->
``Output1``.
"""

import os
import tempfile

import nuke

from . import knobs
from .kit import hostkit


def matte_dir(node):
    """The node's matte folder: the knob, else next to the script, else the temp folder."""
    chosen = str(node["matte_dir"].value()).strip()
    if chosen:
        return chosen
    script = str(nuke.root()["name"].value())
    base = os.path.dirname(script) if script else tempfile.gettempdir()
    stem = os.path.splitext(os.path.basename(script))[0] if script else "untitled"
    return os.path.join(base, "samroto", stem, node.name()).replace("\\", "/")


def matte_request(node):
    """Where the bridge writes the mattes: one EXR sequence per object ({name} is the
    object's name, made file-safe by the bridge)."""
    return hostkit.file_mattes("%s/%s.{name}.%%04d.exr" % (matte_dir(node), node.name()))


def matte_pattern(node, obj):
    """The object's matte sequence as the bridge last reported it ('' before tracking)."""
    knob = node.knob("o%d_matte" % obj)
    return str(knob.value()) if knob is not None else ""


def set_status(node, text):
    node["status"].setValue(text)


def report_error(node, text):
    """Errors in Nuke's terms: a dialog plus the node's status line (never a bare traceback)."""
    try:
        set_status(node, "Error: " + text)
    except Exception:
        pass
    nuke.message("SAM2Matte %s: %s" % (node.name(), text))


def connect_mattes(node, first, last, offset=0):
    """Rebuild the internals: one Read + Copy per object, reading its matte sequence over
    Nuke frames ``first``..``last``. The bridge numbers the matte files with the source's
    frames, Nuke frame f being file f - ``offset`` (a movie's): the Read's frame range is in
    file numbers, and its frame expression reads file ``frame-offset`` at frame f
    ("expression": "The expression changes the relation between the current frame and the
    frame read in", Nuke's Read node)."""
    retime = {"frame_mode": "expression", "frame": "frame%+d" % -offset} if offset else {}
    node.begin()
    try:
        for child in node.nodes():
            if child.name().startswith(("Matte_o", "Copy_o")):
                nuke.delete(child)
        stream = nuke.toNode("Plate")
        for obj in knobs.object_ids(node):
            info = knobs.object_info(node, obj)
            pattern = matte_pattern(node, obj)
            if info["channel"] == "none" or not pattern:
                continue
            read = nuke.nodes.Read(name="Matte_o%d" % obj, file=pattern,
                                   first=int(first - offset), last=int(last - offset), origfirst=int(first - offset),
                                   origlast=int(last - offset), on_error="black", before="black", after="black",
                                   **retime)
            copy = nuke.nodes.Copy(name="Copy_o%d" % obj, from0="rgba.alpha", to0=info["channel"])
            copy.setInput(0, stream)
            copy.setInput(1, read)
            stream = copy
        output = nuke.toNode("Output1")
        if output is None:
            raise hostkit.HostError("%s has lost its Output1 node: delete it and make a new SAM2Matte." % node.name())
        output.setInput(0, stream)
    finally:
        node.end()


def reload_mattes(node):
    node.begin()
    try:
        for child in node.nodes():
            if child.name().startswith("Matte_o") and child.knob("reload") is not None:
                child["reload"].execute()
    finally:
        node.end()
