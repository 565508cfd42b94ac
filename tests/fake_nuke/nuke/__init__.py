"""A FAKE ``nuke`` module for samroto's tests. It is not Nuke and not Foundry's code.

It implements only the calls samroto's Nuke plugin uses, each as Foundry's Nuke Python
API reference documents it (Nuke 13-16; https://learn.foundry.com/nuke/developers/
pythonreference and .../pythondevguide): ``nuke.createNode``, ``nuke.nodes.<Class>(**knobs)``,
``nuke.toNode``, ``nuke.root``, ``nuke.thisNode``, ``nuke.frame``, ``nuke.delete``,
``nuke.execute``, ``nuke.filename``, ``nuke.message``, ``nuke.tcl`` (``add_layer`` only),
``nuke.executeInMainThread``, ``nuke.ProgressTask``, ``nuke.nodePaste``, ``nuke.menu``;
``Node`` (``Class``, ``name``, ``knob``/``[]``, ``knobs``, ``addKnob``, ``removeKnob``,
``input``, ``setInput``, ``inputs``, ``format``), ``Group.begin/end/nodes``; knobs
(``Tab_Knob``, ``Text_Knob``, ``PyScript_Knob``, ``Int_Knob``, ``Double_Knob``,
``Boolean_Knob``, ``String_Knob``, ``File_Knob``, ``Enumeration_Knob``, ``Channel_Knob``,
``XY_Knob``, ``BBox_Knob`` with the ``Array_Knob`` animation calls ``setValueAt``,
``valueAt``, ``setAnimated``, ``isAnimated``, ``isKeyAt``, ``removeKeyAt`` and
``Knob.getKeyList``).

Deliberate limits and one deliberate strictness:

- ``nuke.execute`` really renders, but only what a test graph needs: ``Read`` (decodes its
  file with OpenImageIO), ``Dot``/``NoOp``/disabled nodes (pass input 0), ``Grade``
  (its ``multiply`` knob), a Group's ``Input``; into a ``Write`` of EXR files.
- ``nuke.nodePaste`` reads the flat ``Class { knob value ... }`` blocks of a .nk file and
  runs each node's ``onCreate`` knob, as Nuke does when it creates a node.
- Nuke's API must be used from the main thread (Foundry: "use executeInMainThread" for
  anything that touches the UI or the node graph from another thread); real Nuke crashes
  or misbehaves, this fake raises ``RuntimeError`` so tests catch it.
- Tests play Nuke's main loop with ``_process_events()`` (runs what ``executeInMainThread``
  queued) and the user's Cancel button with ``_cancel_progress()``.
"""

import os
import queue
import re
import threading

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


class Tab_Knob(Knob):
    pass


class Text_Knob(Knob):
    def __init__(self, name, label=None, text=""):
        Knob.__init__(self, name, label, text)


class PyScript_Knob(Knob):
    def __init__(self, name, label=None, command=""):
        Knob.__init__(self, name, label, command)

    def execute(self):
        """Run the knob's script as Nuke does when its button is pressed (thisNode() = node)."""
        _main_only("PyScript_Knob.execute")
        _THIS.append(self._node)
        try:
            exec(self._value, {"nuke": _module()})
        finally:
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

    def value(self, index=0):
        return self.valueAt(frame(), index)

    def getValue(self, index=0):
        return self.value(index)

    def isKeyAt(self, time, index=-1):
        return any(self._keys[i] and float(time) in self._keys[i] for i in self._indices(index))

    def removeKeyAt(self, time, index=-1):
        _main_only("Array_Knob.removeKeyAt")
        for i in self._indices(index):
            if self._keys[i]:
                self._keys[i].pop(float(time), None)
        return True

    def getKeyList(self):
        found = set()
        for keys in self._keys:
            found.update(keys or ())
        return sorted(found)


class XY_Knob(Array_Knob):
    SIZE = 2


class BBox_Knob(Array_Knob):
    """Indices 0..3 are x, y, r, t (Nuke pixels, y up)."""
    SIZE = 4


# --- nodes -------------------------------------------------------------------------------

class Format(object):
    def __init__(self, width, height):
        self._w, self._h = int(width), int(height)

    def width(self):
        return self._w

    def height(self):
        return self._h


_KNOBS = {
    "Read": lambda: [File_Knob("file"), Int_Knob("first", value=1), Int_Knob("last", value=1),
                     Int_Knob("origfirst", value=1), Int_Knob("origlast", value=1),
                     String_Knob("colorspace", value="default"), Boolean_Knob("raw"),
                     String_Knob("on_error", value="error"), String_Knob("frame_mode", value="start at"),
                     String_Knob("frame", value=""), PyScript_Knob("reload", "reload", "")],
    "Write": lambda: [File_Knob("file"), String_Knob("file_type", value="exr"),
                      String_Knob("channels", value="rgb"), String_Knob("colorspace", value="default"),
                      Boolean_Knob("raw"), Boolean_Knob("create_directories")],
    "Copy": lambda: [String_Knob("from0", value="rgba.alpha"), String_Knob("to0", value="rgba.alpha")],
    "Grade": lambda: [Double_Knob("multiply", value=1.0)],
    "Input": lambda: [Int_Knob("number")],
    "Roto": lambda: [String_Knob("output", value="alpha"), String_Knob("format", value="")],
    "Root": lambda: [Int_Knob("first_frame", value=1), Int_Knob("last_frame", value=100),
                     File_Knob("name")],
}
_INPUTS = {"Copy": 2, "Read": 0, "Input": 0, "Root": 0, "Roto": 1, "Constant": 0}
_LAYERS = {"rgba", "rgb", "alpha", "mask", "none"}


