"""FAKE Fusion objects (tests only), after the Fusion 8 Scripting Guide and Reference
(Composition, Operator, Input, Output, BezierSpline) and, where it is silent, what people
who ran Fusion reported. Lua tables come back as Python dicts keyed 1.0, 2.0, ... as
fusionscript converts them.

Animation, as Fusion does it (sources):
- An input is animated only when a modifier is connected to it: a BezierSpline for a
  number, a path for a point ("To animate a property via script, the first step is to add a
  Bezier Spline to an input ... If the property is a point value, use the Path{} function
  to add a bezier-based path", VFXPedia, Eyeon:Script/General Concepts/Animating Values).
  ``Operator:AddModifier(input, regid)`` connects one; a BezierSpline does not go on a
  point ("Center is a Point, not a scalar": scripts attach PolyPath or XYPath there), so
  the fake refuses a modifier whose output type is not the input's.
- Adding the modifier keys the comp's current time with the input's value ("when a Bezier
  Spline is added to a tool's input, it creates a key frame at the comp's current frame",
  same page).
- ``SetInput(id, value, time)`` on an input that is not animated sets its one static value,
  the time ignored: "inp[time] = value on an un-animated input only assigned a static value
  (last write wins) - no keyframe was created, get_keyframes returned [], and get_input at
  different times returned the same value" (davinci-resolve-mcp v2.32.1 release notes,
  validated live on Resolve Studio 21.0). On an animated input it keys ``time`` (the
  current time when none is given).
- A point animated with keyframes is connected to the path (Resolve manual, "Animating
  Using Motion Paths": keyframing Center "applies the path modifier"; a Polyline path keeps
  its keyframes as locked points timed by its Displacement spline, an XY path as keys of
  its X and Y splines). ``Input:GetKeyFrames()`` "If a tool control is not animated with a
  spline this function will return nil" (VFXPedia, Input/GetKeyFrames): so a Center on a
  path returns None, and its keys are found through ``GetConnectedOutput():GetTool()`` and
  the path's inputs. Reading the input at a time returns the path's value there.
- Between keys the fake interpolates linearly (Fusion's splines are smoother): tests read
  values at keys only.
"""


def _table(values):
    return {float(i + 1): v for i, v in enumerate(values)}


class Fusion(object):
    """Fusion: only the UIManager hook is used, and tests give their own."""

    def __init__(self, ui_manager=None):
        self.UIManager = ui_manager


class Composition(object):
    """Composition: GetToolList, FindTool, AddTool, GetAttrs, CurrentTime, Lock/Unlock."""

    def __init__(self, global_range=(0, 99), render_range=(0, 99)):
        self._tools = []
        self._attrs = {"COMPN_GlobalStart": float(global_range[0]), "COMPN_GlobalEnd": float(global_range[1]),
                       "COMPN_RenderStart": float(render_range[0]), "COMPN_RenderEnd": float(render_range[1])}
        self.CurrentTime = float(render_range[0])
        self.ActiveTool = None
        self.locked = 0
        self._data = {}

    def GetAttrs(self):  # --> table of COMP* attributes
        return dict(self._attrs)

    def GetToolList(self, selected=False, regid=None):  # --> table of tools (modifiers are not tools here)
        tools = [t for t in self._tools if regid is None or t._regid == regid]
        return _table(tools)

    def FindTool(self, name):  # --> tool or None
        for t in self._tools:
            if t._attrs["TOOLS_Name"] == name:
                return t
        return None

    def AddTool(self, regid, x=-32768, y=-32768):  # --> tool, or None for an unknown RegID
        if regid not in TOOL_INPUTS:
            return None
        n = 1 + sum(1 for t in self._tools if t._regid == regid)
        tool = Tool(regid, "%s%d" % (regid, n), self)
        self._tools.append(tool)
        return tool

    def SetData(self, name, value=None):
        """Scripting Guide, "Object Data": persistent data saved with the composition;
        setting nil (None) removes it. Tables come back as Lua tables do (dicts)."""
        if value is None:
            self._data.pop(name, None)
        else:
            self._data[name] = dict(value) if isinstance(value, dict) else value

    def GetData(self, name):  # --> the value, or None
        value = self._data.get(name)
        return dict(value) if isinstance(value, dict) else value

    def Lock(self):
        """Scripting Guide: "Lock() - puts the composition in a locked state: no dialogs
        (e.g. a Loader's file dialog on AddTool) and no updates until Unlock()". Values set
        on a Loader while locked read back but are reported not to render (issue 17,
        defect 4): the fake keeps them out of what the Loader renders."""
        self.locked += 1

    def Unlock(self):
        self.locked -= 1


