"""A FAKE ``nuke`` module for samroto's tests. It is not Nuke and not Foundry's code.

It implements only the calls samroto's Nuke plugin uses, each as Foundry's Nuke Python
API reference documents it (Nuke 13-16; https://learn.foundry.com/nuke/developers/
pythonreference and .../pythondevguide): ``nuke.createNode``, ``nuke.nodes.<Class>(**knobs)``,
``nuke.toNode``, ``nuke.root``, ``nuke.thisNode``, ``nuke.thisGroup``, ``nuke.frame``,
``nuke.delete``, ``nuke.execute``, ``nuke.filename``, ``nuke.message``, ``nuke.tcl``
(``add_layer`` only), ``nuke.executeInMainThread``, ``nuke.executeInMainThreadWithResult``,
``nuke.ProgressTask``, ``nuke.nodePaste``, ``nuke.menu``, ``nuke.thisKnob`` with each node's
``knobChanged`` script and ``nuke.addKnobChanged`` callbacks run on every knob change, a
``Viewer``'s ``colour_sample_bbox``; ``Node`` (``Class``, ``name``,
``knob``/``[]``, ``knobs``, ``addKnob``, ``removeKnob``, ``input``, ``setInput``,
``inputs``, ``format``, ``frameRange``), ``Group.begin/end/nodes``; ``FrameRange``; knobs
(``Tab_Knob``, ``Text_Knob``, ``PyScript_Knob``, ``Int_Knob``, ``Double_Knob``,
``Boolean_Knob``, ``String_Knob``, ``File_Knob``, ``Enumeration_Knob``, ``Channel_Knob``,
``Format_Knob``, ``XY_Knob``, ``BBox_Knob`` with the ``Array_Knob`` animation calls
``setValueAt``, ``valueAt``, ``setAnimated``, ``isAnimated``, ``isKeyAt``, ``removeKeyAt``
and ``Knob.getKeyList``).

Where Nuke refuses or differs, the fake does too; every such behaviour names its source
where it is implemented (Foundry's docs first; where they are silent, what people who ran
Nuke report). In short:

- Threads: Nuke's API belongs to the main thread; a worker talks to it only through
  ``executeInMainThread``/``executeInMainThreadWithResult``, and those must never be
  called from the main thread ("or NUKE will hang"). The fake raises ``RuntimeError``.
- Buttons: a ``PyScript_Knob`` on a Group runs with that Group as the current context
  (``thisGroup()``; ``nuke.nodes.X()`` lands inside it; plain names resolve inside it).
- Proxy mode (root ``proxy``): ``nuke.filename`` gives a Read's proxy file when it has
  one; formats and x/y knob values stay full-size; a Write renders at the proxy scale
  into its ``proxy`` file.
- Movie Reads: Nuke numbers a movie's frames from 1 (``origfirst`` 1); ``first``/``last``
  trim the clip without renumbering it.
- ``nuke.tcl`` passes each argument as one Tcl word, never re-parsed.

Deliberate limits: ``nuke.execute`` really renders, but only what a test graph needs:
``Read`` of an image sequence (decoded with OpenImageIO) or of a movie (PyAV, with no
colour transform), ``Dot``/``NoOp``/disabled nodes
(pass input 0), ``Grade`` (its ``multiply`` knob), a Group's ``Input``; into a ``Write``
of EXR files (channels ``rgb``, or ``alpha`` from a Read of images with an alpha). ``nuke.nodePaste`` reads the flat ``Class { knob value ... }`` blocks of a
.nk file, reads a Roto node's ``curves`` knob (``rotopaint.read_curves``: Foundry's Roto
serialisation format) and runs each node's ``onCreate`` knob, as Nuke does when it creates a node.
Tests play Nuke's main loop with ``_process_events()`` (runs what the
``executeInMainThread`` calls queued) and the user's Cancel button with
``_cancel_progress()``.
"""

import os
import queue
import re
import threading
import traceback

import numpy as np

__all__ = []  # the API is looked up by name, as in Nuke

_MAIN_THREAD = threading.main_thread()
REPLACE = 1  # nuke.filename mode


def _main_only(what):
    if threading.current_thread() is not _MAIN_THREAD:
        raise RuntimeError("fake nuke: %s called off the main thread; use nuke.executeInMainThread" % what)


# --- knobs -------------------------------------------------------------------------------

class Knob(object):
    def __init__(self, name, label=None, value=None):
        self._name, self._label, self._value = name, label if label is not None else name, value
        self._node = None
        self._visible, self._enabled, self._flags, self._tooltip = True, True, set(), ""

    def name(self):
        return self._name

    def label(self):
        return self._label

    def setLabel(self, label):
        self._label = label

    def node(self):
        return self._node

    def Class(self):
        return type(self).__name__

    def value(self):
        _main_only("Knob.value")
        return self._value

    def getValue(self):
        return self.value()

    def setValue(self, value):
        _main_only("Knob.setValue")
        self._value = value
        _knob_changed(self)
        return True

    def setFlag(self, flag):
        self._flags.add(flag)

    def setVisible(self, visible):
        self._visible = bool(visible)

    def visible(self):
        return self._visible

    def setEnabled(self, enabled):
        self._enabled = bool(enabled)

    def enabled(self):
        return self._enabled

    def setTooltip(self, text):
        self._tooltip = text

    def isAnimated(self):
        return False

    def getKeyList(self):
        return []


_KNOB_CONTEXT = []  # the knob whose change is being answered (thisKnob)


