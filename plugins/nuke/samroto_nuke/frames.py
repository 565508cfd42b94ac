"""Where the node's frames come from, as the bridge wants them: a file pattern + the source's
own frame numbers + colour space.

Fast path: the input is a Read node, reached only through true pass-throughs (Dot, NoOp, a
disabled node), whose frames are not retimed: the bridge reads the Read's own full-size
files (never its proxy). An image sequence's file numbers are Nuke's frames; a movie's
frames are numbered from 0 by the bridge (as by ``samroto track``), while Nuke shows the
movie's first frame at ``origfirst`` (1): the source ``offset`` says how far apart the two
numberings are, and trimming the Read (``first``/``last``) changes nothing about it.

Otherwise Nuke renders the input to a temporary EXR sequence with a Write node and the
bridge reads that (the EXRs hold Nuke's working space, linear). Only the frames a Track
covers are rendered, one ``nuke.execute`` per frame on the main thread (Nuke's API belongs
to it), driven from the tracking thread so that Nuke stays usable and Cancel works between
frames (see tracking.py).
"""

import os
import re

import nuke

from .kit import hostkit

PASS_THROUGH = ("Dot", "NoOp")
# Files the bridge decodes as movies (samroto.core.io's VIDEO_EXTENSIONS): their frames are
# counted from 0 there, from ``origfirst`` in Nuke.
MOVIE_EXTENSIONS = (".mov", ".mp4", ".m4v", ".mkv", ".mxf", ".avi", ".webm", ".mpg", ".mpeg", ".ts",
                    ".mts", ".m2ts", ".wmv", ".flv", ".y4m", ".nut")
WRITER = "samroto_plate_write"


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


def is_movie(path):
    return os.path.splitext(str(path))[1].lower() in MOVIE_EXTENSIONS


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


def proxy_mode():
    knob = nuke.root().knob("proxy")
    return bool(knob is not None and knob.value())


def full_size_file(read):
    """The Read's full-size file (pattern). ``nuke.filename`` follows proxy mode and gives
    the Read's proxy file when it has one, while the handles are in full-size pixels, so in
    that case the ``file`` knob is read as it is."""
    proxy = read.knob("proxy")
    if not (proxy_mode() and proxy is not None and str(proxy.value()).strip()):
        return nuke.filename(read)
    path = str(read["file"].value())
    if "[" in path or "$" in path:
        raise FrameError("%s's file name has a Tcl expression, which samroto cannot expand while proxy mode "
                         "is on: turn proxy mode off (Ctrl/Cmd+P) and Track again." % read.name())
    return path


def read_source(node):
    """{"path", "first", "last", "offset", "color", "rendered": False, "read"} from an
    upstream Read, or None. ``first``..``last`` are Nuke's frames (for a movie, those of
    the Read's frames that hold movie frames); Nuke frame f is the source's frame
    f - ``offset`` (a movie's ``origfirst``; 0 for an image sequence)."""
    read = upstream_read(node)
    if read is None or _retimed(read):
        return None
    path = full_size_file(read)
    if not path:
        return None
    first, last, offset = int(read["first"].value()), int(read["last"].value()), 0
    if is_movie(path):
        offset = int(read["origfirst"].value())
        first, last = max(first, offset), min(last, int(read["origlast"].value()))
    return {"path": path, "first": first, "last": last, "offset": offset, "color": read_color(read),
            "rendered": False, "read": read.name()}


def input_range(group):
    """The frames of the group's input (``Node.frameRange()``)."""
    up = group.input(0)
    if up is None:
        raise FrameError("%s has no input: connect the plate to it." % group.name())
    frames = up.frameRange()
    return int(frames.first()), int(frames.last())


def render_source(group, first, last, directory):
    """The frames first..last of the group's input as ``directory``/plate.%04d.exr, to be
    rendered by ``Renderer`` (nothing is rendered here)."""
    if group.input(0) is None:
        raise FrameError("%s has no input: connect the plate to it." % group.name())
    pattern = os.path.join(directory, "plate.%04d.exr").replace("\\", "/")
    return {"path": pattern, "first": int(first), "last": int(last), "offset": 0, "color": working_space(),
            "rendered": True}


class Renderer(object):
    """Renders the group's input into a rendered source's files, a frame per ``frame(f)``
    call. ``start()``, ``frame(f)`` and ``finish()`` run on Nuke's main thread (the tracking
    thread calls them through ``nuke.executeInMainThreadWithResult``); ``start`` and
    ``frame`` return "" or what went wrong. Proxy mode is off while a frame renders: the
    plate must be full-size, as the handles are (a Write renders at the active scale)."""

    def __init__(self, group, source, input_name="Plate", channels="rgb"):
        self.group, self.name, self.source, self.write = group, group.name(), source, None
        self.input_name, self.channels = input_name, channels

    def start(self):
        try:
            directory = os.path.dirname(self.source["path"])
            if not os.path.isdir(directory):
                os.makedirs(directory)
            self.group.begin()  # a button already runs inside the group; the main loop does not
            try:
                plate = nuke.toNode(self.input_name)
                write = nuke.nodes.Write(name=WRITER, file=self.source["path"], file_type="exr",
                                         channels=self.channels, create_directories=True)
                write.setInput(0, plate)
            finally:
                self.group.end()
            self.write = write
        except Exception as exc:
            return self._failed(exc)
        return ""

    def frame(self, f):
        write, proxy = self.write, nuke.root().knob("proxy")
        if proxy is not None and not proxy.value():
            proxy = None  # nothing to switch
        try:
            if write is None:
                raise RuntimeError("the temporary Write node is missing")
            if proxy is not None:
                proxy.setValue(False)
            try:
                nuke.execute(write, int(f), int(f), 1)
            finally:
                if proxy is not None:
                    proxy.setValue(True)
        except Exception as exc:
            return self._failed(exc)
        return ""

    def finish(self):
        """Remove the temporary Write (main thread; safe to call twice)."""
        write, self.write = self.write, None
        if write is not None:
            try:
                nuke.delete(write)
            except Exception:
                pass  # it went with its group

    def _failed(self, exc):
        return "Nuke could not render %s's input for tracking: %s" % (self.name, exc)


def render_now(group, source, input_name="Plate", channels="rgb"):
    """Render every frame of a rendered source at once (main thread: the live preview's one
    frame, the mask input's alpha, scripts and tests)."""
    renderer = Renderer(group, source, input_name, channels)
    try:
        problem = renderer.start()
        for f in range(source["first"], source["last"] + 1):
            problem = problem or renderer.frame(f)
    finally:
        renderer.finish()
    if problem:
        raise FrameError(problem)
    return source