# Each tool's inputs: (data type, default). Point values are (x, y), normalised.
TOOL_INPUTS = {
    "RectangleMask": {"Center": ("Point", (0.5, 0.5)), "Width": ("Number", 0.5), "Height": ("Number", 0.5),
                      "SoftEdge": ("Number", 0.0), "BorderWidth": ("Number", 0.0), "Invert": ("Number", 0.0)},
    "EllipseMask": {"Center": ("Point", (0.5, 0.5)), "Width": ("Number", 0.5), "Height": ("Number", 0.5),
                    "SoftEdge": ("Number", 0.0), "BorderWidth": ("Number", 0.0), "Invert": ("Number", 0.0)},
    "Loader": {"Clip": ("Text", ""), "GlobalIn": ("Number", 0.0), "GlobalOut": ("Number", 0.0)},
}
# Modifiers: the type of value they give the input they are connected to.
MODIFIER_OUTPUT = {"BezierSpline": "Number", "PolyPath": "Point", "XYPath": "Point"}


class Output(object):
    """Output (PlainOutput): GetTool() -> the tool (or modifier) it belongs to."""

    def __init__(self, tool):
        self._tool = tool

    def GetTool(self):
        return self._tool


class Input(object):
    """Input (PlainInput): GetKeyFrames() -> the keyframe times of the spline it is
    connected to, or None when it is not animated with a spline; GetConnectedOutput()."""

    def __init__(self, tool, name):
        self._tool, self._name = tool, name

    def GetKeyFrames(self):
        modifier = self._tool._links.get(self._name)
        if isinstance(modifier, BezierSpline) and modifier._keys:
            return _table(sorted(modifier._keys))
        return None

    def GetConnectedOutput(self):
        modifier = self._tool._links.get(self._name)
        return Output(modifier) if modifier is not None else None

    def GetAttrs(self):
        return {"INPS_ID": self._name, "INPS_DataType": self._tool._types[self._name]}


class Tool(object):
    """Operator: GetAttrs/SetAttrs (TOOLS_Name, TOOLS_RegID, TOOLB_PassThrough),
    GetInput(id, time), SetInput(id, value, time), AddModifier(id, regid), GetInputList();
    inputs as attributes (tool.Center)."""

    def __init__(self, regid, name, comp=None, inputs=None):
        self._regid = regid
        self._comp = comp
        self._rendered = {}
        self._attrs = {"TOOLS_Name": name, "TOOLS_RegID": regid, "TOOLB_PassThrough": False}
        spec = inputs if inputs is not None else TOOL_INPUTS[regid]
        self._types = {k: kind for k, (kind, _) in spec.items()}
        self._values = {k: value for k, (_, value) in spec.items()}
        self._links = {}  # input -> the modifier connected to it

    def __getattr__(self, name):
        if name.startswith("_") or name not in self.__dict__.get("_values", {}):
            raise AttributeError(name)
        return Input(self, name)

    def GetAttrs(self):
        return dict(self._attrs)

    def SetAttrs(self, attrs):
        self._attrs.update(attrs)
        return True

    def GetInputList(self):  # --> table of inputs
        return _table([Input(self, name) for name in self._values])

    def _now(self):
        return float(self._comp.CurrentTime) if self._comp is not None else 0.0

    def GetInput(self, name, time=None):
        if name not in self._values:
            return None
        modifier = self._links.get(name)
        value = self._values[name] if modifier is None else modifier._value(self._now() if time is None else time)
        return _table(list(value) + [0.0]) if isinstance(value, tuple) else value

    def rendered(self, name):
        """What the tool renders for input ``name`` (tests): the value set while the comp was
        unlocked; a Loader input set inside Lock()/Unlock() does not count."""
        return self._rendered.get(name)

    def _convert(self, name, value):
        if self._types[name] == "Point":
            if isinstance(value, dict):
                return tuple(float(value[k]) for k in sorted(value))[:2]
            return tuple(float(v) for v in value)[:2]
        return value

    def SetInput(self, name, value, time=None):
        if name not in self._values:
            return False
        value = self._convert(name, value)
        if self._comp is None or not self._comp.locked or self._regid != "Loader":
            self._rendered[name] = value
        else:
            self._rendered.pop(name, None)
        modifier = self._links.get(name)
        if modifier is None:
            self._values[name] = value  # not animated: the one value, whatever the time
        else:
            modifier._key(self._now() if time is None else float(time), value)
        return True

    def AddModifier(self, name, regid):  # --> bool
        """Connect a new modifier ``regid`` to input ``name``; the input's value is keyed on
        the comp's current time. False for an unknown input or modifier, or one whose
        output is not the input's type (a BezierSpline on a point)."""
        if name not in self._values or MODIFIER_OUTPUT.get(regid) != self._types[name]:
            return False
        modifier = {"BezierSpline": BezierSpline, "PolyPath": PolyPath, "XYPath": XYPath}[regid](self._comp)
        modifier._key(self._now(), self._values[name])
        self._links[name] = modifier
        return True