def _knob_changed(knob):
    """Run the knob's node's ``knobChanged`` script, as Nuke runs a node's knobChanged for
    "any knob change, including changes made programmatically" with the knob in
    ``nuke.thisKnob()`` and the node in ``nuke.thisNode()`` (nuke.addKnobChanged,
    https://learn.foundry.com/nuke/developers/17.1/pythondevguide/_autosummary/
    nuke.addKnobChanged.html; the node's own ``knobChanged`` knob holds such a script:
    "For many of the nuke.add...() functions ... there are also knobs with the same name",
    https://learn.foundry.com/nuke/developers/130/pythondevguide/callbacks.html). A script
    that keeps changing knobs that trigger it again would never end in Nuke: the fake
    stops it at a depth of 20."""
    node = knob._node
    if node is None:
        return
    script = node._knobs.get("knobChanged")
    if len(_KNOB_CONTEXT) > 20:
        raise RuntimeError("fake nuke: knobChanged keeps triggering itself (%s)" % knob.name())
    _KNOB_CONTEXT.append(knob)
    _THIS.append(node)
    try:
        if script is not None and script._value and knob is not script:
            exec(script._value, {"nuke": _module()})
        for call, args, kwargs, node_class, only in list(_KNOB_CALLBACKS):
            if node_class in ("*", node.Class()) and only in (None, node):
                call(*args, **kwargs)
    finally:
        _THIS.pop()
        _KNOB_CONTEXT.pop()


_KNOB_CALLBACKS = []


def addKnobChanged(call, args=(), kwargs={}, nodeClass="*", node=None):
    """``nuke.addKnobChanged``: ``call(*args, **kwargs)`` on every knob change of a node of
    ``nodeClass`` (or of ``node``), the knob in ``thisKnob()`` and the node in ``thisNode()``
    (https://learn.foundry.com/nuke/developers/17.1/pythondevguide/_autosummary/
    nuke.addKnobChanged.html)."""
    _KNOB_CALLBACKS.append((call, tuple(args), dict(kwargs), nodeClass, node))


def _viewer_sample(viewer, x0, y0, x1, y1):
    """Test helper: the artist Ctrl+clicks (x0 == x1, y0 == y1) or Ctrl+Shift+drags in the
    Viewer: Nuke keeps the sampled pixel or region in the Viewer node's
    ``colour_sample_bbox`` (normalised: x -1..1 across the image's width, y in the same
    unit from its centre), the knob every community picker reads (e.g. Nukepedia's
    "sample the Viewer" snippets, bbox.x() * w/2 + w/2)."""
    knob = viewer["colour_sample_bbox"]
    for i, v in enumerate((x0, y0, x1, y1)):
        knob._values[i] = float(v)
    _knob_changed(knob)


def thisKnob():
    """The knob a knobChanged script answers (nuke.thisKnob)."""
    return _KNOB_CONTEXT[-1] if _KNOB_CONTEXT else None


class Tab_Knob(Knob):
    pass


class Text_Knob(Knob):
    def __init__(self, name, label=None, text=""):
        Knob.__init__(self, name, label, text)


class PyScript_Knob(Knob):
    def __init__(self, name, label=None, command=""):
        Knob.__init__(self, name, label, command)

    def execute(self):
        """Run the knob's script as Nuke does when its button is pressed: ``thisNode()`` is
        the knob's node and, on a Group, the Group is the current context, so
        ``thisGroup()`` is that Group, ``nuke.nodes.X()`` makes X inside it and a plain name
        given to ``toNode`` is looked up inside it. Sources: ``nuke.thisGroup`` "Returns the
        current context Group node" (https://learn.foundry.com/nuke/developers/16.0/
        pythondevguide/_autosummary/nuke.thisGroup.html); as people who ran it report,
        Cryptomatte's gizmo button wraps its work in ``with nuke.root():`` (later ``with
        <parent group>:``) because a group's button otherwise creates its nodes inside the
        group (github.com/Psyop/Cryptomatte nuke/cryptomatte_utilities.py
        ``decryptomatte_button``, pull request #127)."""
        _main_only("PyScript_Knob.execute")
        _THIS.append(self._node)
        inside = isinstance(self._node, Group)
        if inside:
            _CONTEXT.append(self._node)
        try:
            exec(self._value, {"nuke": _module()})
        finally:
            if inside:
                _CONTEXT.pop()
            _THIS.pop()


class String_Knob(Knob):
    def __init__(self, name, label=None, value=""):
        Knob.__init__(self, name, label, value)


class File_Knob(String_Knob):
    pass


class Multiline_Eval_String_Knob(String_Knob):
    pass


class Int_Knob(Knob):
    def __init__(self, name, label=None, value=0):
        Knob.__init__(self, name, label, int(value))

    def setValue(self, value):
        return Knob.setValue(self, int(value))


class Double_Knob(Knob):
    def __init__(self, name, label=None, value=0.0):
        Knob.__init__(self, name, label, float(value))

    def setValue(self, value):
        return Knob.setValue(self, float(value))


class Boolean_Knob(Knob):
    def __init__(self, name, label=None, value=False):
        Knob.__init__(self, name, label, bool(value))

    def setValue(self, value):
        return Knob.setValue(self, bool(value))


class Enumeration_Knob(Knob):
    def __init__(self, name, label, items):
        Knob.__init__(self, name, label, items[0] if items else "")
        self._items = list(items)

    def values(self):
        return list(self._items)

    def setValue(self, value):
        if isinstance(value, int):
            value = self._items[value]
        if value not in self._items:
            raise ValueError("%s: %r is not one of %s" % (self._name, value, self._items))
        return Knob.setValue(self, value)


