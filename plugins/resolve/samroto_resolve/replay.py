"""The Lua path (free Resolve 21.1 and later, where Workspace > Scripts lists Lua scripts
only): samroto's Lua scripts record what Resolve alone knows — the clip under the
playhead, its offsets and source frames, its clip properties, the Fusion comp's prompt
tools and their keyframes — as a JSON *snapshot*, and run

    <samroto's Python> -m samroto_resolve.replay SNAPSHOT.json RESULT.lua

with this package on PYTHONPATH. Here the snapshot answers the same Resolve and Fusion
calls the Python scripts make (``Snapshot``), so the plan (range, handles, prompts, matte
files) is the one the Python scripts make, and the host kit tracks it on the bridge
(started when needed), printing progress lines the Lua script copies to the Console. The
result is a Lua table (``return {...}``, read with ``dofile``: Resolve's Lua has no JSON
reader) naming what the Lua script imports into the Media Pool.
"""

import json
import os
import sys

from . import headless, workflow
from .kit import hostkit


class _Input(object):
    def __init__(self, keys):
        self._keys = keys

    def GetKeyFrames(self):
        return {float(i + 1): float(t) for i, t in enumerate(self._keys)} or None

    def GetConnectedOutput(self):
        return None  # the snapshot already holds a modifier's keyframes as the input's


class _Tool(object):
    def __init__(self, data):
        self._data = data
        self.set = {}  # inputs set here, to be set in Resolve by the Lua script
        for name, spec in data.get("inputs", {}).items():
            setattr(self, name, _Input(spec.get("keys", [])))

    def SetAttrs(self, attrs):
        self._data["name"] = attrs.get("TOOLS_Name", self._data["name"])
        return True

    def SetInput(self, name, value, time=None):
        self.set[name] = value
        spec = self._data.setdefault("inputs", {}).setdefault(name, {})
        spec["value"], spec["values"] = value, {}
        return True

    def GetAttrs(self):
        return {"TOOLS_Name": self._data["name"], "TOOLS_RegID": self._data.get("regid", ""),
                "TOOLB_PassThrough": bool(self._data.get("passthrough"))}

    def GetInput(self, name, time=None):
        spec = self._data.get("inputs", {}).get(name, {})
        if name in self.set:
            return self.set[name]
        values = spec.get("values", {})
        key = "%g" % float(time) if time is not None else None
        value = values.get(key, spec.get("value"))
        if isinstance(value, list):
            return {float(i + 1): v for i, v in enumerate(value)}
        return value


class _Comp(object):
    def __init__(self, data):
        self._data = data
        self.CurrentTime = float(data.get("current_time", 0))
        self._tools = [_Tool(t) for t in data.get("tools", [])]

    def GetAttrs(self):
        return dict(self._data.get("attrs", {}))

    def GetData(self, name):
        return self._data.get("finish") if name == "samroto.finish" else None

    def GetToolList(self, selected=False, regid=None):
        return {float(i + 1): t for i, t in enumerate(self._tools)}

    def FindTool(self, name):
        return next((t for t in self._tools if t._data["name"] == name), None)

    def AddTool(self, regid, x=-32768, y=-32768):
        tool = _Tool({"name": "%s%d" % (regid, len(self._tools) + 1), "regid": regid, "new": True})
        self._tools.append(tool)
        return tool

    def Lock(self):
        pass

    def Unlock(self):
        pass

    def placed(self):
        """The Loaders samroto set here (preview, mask, matte), for the Lua script to set."""
        return [{"name": t._data["name"], "new": bool(t._data.get("new")), "clip": t.set["Clip"],
                 "global_in": t.set.get("GlobalIn"), "global_out": t.set.get("GlobalOut")}
                for t in self._tools if "Clip" in t.set]


class _Media(object):
    def __init__(self, props):
        self._props = props

    def GetClipProperty(self, name=None):
        return dict(self._props) if name is None else self._props.get(name, "")


class _Item(object):
    def __init__(self, data, media, comp):
        self._data, self._media, self._comp = data, media, comp

    def GetName(self):
        return self._data.get("name", "")

    def GetDuration(self):
        return self._data["duration"]

    def GetLeftOffset(self):
        return self._data["left"]

    def GetRightOffset(self):
        return self._data.get("right", 0)

    def GetSourceStartFrame(self):  # None: a Resolve without the call (clip.source_span)
        return self._data.get("source_start")

    def GetSourceEndFrame(self):
        return self._data.get("source_end")

    def GetMediaPoolItem(self):
        return self._media

    def GetFusionCompCount(self):
        return 1 if self._comp is not None else 0

    def GetFusionCompByIndex(self, index):
        return self._comp if index == 1 else None

    def GetStart(self):
        return self._data.get("start", 0)


class Snapshot(object):
    """The Resolve object a snapshot stands for: Resolve > ProjectManager > Project >
    Timeline > the item under the playhead (the calls samroto_resolve makes, nothing more)."""

    def __init__(self, data):
        comp = _Comp(data["comp"]) if data.get("comp") else None
        media = _Media(data["media"]) if data.get("media") is not None else None
        self._item = _Item(data["item"], media, comp)
        self.comp, self.timecode = comp, None

    def SetCurrentTimecode(self, timecode):  # recorded: the Lua script moves Resolve's playhead
        self.timecode = timecode
        return True

    def GetProjectManager(self):
        return self

    def GetCurrentProject(self):
        return self

    def GetCurrentTimeline(self):
        return self

    def GetCurrentVideoItem(self):
        return self._item