class BezierSpline(Tool):
    """A number's animation: keys {time: value}; the value held before the first and after
    the last key, linear between (the fake's simplification)."""

    def __init__(self, comp):
        Tool.__init__(self, "BezierSpline", "BezierSpline", comp, inputs={})
        self._keys = {}

    def _key(self, time, value):
        self._keys[float(time)] = value

    def _value(self, time):
        return _interpolate(self._keys, float(time))

    def GetKeyFrames(self):  # --> {time: {1: value}}, as BezierSpline:GetKeyFrames() (handles left out)
        return {t: {1.0: v} for t, v in sorted(self._keys.items())}


class PolyPath(Tool):
    """A point's Polyline path ("Path", RegID PolyPath): locked points {time: (x, y)}, their
    timing on the Displacement input, which a BezierSpline animates."""

    def __init__(self, comp):
        Tool.__init__(self, "PolyPath", "Path", comp, inputs={"Displacement": ("Number", 0.0),
                                                               "Center": ("Point", (0.0, 0.0)),
                                                               "Size": ("Number", 1.0)})
        self._points = {}
        self._links["Displacement"] = BezierSpline(comp)

    def _key(self, time, value):
        self._points[float(time)] = tuple(value)
        times = sorted(self._points)  # displacement 0..1 along the locked points
        timing = self._links["Displacement"]
        timing._keys = {t: (i / float(len(times) - 1) if len(times) > 1 else 0.0) for i, t in enumerate(times)}

    def _value(self, time):
        return _interpolate(self._points, float(time))


class XYPath(Tool):
    """A point's XY path: its X and Y inputs, each animated by a BezierSpline."""

    def __init__(self, comp):
        Tool.__init__(self, "XYPath", "XYPath", comp, inputs={"X": ("Number", 0.5), "Y": ("Number", 0.5)})
        self._links["X"], self._links["Y"] = BezierSpline(comp), BezierSpline(comp)

    def _key(self, time, value):
        self._links["X"]._key(time, float(value[0]))
        self._links["Y"]._key(time, float(value[1]))

    def _value(self, time):
        return (self._links["X"]._value(time), self._links["Y"]._value(time))


def _interpolate(keys, time):
    times = sorted(keys)
    if time <= times[0]:
        return keys[times[0]]
    if time >= times[-1]:
        return keys[times[-1]]
    t0 = max(t for t in times if t <= time)
    t1 = min(t for t in times if t >= time)
    a, b = keys[t0], keys[t1]
    f = 0.0 if t1 == t0 else (time - t0) / (t1 - t0)
    if isinstance(a, tuple):
        return tuple(x + (y - x) * f for x, y in zip(a, b))
    return a + (b - a) * f


def animate(comp, tool, name, keys, modifier=None):
    """What an artist's "Animate" (or a script) does: connect the input's modifier (a Path
    for a point, a BezierSpline for a number) with the comp on the first key's time, then
    key each ``{time: value}`` (tests' helper, through the documented calls only)."""
    regid = modifier or ("PolyPath" if tool.GetInput(name) is not None and isinstance(
        tool.GetInput(name), dict) else "BezierSpline")
    first = min(keys)
    now = comp.CurrentTime
    comp.CurrentTime = float(first)
    tool.SetInput(name, keys[first])  # the value the new modifier keys there
    assert tool.AddModifier(name, regid), (name, regid)
    comp.CurrentTime = now
    for t, value in sorted(keys.items()):
        tool.SetInput(name, value, t)
    return tool