class Format_Knob(Knob):
    """A node's full-size format (``value()`` -> ``Format``). On a Read, until it is set the
    format is read from the header of the Read's full-size ``file`` (Read reference:
    "format: Sets the size of the file. Typically it is guessed correctly from the file
    header"; the separate "proxy format" knob is the proxy's, https://learn.foundry.com/
    nuke/11.1/content/reference_guide/image_nodes/read.html)."""

    def __init__(self, name, label=None):
        Knob.__init__(self, name, label, None)

    def value(self):
        _main_only("Format_Knob.value")
        if self._value is None and self._node is not None and self._node.Class() == "Read":
            node = self._node
            return Format(*_image_size(_frame_path(node["file"]._value, node["first"]._value)))
        return self._value

    def setValue(self, value):
        if not isinstance(value, Format):
            raise TypeError("fake nuke: Format_Knob.setValue takes a nuke.Format")
        return Knob.setValue(self, value)


class Channel_Knob(Knob):
    """value() is 'layer.channel', e.g. 'rgba.alpha'."""

    def __init__(self, name, label=None, depth=1):
        Knob.__init__(self, name, label, "rgba.alpha")

    def setValue(self, value):
        if value != "none" and value.split(".")[0] not in _LAYERS:
            raise ValueError("%s: unknown channel %s" % (self._name, value))
        return Knob.setValue(self, value)


class Array_Knob(Knob):
    """Values per index; once animated, keys {frame: value} per index."""

    SIZE = 1

    def __init__(self, name, label=None):
        Knob.__init__(self, name, label, None)
        self._values = [0.0] * self.SIZE
        self._keys = [None] * self.SIZE

    def _indices(self, index):
        return range(self.SIZE) if index in (-1, None) else [index]

    def setValue(self, value, index=-1):
        _main_only("Array_Knob.setValue")
        values = value if isinstance(value, (list, tuple)) else [value] * self.SIZE
        for i in self._indices(index):
            v = float(values[i] if isinstance(value, (list, tuple)) else value)
            if self._keys[i] is not None:
                self._keys[i][frame()] = v  # an animated knob keys the current frame
            else:
                self._values[i] = v
        _knob_changed(self)
        return True

    def setAnimated(self, index=-1):
        _main_only("Array_Knob.setAnimated")
        for i in self._indices(index):
            if self._keys[i] is None:
                self._keys[i] = {}
        return True

    def isAnimated(self, index=-1):
        return any(self._keys[i] is not None for i in self._indices(index))

    def setValueAt(self, value, time, index=-1):
        _main_only("Array_Knob.setValueAt")
        for i in self._indices(index):
            if self._keys[i] is None:
                self._keys[i] = {}
            self._keys[i][float(time)] = float(value)
        _knob_changed(self)
        return True

    def valueAt(self, time, index=-1):
        _main_only("Array_Knob.valueAt")
        out = [self._value_at(i, float(time)) for i in range(self.SIZE)]
        return out if index in (-1, None) and self.SIZE > 1 else out[0 if index in (-1, None) else index]

    def _value_at(self, i, t):
        keys = self._keys[i]
        if not keys:
            return self._values[i]
        times = sorted(keys)
        if t <= times[0]:
            return keys[times[0]]
        if t >= times[-1]:
            return keys[times[-1]]
        # linear between keys (Nuke's default is smooth; samroto only reads values on keys)
        for a, b in zip(times, times[1:]):
            if a <= t <= b:
                return keys[a] + (keys[b] - keys[a]) * (t - a) / (b - a)

    def value(self, index=None):
        """All values as a list for a knob of several (``XY_Knob``: [x, y]), else the one;
        ``index`` picks one."""
        return self.valueAt(frame(), index)

    def getValue(self, index=None):
        return self.value(index)

    def isKeyAt(self, time, index=-1):
        return any(self._keys[i] and float(time) in self._keys[i] for i in self._indices(index))

    def removeKeyAt(self, time, index=-1):
        _main_only("Array_Knob.removeKeyAt")
        for i in self._indices(index):
            if self._keys[i]:
                self._keys[i].pop(float(time), None)
        _knob_changed(self)
        return True

    def getKeyList(self):
        found = set()
        for keys in self._keys:
            found.update(keys or ())
        return sorted(found)


class XY_Knob(Array_Knob):
    SIZE = 2


class BBox_Knob(Array_Knob):
    """Indices 0..3 are x, y, r, t (Nuke pixels, y up); ``x()``, ``y()``, ``r()``, ``t()``
    (nuke.BBox_Knob)."""
    SIZE = 4

    def x(self):
        return self.value(0)

    def y(self):
        return self.value(1)

    def r(self):
        return self.value(2)

    def t(self):
        return self.value(3)


# --- nodes -------------------------------------------------------------------------------

class FrameRange(object):
    """``nuke.FrameRange``: ``first()``, ``last()``, ``frames()``, ``isInRange(n)`` and
    iteration over the frames (Nuke Python API, nuke.FrameRange)."""

    def __init__(self, first, last, increment=1):
        self._first, self._last, self._incr = int(first), int(last), int(increment)

    def first(self):
        return self._first

    def last(self):
        return self._last

    def frames(self):
        return len(range(self._first, self._last + 1, self._incr))

    def isInRange(self, n):
        return int(self._first <= n <= self._last)

    def __iter__(self):
        return iter(range(self._first, self._last + 1, self._incr))


