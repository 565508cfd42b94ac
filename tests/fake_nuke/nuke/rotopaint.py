"""FAKE ``nuke.rotopaint`` (see ../__init__.py): a Roto node's shapes as Foundry's reference
documents them — ``Shape(curves)`` (a list of ``ShapeControlPoint`` with a ``name``),
``ShapeControlPoint(x, y)`` with ``center``, ``leftTangent``, ``rightTangent``,
``featherLeftTangent``, ``featherRightTangent``, each an animated point with
``addPositionKey(time, CVec2)`` and ``getPosition(time)``; the Roto node's ``curves`` knob
with ``rootLayer``, ``changed()`` and ``fromScript(text)``. Tangents are offsets from their
point, in Nuke pixels (y up).

``CurveKnob.fromScript`` reads the knob's value as a saved script holds it — Foundry's
"Roto serialisation format" (NDK developer guide, advanced/rotoformat; format 1.2, Nuke 7+):
nested ``{...}`` lists; floats as decimals or ``x`` + 8 hex digits (IEEE 754 single); a
curve tree ``{{v 1.2} {f FLAGS} {n LAYER}}``; a layer ``{layer NAME {f} {t} {a} CHILD...}``
whose children are layers, ``curvegroup`` shapes and ``cubiccurve`` strokes; a shape
``{curvegroup NAME FLAGS bezier {MAIN FEATHER} {tx ...} {a ...}}`` whose FEATHER is a cubic
curve or ``idem`` (the same as MAIN); a cubic curve ``{cc {f FLAGS} {px TIMES ENTRY...}}``
with TIMES one key time or a braced list of them and three ENTRYs per control point (left
tangent, centre, right tangent), each ``{X Y}``, a coordinate being a float (the same at
every key) or a braced list of keys ``{value ...}`` in key-time order. This reading was
checked against shapes Nuke 10-15 saved in public scripts (single-key shapes with feather
curves, two-key shapes with and without tangent data). Like Nuke, text that breaks the
format is refused (RuntimeError naming what is wrong). Strokes are kept only as names.
"""

import struct

from _curvelib import CVec2

from . import Knob

FORMAT_VERSION = 1.2


class AnimCTransform(object):
    def __init__(self, x=0.0, y=0.0):
        self._rest, self.keys = CVec2(x, y), {}

    def addPositionKey(self, time, position):
        self.keys[float(time)] = CVec2(position.x, position.y)

    def getPosition(self, time):
        return self.keys.get(float(time), self._rest)


class ShapeControlPoint(object):
    def __init__(self, x=0.0, y=0.0):
        self.center = AnimCTransform(x, y)
        self.leftTangent, self.rightTangent = AnimCTransform(), AnimCTransform()
        self.featherCenter = AnimCTransform()
        self.featherLeftTangent, self.featherRightTangent = AnimCTransform(), AnimCTransform()


class Shape(list):
    def __init__(self, curves, *args):
        list.__init__(self)
        self.curves, self.name = curves, "Bezier1"


class Stroke(object):
    def __init__(self, name):
        self.name = name


class Layer(list):
    def __init__(self, name="Root"):
        list.__init__(self)
        self.name = name


class CurveKnob(Knob):
    def __init__(self, name):
        Knob.__init__(self, name)
        self.rootLayer = Layer()
        self.changes = 0

    def changed(self):
        self.changes += 1

    def fromScript(self, text):
        """Replace the knob's shapes with those serialised in ``text``."""
        self.rootLayer = read_curves(text, self)
        self.changed()
        return True


# --- the serialisation --------------------------------------------------------------------

def _refuse(what):
    raise RuntimeError("curves: %s" % what)


def parse_lists(text):
    """Tcl-style words and ``{...}`` lists as nested Python lists of strings."""
    stack, i, n = [[]], 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "{":
            stack.append([])
            i += 1
        elif c == "}":
            if len(stack) == 1:
                _refuse("unbalanced '}' at character %d" % i)
            done = stack.pop()
            stack[-1].append(done)
            i += 1
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                _refuse("unterminated quoted string")
            stack[-1].append(text[i + 1:j])
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in "{}":
                j += 1
            stack[-1].append(text[i:j])
            i = j
    if len(stack) != 1:
        _refuse("%d unclosed '{'" % (len(stack) - 1))
    return stack[0]


def nk_float(word):
    if not isinstance(word, str):
        _refuse("expected a number, got a list %r" % (word,))
    if word.startswith("x") and len(word) == 9:
        try:
            return struct.unpack(">f", bytes.fromhex(word[1:]))[0]
        except ValueError:
            pass
    try:
        return float(word)
    except ValueError:
        _refuse("expected a number, got %r" % word)


def _item(lst, tag):
    for x in lst:
        if isinstance(x, list) and x and x[0] == tag:
            return x
    return None


def read_curves(text, knob=None):
    """The Root layer of a ``curves`` knob's value."""
    top = parse_lists(text)
    tree = top[0] if len(top) == 1 and isinstance(top[0], list) else top
    version = _item(tree, "v")
    if version is None or abs(nk_float(version[1]) - FORMAT_VERSION) > 1e-6:
        _refuse("not a format %s curve tree (no {v ...} or another version)" % FORMAT_VERSION)
    n = _item(tree, "n")
    if n is None or len(n) != 2 or not isinstance(n[1], list) or n[1][:1] != ["layer"]:
        _refuse("the curve tree has no {n {layer ...}}")
    return _layer(n[1], knob)


