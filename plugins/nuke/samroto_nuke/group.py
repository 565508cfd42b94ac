"""Inside the SAM2Matte group and on its status line: where its mattes live, the internal
``Read`` + ``Copy`` per object that show them, and messages in Nuke's terms.

Inside: ``Plate`` (Input) -> one ``Copy`` per object, whose A input is an internal ``Read``
of that object's matte sequence, copying its alpha into the object's output channel ->
``Output1``.
"""

import os
import tempfile

import nuke

from . import finishing, knobs
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
    object's name, made file-safe by the bridge), finished with the node's Finish tab when
    it overrides the bridge's settings."""
    spec = hostkit.file_mattes("%s/%s.{name}.%%04d.exr" % (matte_dir(node), node.name()))
    finish = finishing.overrides(node)
    if finish is not None:
        spec["finish"] = finish
    return spec


def matte_pattern(node, obj):
    """The object's matte sequence as the bridge last reported it ('' before tracking)."""
    knob = node.knob("o%d_matte" % obj)
    return str(knob.value()) if knob is not None else ""


def live_pattern(node, obj):
    """The object's live preview sequence (the frames a prompt was previewed on; '' before)."""
    knob = node.knob("o%d_live" % obj)
    return str(knob.value()) if knob is not None else ""


def shown_pattern(node, obj):
    """What the node's output shows for the object: its live previews while ``show`` is
    "live" (set by a preview, back to "tracked" when a Track ends), else its tracked mattes."""
    show = node.knob("show")
    if show is not None and show.value() == "live" and live_pattern(node, obj):
        return live_pattern(node, obj)
    return matte_pattern(node, obj)


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
    """Rebuild the internals: one Read + Copy per object, reading its matte sequence (or its
    live previews, ``shown_pattern``) over
    Nuke frames ``first``..``last``. The bridge numbers the matte files with the source's
    frames, Nuke frame f being file f - ``offset`` (a movie's): the Read's frame range is in
    file numbers, and its frame expression reads file ``frame-offset`` at frame f
    ("expression": "The expression changes the relation between the current frame and the
    frame read in", Nuke's Read node)."""
    retime = {"frame_mode": "expression", "frame": "frame%+d" % -offset} if offset else {}
    node.begin()
    try:
        for child in node.nodes():
            if child.name().startswith(("Matte_o", "Copy_o", "Matte_auto")):
                nuke.delete(child)
        stream = nuke.toNode("Plate")
        for obj in knobs.object_ids(node):
            info = knobs.object_info(node, obj)
            pattern = shown_pattern(node, obj)
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
        stream = auto_overlay(node) or stream
        output = nuke.toNode("Output1")
        if output is None:
            raise hostkit.HostError("%s has lost its Output1 node: delete it and make a new SAM2Matte." % node.name())
        output.setInput(0, stream)
    finally:
        node.end()


def auto_overlay(node):
    """While ``show`` is "auto masks": a Read of the automatic masks' overlay picture (the
    frame with the masks tinted and numbered), held over every frame; else None."""
    show, overlay = node.knob("show"), node.knob("auto_overlay")
    if show is None or show.value() != "auto masks" or overlay is None or not str(overlay.value()):
        return None
    frame = int(node["auto_frame"].value())
    return nuke.nodes.Read(name="Matte_auto", file=str(overlay.value()), first=frame, last=frame, origfirst=frame,
                           origlast=frame, before="hold", after="hold", on_error="black")


def reload_mattes(node):
    node.begin()
    try:
        for child in node.nodes():
            if child.name().startswith("Matte_o") and child.knob("reload") is not None:
                child["reload"].execute()
    finally:
        node.end()