class Format(object):
    def __init__(self, width, height):
        self._w, self._h = int(width), int(height)

    def width(self):
        return self._w

    def height(self):
        return self._h


# The Read's knobs (Read reference, https://learn.foundry.com/nuke/11.1/content/reference_guide/
# image_nodes/read.html): ``file`` and ``proxy`` (the proxy file, "used if proxy mode is on"),
# ``format``, the frame range ``first``/``last`` ("The first frame number of a sequence to
# display": the files' own numbers) with ``before``/``after`` for the frames outside it, the
# ``origfirst``/``origlast`` the file holds, and ``frame_mode``/``frame``, "the relation
# between the current frame and the frame read in" (expression, start at, offset:
# https://learn.foundry.com/nuke/8.0/content/getting_started/managing_scripts/
# changing_read_frames.html; an empty ``frame`` reads frame f at frame f).
FRAME_MODES = ["expression", "start at", "offset"]
_KNOBS = {
    "Read": lambda: [File_Knob("file"), File_Knob("proxy"), Format_Knob("format"),
                     Int_Knob("first", value=1), Int_Knob("last", value=1),
                     Int_Knob("origfirst", value=1), Int_Knob("origlast", value=1),
                     Enumeration_Knob("before", "before", ["hold", "loop", "bounce", "black"]),
                     Enumeration_Knob("after", "after", ["hold", "loop", "bounce", "black"]),
                     String_Knob("colorspace", value="default"), Boolean_Knob("raw"),
                     Enumeration_Knob("on_error", "missing frames", ["error", "black", "checkerboard",
                                                                     "nearest frame"]),
                     Enumeration_Knob("frame_mode", "frame", FRAME_MODES),
                     String_Knob("frame", value=""), PyScript_Knob("reload", "reload", "")],
    "Write": lambda: [File_Knob("file"), File_Knob("proxy"), String_Knob("file_type", value="exr"),
                      String_Knob("channels", value="rgb"), String_Knob("colorspace", value="default"),
                      Boolean_Knob("raw"), Boolean_Knob("create_directories")],
    "Copy": lambda: [String_Knob("from0", value="rgba.alpha"), String_Knob("to0", value="rgba.alpha")],
    "Grade": lambda: [Double_Knob("multiply", value=1.0)],
    "Input": lambda: [Int_Knob("number")],
    "Viewer": lambda: [BBox_Knob("colour_sample_bbox")],
    "Roto": lambda: [String_Knob("output", value="alpha"), String_Knob("format", value="")],
    # Project settings: the frame range, the script's name and proxy mode (``proxy`` on/off and
    # ``proxy_scale``, https://learn.foundry.com/nuke/11.2/content/getting_started/
    # managing_scripts/proxy_mode.html).
    "Root": lambda: [Int_Knob("first_frame", value=1), Int_Knob("last_frame", value=100),
                     File_Knob("name"), Boolean_Knob("proxy"), Double_Knob("proxy_scale", value=0.5)],
}
_INPUTS = {"Viewer": 10, "Copy": 2, "Read": 0, "Input": 0, "Root": 0, "Roto": 1, "Constant": 0}
_LAYERS = {"rgba", "rgb", "alpha", "mask", "none"}


class Node(object):
    def __init__(self, cls, parent):
        self._class, self._parent = cls, parent
        self._knobs = {}
        self._inputs = [None] * _INPUTS.get(cls, 1)
        for k in [String_Knob("name", value=""), Boolean_Knob("disable"), String_Knob("label"),
                  Multiline_Eval_String_Knob("onCreate"), Multiline_Eval_String_Knob("knobChanged")] + \
                _KNOBS.get(cls, lambda: [])():
            self._attach(k)

    def _attach(self, knob):
        knob._node = self
        self._knobs[knob.name()] = knob

    def Class(self):
        return self._class

    def name(self):
        return self._knobs["name"]._value

    def setName(self, name):
        self._knobs["name"]._value = name

    def fullName(self):
        up = self._parent.fullName() if self._parent is not None and self._parent is not _ROOT else ""
        return up + "." + self.name() if up else self.name()

    def knob(self, name):
        _main_only("Node.knob")
        return self._knobs.get(name)

    def __getitem__(self, name):
        k = self.knob(name)
        if k is None:
            raise NameError("knob %s does not exist" % name)
        return k

    def knobs(self):
        _main_only("Node.knobs")
        return dict(self._knobs)

    def allKnobs(self):
        return list(self._knobs.values())

    def addKnob(self, knob):
        _main_only("Node.addKnob")
        if knob.name() in self._knobs:
            raise ValueError("knob %s already exists" % knob.name())
        self._attach(knob)

    def removeKnob(self, knob):
        _main_only("Node.removeKnob")
        del self._knobs[knob.name()]

    def input(self, i):
        return self._inputs[i] if i < len(self._inputs) else None

    def inputs(self):
        return len(self._inputs)

    def setInput(self, i, node):
        _main_only("Node.setInput")
        while len(self._inputs) <= i:
            self._inputs.append(None)
        self._inputs[i] = node
        return True

    def format(self):
        """The node's full-size format: a Read's ``format`` knob (from its full-size file,
        never the proxy: in proxy mode "all images and all x/y positions are scaled" by the
        proxy scale, while formats and knob values stay full-size, https://
        learn.foundry.com/nuke/11.2/content/getting_started/managing_scripts/
        proxy_mode.html); other nodes pass their input's on."""
        if self._class == "Read":
            return self["format"].value()
        up = self.input(0)
        return up.format() if up is not None else Format(*_ROOT_FORMAT)

    def frameRange(self):
        """``Node.frameRange()`` -> ``FrameRange``: "Frame range for this node"
        (https://learn.foundry.com/nuke/developers/latest/pythonreference/_autosummary/
        nuke.Node.html). A Read's is its frame range ``first``..``last`` moved by its frame
        mode ("start at" S puts ``first`` at S, "offset" k adds k; an expression is beyond
        the fake); a node without time controls has its input's; nothing connected: the
        project's range."""
        _main_only("Node.frameRange")
        if self._class == "Read":
            first, last = self["first"]._value, self["last"]._value
            shift = str(self["frame"]._value).strip()
            if shift:
                mode = self["frame_mode"]._value
                if mode == "start at":
                    return FrameRange(int(shift), int(shift) + last - first)
                if mode == "offset":
                    return FrameRange(first + int(shift), last + int(shift))
                raise NotImplementedError("the fake cannot evaluate the frame expression %r" % shift)
            return FrameRange(first, last)
        if self._class == "Input":
            up = self._parent.input(self["number"]._value) if self._parent is not None else None
        else:
            up = self.input(0)
        return up.frameRange() if up is not None else FrameRange(_ROOT["first_frame"]._value,
                                                                 _ROOT["last_frame"]._value)

    def parent(self):
        return self._parent

    def __repr__(self):
        return "<fake nuke %s %s>" % (self._class, self.name())