def lua_literal(value):
    """A Python value as Lua source (tables for lists and dicts, strings escaped)."""
    if value is None:
        return "nil"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):  # every byte outside a safe set as a decimal escape (Lua 5.1)
        safe = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ./_-:;[]()%#{},+=@")
        return '"%s"' % "".join(chr(b) if b in safe else "\\%03d" % b for b in value.encode("utf-8"))
    if isinstance(value, (list, tuple)):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    return "{" + ", ".join("[%s] = %s" % (lua_literal(str(k)), lua_literal(v)) for k, v in value.items()) + "}"


def imports(plan, job):
    """What the Lua script imports: per object its sequence, frames, Start TC, the File Path
    prefix/suffix Resolve shows for that sequence (``dir/stem.[a-b].exr``), the first file."""
    if not job.frames:
        return []
    first, last = min(job.frames), max(job.frames)
    names = {o["id"]: o["name"] for o in plan.prompts["objects"]}
    out = []
    for obj_id, pattern in sorted(job.patterns.items()):
        if obj_id not in names:
            continue
        token = hostkit.frame_token(pattern)
        cut = pattern.rfind(token)
        out.append({"name": names[obj_id], "pattern": pattern, "first": first, "last": last,
                    "tc": plan.clip.timecode_of(first), "prefix": pattern[:cut], "suffix": pattern[cut + len(token):],
                    "first_file": hostkit.frame_file(pattern, first)})
    return out


# What the Lua scripts ask for besides tracking: the no-window scripts' calls on the snapshot
ACTIONS = {
    "preview": lambda resolve, out, connect, settings: headless.preview(resolve, out, connect, **settings),
    "candidate1": lambda r, out, c, s: headless.use_candidate(r, 1, None, out, c, **s),
    "candidate2": lambda r, out, c, s: headless.use_candidate(r, 2, None, out, c, **s),
    "candidate3": lambda r, out, c, s: headless.use_candidate(r, 3, None, out, c, **s),
    "review": lambda r, out, c, s: headless.review(r, out, **s),
    "next_tracked": lambda r, out, c, s: headless.step(r, 1, out, **s),
    "previous_tracked": lambda r, out, c, s: headless.step(r, -1, out, **s),
    "next_lost": lambda r, out, c, s: headless.next_lost(r, out, **s),
    "show_masks": lambda r, out, c, s: headless.show_masks(r, out, c, **s),
    "use_masks": lambda r, out, c, s: headless.use_masks(r, None, out, c, **s),
}


def act(snapshot, action, out=print, connect=None, **settings):
    """One of ACTIONS on the snapshot's clip; the result names the Loaders to set in the comp
    and where to put the playheads (the comp's time, the timeline's timecode)."""
    resolve = Snapshot(snapshot)
    settings.setdefault("python", sys.executable)
    start = resolve.comp.CurrentTime if resolve.comp is not None else None
    try:
        ACTIONS[action](resolve, out, connect, settings)
    except hostkit.HostError as exc:
        return {"ok": False, "message": str(exc), "imports": []}
    comp = resolve.comp
    now = comp.CurrentTime if comp is not None else None
    return {"ok": True, "message": "%s done." % action, "imports": [],
            "loaders": comp.placed() if comp is not None else [],
            "current_time": now if now != start else None, "timecode": resolve.timecode}


def run(snapshot, direction, out=print, poll=0.2, connect=None, **settings):
    """Plan and track the snapshot's clip (or, for another ``direction``, one of ACTIONS);
    returns the result dict the Lua script reads."""
    if direction in ACTIONS:
        return act(snapshot, direction, out, connect, **settings)
    settings.setdefault("python", sys.executable)  # this is samroto's Python
    try:
        plan = workflow.Plan(Snapshot(snapshot), direction, **settings)
    except hostkit.HostError as exc:
        return {"ok": False, "message": str(exc), "imports": []}
    job = headless.run_plan(plan, out, poll, connect)
    ok = job.state in (hostkit.DONE, hostkit.CANCELLED)
    return {"ok": ok, "state": job.state, "message": job.summary(), "imports": imports(plan, job) if ok else [],
            "attach_clip_matte": bool(plan.settings["attach_clip_matte"]), "bin": plan.clip.name}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 2:
        print("usage: python -m samroto_resolve.replay SNAPSHOT.json RESULT.lua", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as fh:
        snapshot = json.load(fh)
    settings = {k: v for k, v in (snapshot.get("settings") or {}).items() if v not in (None, "")}
    try:
        result = run(snapshot, snapshot.get("direction", "forward"), out=lambda s: print(s, flush=True), **settings)
    except Exception as exc:  # noqa: BLE001 - the Lua script shows the message in the Console
        result = {"ok": False, "message": "%s: %s" % (type(exc).__name__, exc), "imports": []}
    partial = argv[1] + ".partial"
    with open(partial, "w", encoding="utf-8") as fh:
        fh.write("return " + lua_literal(result) + "\n")
    os.replace(partial, argv[1])
    print("samroto: " + result["message"], flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
