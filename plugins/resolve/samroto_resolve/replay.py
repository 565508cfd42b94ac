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

from . import workflow
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
        for name, spec in data.get("inputs", {}).items():
            setattr(self, name, _Input(spec.get("keys", [])))

    def GetAttrs(self):
        return {"TOOLS_Name": self._data["name"], "TOOLS_RegID": self._data.get("regid", ""),
                "TOOLB_PassThrough": bool(self._data.get("passthrough"))}

    def GetInput(self, name, time=None):
        spec = self._data.get("inputs", {}).get(name, {})
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


class Snapshot(object):
    """The Resolve object a snapshot stands for: Resolve > ProjectManager > Project >
    Timeline > the item under the playhead (the calls samroto_resolve makes, nothing more)."""

    def __init__(self, data):
        comp = _Comp(data["comp"]) if data.get("comp") else None
        media = _Media(data["media"]) if data.get("media") is not None else None
        self._item = _Item(data["item"], media, comp)

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


def run(snapshot, direction, out=print, poll=0.2, connect=None, **settings):
    """Plan and track the snapshot's clip; returns the result dict the Lua script reads."""
    from . import headless

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