class Group(Node):
    def __init__(self, cls, parent):
        Node.__init__(self, cls, parent)
        self._children = []

    def begin(self):
        _main_only("Group.begin")
        _CONTEXT.append(self)
        return self

    def end(self):
        _CONTEXT.pop()

    def __enter__(self):
        return self.begin()

    def __exit__(self, *exc):
        self.end()

    def nodes(self):
        return list(self._children)

    def node(self, name):
        for n in self._children:
            if n.name() == name:
                return n
        return None

    def format(self):
        if self._class == "Root":
            return Format(*_ROOT_FORMAT)
        return Node.format(self)

    def frameRange(self):
        """A Group's frame range is its output's (its ``Output`` node's input)."""
        if self._class == "Root":
            return FrameRange(self["first_frame"]._value, self["last_frame"]._value)
        out = next((n for n in self._children if n.Class() == "Output"), None)
        up = out.input(0) if out is not None else None
        return up.frameRange() if up is not None else Node.frameRange(self)


_ROOT = Group("Root", None)
_ROOT.setName("root")
_ROOT_FORMAT = (2048, 1556)
_CONTEXT = [_ROOT]
_THIS = []
_COUNTS = {}


def _new_node(cls, knobs):
    _main_only("creating a node")
    parent = _CONTEXT[-1]
    node = (Group if cls in ("Group", "Root") else Node)(cls, parent)
    _COUNTS[cls] = _COUNTS.get(cls, 0) + 1
    node.setName("%s%d" % (cls, _COUNTS[cls]))
    for name, value in knobs.items():
        if name == "name":
            node.setName(value)
        elif node.knob(name) is None:
            node.addKnob(String_Knob(name, value=value))
        else:
            node[name].setValue(value)
    parent._children.append(node)
    return node


class _Nodes(object):
    def __getattr__(self, cls):
        return lambda **knobs: _new_node(cls, knobs)


nodes = _Nodes()


def createNode(node, args="", inpanel=True):
    """Like Nuke: a new node of class ``node``, connected to the selected node (tests set
    ``_SELECTED``); ``args`` is 'knob value' pairs."""
    knobs = dict(zip(args.split()[::2], args.split()[1::2])) if args else {}
    n = _new_node(node, knobs)
    if _SELECTED and n.inputs():
        n.setInput(0, _SELECTED[-1])
    return n


_SELECTED = []


def toNode(name):
    """The node called ``name``, looked up in the current context group; a name starting
    with ``root.`` is a full path from the script's top (the naming of ``nuke.knob``:
    "'root' is the node name of the outermost group", https://learn.foundry.com/nuke/
    developers/latest/pythondevguide/_autosummary/nuke.knob.html). Nuke may search
    further up for a plain name; the fake does not, so code must not count on it."""
    node = _CONTEXT[-1]
    if name == "root":
        return _ROOT
    if name.startswith("root."):
        node, name = _ROOT, name[len("root."):]
    for part in name.split("."):
        node = node.node(part) if isinstance(node, Group) else None
        if node is None:
            return None
    return node


def root():
    return _ROOT


def allNodes(filter=None, group=None):
    found = (group or _CONTEXT[-1]).nodes()
    return [n for n in found if filter is None or n.Class() == filter]


def thisNode():
    return _THIS[-1] if _THIS else _CONTEXT[-1]


def thisGroup():
    """"Returns the current context Group node" (nuke.thisGroup)."""
    return _CONTEXT[-1]


_FRAME = [1]


def frame(f=None):
    """nuke.frame() -> the current frame; nuke.frame(f) sets it."""
    if f is not None:
        _FRAME[0] = int(f)
    return _FRAME[0]


def delete(node):
    _main_only("nuke.delete")
    node._parent._children.remove(node)


def _tcl_words(text):
    """A Tcl list's elements (braces group, as Tcl parses a list)."""
    words, depth, word = [], 0, ""
    for c in text:
        if c == "{":
            depth += 1
            if depth == 1:
                continue
        elif c == "}":
            depth -= 1
            if depth == 0:
                words.append(word)
                word = ""
                continue
        if c.isspace() and depth == 0:
            if word:
                words.append(word)
            word = ""
        else:
            word += c
    if depth:
        raise RuntimeError("unmatched open brace in list")
    return words + ([word] if word else [])