def _layer(lst, knob):
    if len(lst) < 2 or not isinstance(lst[1], str):
        _refuse("a layer without a name")
    layer = Layer(lst[1])
    for child in lst[2:]:
        if not isinstance(child, list) or not child:
            _refuse("unexpected %r in layer %s" % (child, layer.name))
        if child[0] == "layer":
            layer.append(_layer(child, knob))
        elif child[0] == "curvegroup":
            layer.append(_shape(child, knob))
        elif child[0] == "cubiccurve":
            layer.append(Stroke(child[1]))
        elif child[0] not in ("f", "t", "a"):
            _refuse("unknown item {%s ...} in layer %s" % (child[0], layer.name))
    return layer


def _shape(lst, knob):
    if len(lst) < 5 or not isinstance(lst[4], list):
        _refuse("a curvegroup needs a name, flags, a type and its curves")
    name, kind, curves = lst[1], lst[3], lst[4]
    if kind != "bezier":
        _refuse("curvegroup %s: only bezier shapes are read here, not %r" % (name, kind))
    if len(curves) != 2:
        _refuse("curvegroup %s: wants {MAIN FEATHER}, got %d curves" % (name, len(curves)))
    times, main = _cubic(curves[0], name)
    shape = Shape(knob)
    shape.name = name
    for left, centre, right in main:
        cp = ShapeControlPoint()
        for t, l, c, r in zip(times, left, centre, right):
            cp.leftTangent.addPositionKey(t, CVec2(*l))
            cp.center.addPositionKey(t, CVec2(*c))
            cp.rightTangent.addPositionKey(t, CVec2(*r))
        shape.append(cp)
    if curves[1] == "idem":
        feather = [(left, [(0.0, 0.0)] * len(times), right) for left, _, right in main]
    else:
        ftimes, feather = _cubic(curves[1], name + " feather")
        if len(feather) != len(main):
            _refuse("curvegroup %s: %d feather points for %d points" % (name, len(feather), len(main)))
    for cp, (left, offset, right) in zip(shape, feather):
        for t, l, o, r in zip(times, left, offset, right):
            cp.featherLeftTangent.addPositionKey(t, CVec2(*l))
            cp.featherCenter.addPositionKey(t, CVec2(*o))
            cp.featherRightTangent.addPositionKey(t, CVec2(*r))
    return shape


def _cubic(cc, name):
    """(key times, [(left, centre, right) per control point, each [(x, y) per key]]).

    ``{px TIMES ENTRY...}`` shares its key times between every coordinate; ``{p ENTRY...}``
    gives each coordinate its own keys ``{time value ...}`` (or an expression ``{=EXPR
    value}``, read as its cached value; ``{}`` is 0): read at the union of their times."""
    if not isinstance(cc, list) or cc[:1] != ["cc"]:
        _refuse("curvegroup %s: expected a {cc ...} cubic curve" % name)
    px, p = _item(cc, "px"), _item(cc, "p")
    if px is not None and len(px) >= 2:
        times = [nk_float(t) for t in px[1]] if isinstance(px[1], list) else [nk_float(px[1])]
        if not times:
            _refuse("curvegroup %s: no key times" % name)
        entries = [[_shared_keys(c, len(times), name) for c in _pair(e, name)] for e in px[2:]]
    elif p is not None:
        entries = [[_own_keys(c, name) for c in _pair(e, name)] for e in p[1:]]
        times = sorted({t for e in entries for c in e for t in c if t is not None}) or [0.0]
        entries = [[[_at(c, t) for t in times] for c in e] for e in entries]
    else:
        _refuse("curvegroup %s: the cubic curve has no {px ...} or {p ...} points" % name)
    if len(entries) % 3:
        _refuse("curvegroup %s: %d point entries, not three per control point" % (name, len(entries)))
    values = [list(zip(xs, ys)) for xs, ys in entries]
    return times, [tuple(values[i:i + 3]) for i in range(0, len(values), 3)]


def _pair(entry, name):
    if isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], list) and entry[0][:1] == ["a"]:
        entry = entry[1:]   # a point's own attributes (open splines' widths) come first
    if not isinstance(entry, list) or len(entry) not in (0, 2):
        _refuse("curvegroup %s: a point entry must be {x y}, got %r" % (name, entry))
    return entry or ["0", "0"]


def _shared_keys(c, n_times, name):
    """A {px} coordinate at every key time: a constant, or one key {value ...} per key time
    (a coordinate with fewer keys than the curve holds its last value)."""
    if isinstance(c, str):
        return [nk_float(c)] * n_times
    if not c or len(c) > n_times or not all(isinstance(k, list) and k for k in c):
        _refuse("curvegroup %s: a coordinate needs 1 to %d keys {value ...}, got %r" % (name, n_times, c))
    values = [nk_float(k[0]) for k in c]
    return values + [values[-1]] * (n_times - len(values))


def _own_keys(c, name):
    """A {p} coordinate as {time: value} ({} for a constant 0 or expression, key None)."""
    if isinstance(c, str):
        return {None: nk_float(c)}
    if not c:
        return {None: 0.0}
    if isinstance(c[0], str) and c[0].startswith("="):
        return {None: nk_float(c[1]) if len(c) > 1 else 0.0}
    if not all(isinstance(k, list) and len(k) >= 2 for k in c):
        _refuse("curvegroup %s: a coordinate's keys must be {time value ...}, got %r" % (name, c))
    return {nk_float(k[0]): nk_float(k[1]) for k in c}


def _at(keys, t):
    """A coordinate's value at ``t``: linear between keys, held beyond them."""
    if None in keys:
        return keys[None]
    ts = sorted(keys)
    if t <= ts[0]:
        return keys[ts[0]]
    for a, b in zip(ts, ts[1:]):
        if t <= b:
            return keys[a] + (keys[b] - keys[a]) * (t - a) / (b - a)
    return keys[ts[-1]]
