"""FAKE ``nuke.rotopaint`` (see ../__init__.py): the calls a Roto node's shapes are built
with, as Foundry's reference documents them — ``Shape(curves)`` (a list of
``ShapeControlPoint`` with a ``name``), ``ShapeControlPoint(x, y)`` with ``center``,
``leftTangent``, ``rightTangent``, ``featherLeftTangent``, ``featherRightTangent``, each an
animated point with ``addPositionKey(time, CVec2)`` and ``getPosition(time)``; the Roto
node's ``curves`` knob with ``rootLayer`` and ``changed()``. Tangents are offsets from
their point, in Nuke pixels (y up)."""

from _curvelib import CVec2

from . import Knob


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
        self.featherLeftTangent, self.featherRightTangent = AnimCTransform(), AnimCTransform()


class Shape(list):
    def __init__(self, curves, *args):
        list.__init__(self)
        self.curves, self.name = curves, "Bezier1"


class Layer(list):
    name = "Root"


class CurveKnob(Knob):
    def __init__(self, name):
        Knob.__init__(self, name)
        self.rootLayer = Layer()
        self.changes = 0

    def changed(self):
        self.changes += 1