def tcl(command, *args):
    """``nuke.tcl(s, *args)`` (Nuke Python API: "Run a tcl command. The arguments must be
    strings and passed to the command. If no arguments are given and the command has
    whitespace in it then it is instead interpreted as a tcl program"). So each argument is
    one Tcl word, passed as it is, never re-parsed: ``nuke.tcl("add_layer", "{l l.c}")``
    hands add_layer the list ``{l l.c}``, whose one element ``l l.c`` is not a layer name
    (Nuke refuses it); ``nuke.tcl("add_layer", "l l.c")`` or the program form
    ``nuke.tcl("add_layer {l l.c}")`` are right. Only ``add_layer`` is implemented: it
    makes a new layer and its channels known."""
    if not args and " " in command.strip():
        words = _tcl_words(command)
        command, args = words[0], tuple(words[1:])
    if command == "add_layer":
        if len(args) != 1:
            raise RuntimeError("add_layer takes one list: {layer layer.channel ...}")
        elements = _tcl_words(args[0])
        layer, channels = elements[0] if elements else "", elements[1:]
        if not layer or not all(c.isalnum() or c == "_" for c in layer):
            raise RuntimeError("add_layer: bad layer name %r" % layer)
        for channel in channels:
            if not channel.startswith(layer + ".") or not channel.split(".", 1)[1].replace("_", "").isalnum():
                raise RuntimeError("add_layer: bad channel %r for layer %r" % (channel, layer))
        _LAYERS.add(layer)
        return ""
    raise NotImplementedError("fake nuke.tcl knows only add_layer, not %r" % command)


def _proxy_mode():
    return bool(_ROOT["proxy"]._value)


def filename(node, mode=0):
    """``nuke.filename(node, i)``: "the current filename, based on the root.proxy settings
    and which of the fullsize/proxy filenames are filled in" (https://learn.foundry.com/
    nuke/developers/131/pythondevguide/_autosummary/nuke.filename.html): in proxy mode a
    node's ``proxy`` file when it has one, else its ``file``; frame token kept (mode
    REPLACE: the current frame's file)."""
    _main_only("nuke.filename")
    proxy = node._knobs.get("proxy")
    path = proxy._value if _proxy_mode() and proxy is not None and proxy._value else node["file"]._value
    return _frame_path(path, frame()) if mode == REPLACE else path


_MESSAGES = []


def message(text):
    _main_only("nuke.message")
    _MESSAGES.append(text)


def warning(text):
    _MESSAGES.append("warning: " + text)


# --- threads and progress ----------------------------------------------------------------

_MAIN_QUEUE = queue.Queue()


def _worker_only(what):
    """Foundry's Threading guide (https://learn.foundry.com/nuke/developers/16.0/
    pythondevguide/threading.html): executeInMainThread and executeInMainThreadWithResult
    "should always be run from a child thread. If run from within the main thread, they
    freeze NUKE." The fake raises instead of hanging."""
    if threading.current_thread() is _MAIN_THREAD:
        raise RuntimeError("fake nuke: %s called on the main thread (Nuke would hang)" % what)


def executeInMainThread(call, args=(), kwargs=None):
    """Queue ``call(*args, **kwargs)`` for Nuke's main thread and return at once."""
    _worker_only("executeInMainThread")
    if not isinstance(args, tuple):
        args = (args,)
    _MAIN_QUEUE.put((call, args, kwargs or {}))


def executeInMainThreadWithResult(call, args=(), kwargs=None):
    """Run ``call(*args, **kwargs)`` on Nuke's main thread and wait for its result. As in
    Nuke's own code (nuke_internal/executeInMain.py, https://learn.foundry.com/nuke/
    developers/140/pythondevguide/_modules/nuke_internal/executeInMain.html), an exception
    in the call is printed, not raised, and the result is then None."""
    _worker_only("executeInMainThreadWithResult")
    if not isinstance(args, tuple):
        args = (args,)
    done, box = threading.Event(), [None]

    def run():
        try:
            box[0] = call(*args, **(kwargs or {}))
        except Exception:
            traceback.print_exc()
        finally:
            done.set()

    _MAIN_QUEUE.put((run, (), {}))
    done.wait()
    return box[0]


def _process_events(timeout=0.0):
    """Test helper (Nuke's event loop): run the queued main-thread calls; wait up to
    ``timeout`` seconds for the first one. Returns how many ran."""
    _main_only("_process_events")
    ran = 0
    try:
        item = _MAIN_QUEUE.get(timeout=timeout) if timeout else _MAIN_QUEUE.get_nowait()
        while True:
            call, args, kwargs = item
            call(*args, **kwargs)
            ran += 1
            item = _MAIN_QUEUE.get_nowait()
    except queue.Empty:
        return ran


_TASKS = []


class ProgressTask(object):
    """A progress bar with a Cancel button; usable from any thread (Foundry's example runs
    it in a worker thread)."""

    def __init__(self, name):
        self.name, self.progress, self.messages, self._cancelled = name, 0, [], False
        _TASKS.append(self)

    def setProgress(self, i):
        self.progress = int(i)

    def setMessage(self, text):
        self.messages.append(text)

    def isCancelled(self):
        return self._cancelled


def _cancel_progress():
    """Test helper: the user presses Cancel on every progress task."""
    for task in _TASKS:
        task._cancelled = True


# --- rendering (nuke.execute) ------------------------------------------------------------