class Node(object):
    def __init__(self, cls, parent):
        self._class, self._parent = cls, parent
        self._knobs = {}
        self._inputs = [None] * _INPUTS.get(cls, 1)
        for k in [String_Knob("name", value=""), Boolean_Knob("disable"), String_Knob("label"),
                  Multiline_Eval_String_Knob("onCreate")] + _KNOBS.get(cls, lambda: [])():
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
        if self._class == "Read":
            return Format(*_image_size(_frame_path(filename(self), self["first"]._value)))
        up = self.input(0)
        return up.format() if up is not None else Format(*_ROOT_FORMAT)

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
    node = _CONTEXT[-1]
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


def filename(node, mode=0):
    """The node's file knob, frame token kept (mode REPLACE: the current frame's file)."""
    path = node["file"]._value
    return _frame_path(path, frame()) if mode == REPLACE else path


_MESSAGES = []


def message(text):
    _main_only("nuke.message")
    _MESSAGES.append(text)


def warning(text):
    _MESSAGES.append("warning: " + text)


# --- threads and progress ----------------------------------------------------------------

_MAIN_QUEUE = queue.Queue()


def executeInMainThread(call, args=(), kwargs=None):
    """Queue ``call(*args, **kwargs)`` for Nuke's main thread and return at once."""
    if not isinstance(args, tuple):
        args = (args,)
    _MAIN_QUEUE.put((call, args, kwargs or {}))


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


def _image_size(path):
    import OpenImageIO as oiio

    inp = oiio.ImageInput.open(path)
    if inp is None:
        raise RuntimeError("Read: cannot open %s" % path)
    spec = inp.spec()
    inp.close()
    return spec.width, spec.height


def _pixels(node, f):
    """float32 RGB (H, W, 3), row 0 at the top, of ``node`` at frame ``f``."""
    if node is None:
        raise RuntimeError("nuke.execute: an input is not connected")
    cls = node.Class()
    if node["disable"]._value or cls in ("Dot", "NoOp"):
        return _pixels(node.input(0), f)
    if cls == "Read":
        first, last = node["first"]._value, node["last"]._value
        if not first <= f <= last:
            raise RuntimeError("%s: frame %d is outside %d-%d" % (node.name(), f, first, last))
        import OpenImageIO as oiio

        buf = oiio.ImageBuf(_frame_path(filename(node), f))
        if buf.has_error:
            raise RuntimeError("%s: %s" % (node.name(), buf.geterror()))
        px = buf.get_pixels(oiio.FLOAT)
        return np.ascontiguousarray(px[..., :3] if px.shape[2] >= 3 else np.repeat(px[..., :1], 3, 2))
    if cls == "Grade":
        return _pixels(node.input(0), f) * np.float32(node["multiply"]._value)
    if cls == "Input":
        return _pixels(node._parent.input(node["number"]._value), f)
    raise NotImplementedError("the fake nuke cannot render a %s node" % cls)


def execute(nameOrNode, start=None, end=None, incr=1, views=None, continueOnError=False):
    """Render a Write node over frames start..end (inclusive)."""
    _main_only("nuke.execute")
    node = toNode(nameOrNode) if isinstance(nameOrNode, str) else nameOrNode
    if node.Class() != "Write":
        raise RuntimeError("%s cannot be executed" % node.name())
    import OpenImageIO as oiio

    first = _ROOT["first_frame"]._value if start is None else start
    last = first if end is None else end
    for f in range(int(first), int(last) + 1, int(incr)):
        px = _pixels(node.input(0), f)
        path = _frame_path(node["file"]._value, f)
        if node["create_directories"]._value:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        spec = oiio.ImageSpec(px.shape[1], px.shape[0], 3, oiio.HALF)
        spec.channelnames = ("R", "G", "B")
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
        knobs.pop("selected", None)
        knobs.pop("inputs", None)
        node = _new_node(m.group(1), knobs)
        if m.group(1) == "Roto":
            from . import rotopaint

            node._attach(rotopaint.CurveKnob("curves"))
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
    _FRAME[0] = 1
    _ROOT["first_frame"]._value, _ROOT["last_frame"]._value, _ROOT["name"]._value = 1, 100, ""
    while not _MAIN_QUEUE.empty():
        _MAIN_QUEUE.get_nowait()


def _module():
    import sys

    return sys.modules[__name__]
