"""FAKE Fusion objects (tests only), after the Fusion 8 Scripting Guide: Composition,
Operator (tool), Input. Lua tables come back as Python dicts keyed 1.0, 2.0, ... as
fusionscript converts them."""


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
        self.locked = 0

    def GetAttrs(self):  # --> table of COMP* attributes
        return dict(self._attrs)

    def GetToolList(self, selected=False, regid=None):  # --> table of tools
        tools = [t for t in self._tools if regid is None or t._regid == regid]
        return _table(tools)

    def FindTool(self, name):  # --> tool or None
        for t in self._tools:
            if t._attrs["TOOLS_Name"] == name:
                return t
        return None

    def AddTool(self, regid, x=-32768, y=-32768):  # --> tool
        if regid not in DEFAULT_INPUTS:
            return None
        n = 1 + sum(1 for t in self._tools if t._regid == regid)
        tool = Tool(regid, "%s%d" % (regid, n), self)
        self._tools.append(tool)
        return tool

    def Lock(self):
        """Scripting Guide: "Lock() - puts the composition in a locked state: no dialogs
        (e.g. a Loader's file dialog on AddTool) and no updates until Unlock()". Values set
        on a Loader while locked read back but are reported not to render (issue 17,
        defect 4): the fake keeps them out of what the Loader renders."""
        self.locked += 1

    def Unlock(self):
        self.locked -= 1


DEFAULT_INPUTS = {
    "RectangleMask": {"Center": (0.5, 0.5), "Width": 0.5, "Height": 0.5},
    "EllipseMask": {"Center": (0.5, 0.5), "Width": 0.5, "Height": 0.5},
    "Loader": {"Clip": "", "GlobalIn": 0.0, "GlobalOut": 0.0},
}


class Input(object):
    """Input: GetKeyFrames() -> table of keyframe times, or None when not animated."""

    def __init__(self, tool, name):
        self._tool, self._name = tool, name

    def GetKeyFrames(self):
        keys = self._tool._keys.get(self._name)
        return _table(sorted(keys)) if keys else None

    def GetConnectedOutput(self):
        return None


class Tool(object):
    """Operator: GetAttrs/SetAttrs (TOOLS_Name, TOOLS_RegID, TOOLB_PassThrough),
    GetInput(id, time), SetInput(id, value, time); inputs as attributes (tool.Center)."""

    def __init__(self, regid, name, comp=None):
        self._regid = regid
        self._comp = comp
        self._rendered = {}
        self._attrs = {"TOOLS_Name": name, "TOOLS_RegID": regid, "TOOLB_PassThrough": False}
        self._values = dict(DEFAULT_INPUTS[regid])
        self._keys = {}  # input -> {time: value}

    def __getattr__(self, name):
        if name.startswith("_") or name not in self.__dict__.get("_values", {}):
            raise AttributeError(name)
        return Input(self, name)

    def GetAttrs(self):
        return dict(self._attrs)

    def SetAttrs(self, attrs):
        self._attrs.update(attrs)
        return True

    def GetInput(self, name, time=None):
        keys = self._keys.get(name)
        if keys:
            times = sorted(keys)
            if time is None or time <= times[0]:
                value = keys[times[0]]
            elif time >= times[-1]:
                value = keys[times[-1]]
            else:  # linear in between (Fusion's splines are smoother; tests read keys only)
                t0 = max(t for t in times if t <= time)
                t1 = min(t for t in times if t >= time)
                a, b = keys[t0], keys[t1]
                f = 0.0 if t1 == t0 else (time - t0) / (t1 - t0)
                value = tuple(x + (y - x) * f for x, y in zip(a, b)) if isinstance(a, tuple) else a + (b - a) * f
        else:
            value = self._values[name]
        return _table(list(value) + [0.0]) if isinstance(value, tuple) else value

    def rendered(self, name):
        """What the tool renders for input ``name`` (tests): the value set while the comp was
        unlocked; a Loader input set inside Lock()/Unlock() does not count."""
        return self._rendered.get(name)

    def SetInput(self, name, value, time=None):
        if name not in self._values:
            return False
        if self._comp is None or not self._comp.locked or self._regid != "Loader":
            self._rendered[name] = value
        else:
            self._rendered.pop(name, None)
        if isinstance(value, dict):
            value = tuple(float(value[k]) for k in sorted(value))[:2]
        elif isinstance(value, list):
            value = tuple(float(v) for v in value)[:2]
        if time is None:
            self._values[name] = value
        else:
            self._keys.setdefault(name, {})[float(time)] = value
        return True