def _frame_path(pattern, f):
    pattern = re.sub(r"#+", lambda m: "%0" + str(len(m.group())) + "d", pattern)
    return re.sub(r"%0?\d*d", lambda m: m.group() % f, pattern)


MOVIE_EXTENSIONS = (".mov", ".mp4", ".m4v", ".mkv", ".mxf", ".avi", ".webm", ".mpg", ".mpeg")


def _is_movie(path):
    return os.path.splitext(str(path))[1].lower() in MOVIE_EXTENSIONS


def _image_size(path):
    if _is_movie(path):
        import av

        with av.open(path) as container:
            stream = container.streams.video[0]
            return stream.codec_context.width, stream.codec_context.height
    import OpenImageIO as oiio

    inp = oiio.ImageInput.open(path)
    if inp is None:
        raise RuntimeError("Read: cannot open %s" % path)
    spec = inp.spec()
    inp.close()
    return spec.width, spec.height


def _movie_frame(path, index):
    """Frame ``index`` (0 = the first) of a movie as float RGB (no colour transform)."""
    import av

    with av.open(path) as container:
        for i, decoded in enumerate(container.decode(video=0)):
            if i == index:
                return decoded.to_ndarray(format="rgb24").astype(np.float32) / 255.0
    raise RuntimeError("Read: %s has no frame %d" % (path, index))


def _proxy_size(node):
    fmt = node.format()
    scale = float(_ROOT["proxy_scale"]._value)
    return max(1, int(round(fmt.width() * scale))), max(1, int(round(fmt.height() * scale)))


def _resize(px, size):
    """Nearest-neighbour resize of (H, W, C) to (width, height) = ``size``."""
    w, h = size
    rows = (np.arange(h) * px.shape[0] // h).clip(0, px.shape[0] - 1)
    cols = (np.arange(w) * px.shape[1] // w).clip(0, px.shape[1] - 1)
    return np.ascontiguousarray(px[rows][:, cols])


def _check_frame(node, f):
    """Frames outside a Read's ``first``..``last`` are an error here (the fake has no before/after)."""
    first, last = node["first"]._value, node["last"]._value
    if not first <= f <= last:
        raise RuntimeError("%s: frame %d is outside %d-%d" % (node.name(), f, first, last))


def _image_file(node, f):
    """A Read's image file for frame ``f``: (float32 pixels (H, W, C), its OIIO spec)."""
    import OpenImageIO as oiio

    buf = oiio.ImageBuf(_frame_path(filename(node), f))
    if buf.has_error:
        raise RuntimeError("%s: %s" % (node.name(), buf.geterror()))
    spec = buf.spec()
    return np.asarray(buf.get_pixels(oiio.FLOAT)).reshape(spec.height, spec.width, spec.nchannels), spec


def _read_pixels(node, f):
    """A Read at frame ``f`` (inside ``first``..``last``). An image sequence reads file
    number f. A movie's frames are numbered from 1 in Nuke (``origfirst``/``origlast`` 1..N;
    trimming sets ``first``/``last`` and renumbers nothing), so frame f is the movie's frame
    f - origfirst counted from 0: OpenPype's Nuke movie loader sets ``origfirst``/``first``
    to 1 for every movie and moves it with "start at" ("set first to 1",
    github.com/ynput/OpenPype openpype/hosts/nuke/plugins/load/load_mov.py). In proxy mode
    the image comes at the proxy scale (from the Read's proxy file when it has one)."""
    if str(node["frame"]._value).strip():
        raise NotImplementedError("the fake renders no retimed Read (frame %r)" % node["frame"]._value)
    _check_frame(node, f)
    path = filename(node)
    px = _movie_frame(path, f - node["origfirst"]._value) if _is_movie(path) else _image_file(node, f)[0]
    px = np.ascontiguousarray(px[..., :3] if px.shape[2] >= 3 else np.repeat(px[..., :1], 3, 2))
    return _resize(px, _proxy_size(node)) if _proxy_mode() else px


def _shown(node):
    """The node whose image ``node`` shows: past disabled nodes, Dots, NoOps and a Group's
    ``Input`` (to the Group's input of that number)."""
    while True:
        if node is None:
            raise RuntimeError("nuke.execute: an input is not connected")
        if node["disable"]._value or node.Class() in ("Dot", "NoOp"):
            node = node.input(0)
        elif node.Class() == "Input":
            node = node._parent.input(node["number"]._value)
        else:
            return node


def _pixels(node, f):
    """float32 RGB (H, W, 3), row 0 at the top, of ``node`` at frame ``f``."""
    node = _shown(node)
    cls = node.Class()
    if cls == "Read":
        return _read_pixels(node, f)
    if cls == "Grade":
        return _pixels(node.input(0), f) * np.float32(node["multiply"]._value)
    raise NotImplementedError("the fake nuke cannot render a %s node" % cls)


def _alpha(node, f):
    """float32 alpha (H, W) of ``node`` at frame ``f``: a Read's file's alpha channel (zero
    when the file has none: Nuke fills a channel the image lacks with black), through
    pass-throughs and a Group's ``Input``."""
    node = _shown(node)
    cls = node.Class()
    if cls != "Read" or _is_movie(filename(node)) or str(node["frame"]._value).strip():
        raise NotImplementedError("the fake nuke renders alpha only from a Read of images, not %s" % cls)
    _check_frame(node, f)
    px, spec = _image_file(node, f)
    alpha = px[..., spec.alpha_channel] if spec.alpha_channel >= 0 else np.zeros(px.shape[:2], np.float32)
    alpha = np.ascontiguousarray(alpha, np.float32)
    return _resize(alpha[..., None], _proxy_size(node))[..., 0] if _proxy_mode() else alpha


def execute(nameOrNode, start=None, end=None, incr=1, views=None, continueOnError=False):
    """Render a Write node over frames start..end (inclusive); start and end default to the
    project's range ("Default is root.first_frame", https://learn.foundry.com/nuke/
    developers/130/pythondevguide/_autosummary/nuke.render.html). A Write "executes all
    renders at the currently active scale: either full- or proxy-resolution", writing its
    ``proxy`` file in proxy mode (Write reference, https://learn.foundry.com/nuke/13.0/
    content/reference_guide/image_nodes/write.html; "click the file or proxy field ...
    depending on whether you want to render high res or low res images",
    https://learn.foundry.com/nuke/12.0/content/comp_environment/rendering/
    output_write_nodes.html). The docs name no fallback for a Write without a proxy file in
    proxy mode: the fake refuses it rather than guess."""
    _main_only("nuke.execute")
    node = toNode(nameOrNode) if isinstance(nameOrNode, str) else nameOrNode
    if node.Class() != "Write":
        raise RuntimeError("%s cannot be executed" % node.name())
    import OpenImageIO as oiio

    target = node["file"]._value
    if _proxy_mode():
        target = node["proxy"]._value
        if not target:
            raise RuntimeError("%s: proxy mode is on and it has no proxy file to render" % node.name())
    first = _ROOT["first_frame"]._value if start is None else start
    last = first if end is None else end
    channels = node["channels"]._value
    if channels not in ("rgb", "alpha"):
        raise NotImplementedError("the fake Write renders channels rgb or alpha, not %r" % channels)
    for f in range(int(first), int(last) + 1, int(incr)):
        # Write's ``channels``: "Sets the channels to render" (Write reference, above)
        px = _pixels(node.input(0), f) if channels == "rgb" else _alpha(node.input(0), f)[..., None]
        path = _frame_path(target, f)
        if node["create_directories"]._value:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        spec = oiio.ImageSpec(px.shape[1], px.shape[0], px.shape[2], oiio.HALF)
        spec.channelnames = ("R", "G", "B") if channels == "rgb" else ("A",)
        out = oiio.ImageOutput.create(path)
        if out is None or not out.open(path, spec):
            raise RuntimeError("Write failed: %s" % oiio.geterror())
        out.write_image(px)
        out.close()


# --- .nk paste ---------------------------------------------------------------------------

def _nk_value(text, i):
    """One knob value starting at text[i]: {brace block}, "quoted" or a bare word."""
    if text[i] == "{":
        depth, j = 0, i
        while True:
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    return text[i + 1:j], j + 1
            j += 1
    if text[i] == '"':
        j = text.index('"', i + 1)
        return text[i + 1:j], j + 1
    m = re.compile(r"\S+").match(text, i)
    return m.group(), m.end()


def nodePaste(s):
    """Paste the nodes of the .nk file ``s``; each node's onCreate runs as it is created."""
    _main_only("nuke.nodePaste")
    with open(s) as f:
        text = f.read()
    made = []
    for m in re.finditer(r"^(\w+) \{\n(.*?)^\}", text, re.S | re.M):
        body, i, knobs = m.group(2), 0, {}
        while True:
            km = re.compile(r"\s*(\w+) ").match(body, i)
            if not km:
                break
            knobs[km.group(1)], i = _nk_value(body, km.end())
        on_create = knobs.pop("onCreate", "")
        curves = knobs.pop("curves", None)
        knobs.pop("selected", None)
        knobs.pop("inputs", None)
        node = _new_node(m.group(1), knobs)
        if m.group(1) == "Roto":
            from . import rotopaint

            node._attach(rotopaint.CurveKnob("curves"))
            if curves is not None:   # the shapes as the script holds them (rotopaint.read_curves)
                node["curves"].fromScript(curves)
        node["onCreate"].setValue(on_create)
        if on_create:
            _THIS.append(node)
            try:
                exec(on_create, {"nuke": _module()})
            finally:
                _THIS.pop()
        made.append(node)
    return made[-1] if made else None


# --- menus -------------------------------------------------------------------------------

class Menu(object):
    def __init__(self, name):
        self.name, self.items = name, {}

    def addMenu(self, name, icon=None):
        return self.items.setdefault(name, Menu(name))

    def addCommand(self, name, command, shortcut="", icon=None):
        self.items[name] = command

    def findItem(self, name):
        return self.items.get(name)


_MENUS = {}


def menu(name):
    return _MENUS.setdefault(name, Menu(name))


_PLUGIN_PATH = []


def pluginAddPath(path):
    _PLUGIN_PATH.insert(0, path)


def _reset():
    """Test helper: a new empty script (File > New)."""
    _ROOT._children[:] = []
    del _CONTEXT[1:], _THIS[:], _SELECTED[:], _MESSAGES[:], _TASKS[:]
    _COUNTS.clear()
    _MENUS.clear()
    _KNOB_CALLBACKS[:] = []
    _FRAME[0] = 1
    _ROOT["first_frame"]._value, _ROOT["last_frame"]._value, _ROOT["name"]._value = 1, 100, ""
    _ROOT["proxy"]._value, _ROOT["proxy_scale"]._value = False, 0.5
    while not _MAIN_QUEUE.empty():
        _MAIN_QUEUE.get_nowait()


def _module():
    import sys

    return sys.modules[__name__]
