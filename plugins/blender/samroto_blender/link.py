"""The add-on's only contact with the bridge: a few calls on samroto's stdlib client.

The client (``bridge/client.py`` + ``bridge/protocol.py``) is copied into ``vendor/`` by
``samroto install blender`` (and into the zip). Nothing here imports ``bpy``: ``run_track``
runs in the tracking thread.
"""

import importlib
import os
import re

CLIENT_NAME = "samroto-blender"


class BridgeError(Exception):
    """The bridge cannot be reached or refused the work; the message says what to do."""


def client_module():
    try:
        return importlib.import_module(__package__ + ".vendor.client")
    except ImportError as exc:
        raise BridgeError(
            "The samroto bridge client is missing from the add-on (%s). Reinstall it with "
            "`samroto install blender`." % exc)


def connect(request):
    """A connected client: the running bridge (its discovery file), else one started with the
    preferences' samroto Python."""
    client = client_module()
    python = request.get("python") or None
    if python and not os.path.isfile(python):
        raise BridgeError(
            "The samroto Python %s does not exist: fix it in Preferences > Add-ons > samroto "
            "(the Python where samroto is installed)." % python)
    try:
        return client.Client.connect(python=python, config_dir=request.get("config_dir") or None,
                                     name=CLIENT_NAME)
    except client.NotRunning as exc:
        if python:
            raise BridgeError("Cannot start the samroto bridge with %s: %s" % (python, exc))
        raise BridgeError(
            "The samroto bridge is not running and no samroto Python is set: set it in "
            "Preferences > Add-ons > samroto, or run `samroto serve`. (%s)" % exc)
    except client.BridgeError as exc:
        raise BridgeError("The samroto bridge refused the connection: %s" % exc)
    except OSError as exc:
        raise BridgeError("Cannot reach the samroto bridge: %s" % exc)


def describe(request):
    """One line about the bridge (for the preferences' Check Bridge button)."""
    bridge = connect(request)
    try:
        status = bridge.status()
    finally:
        bridge.close()
    keep = ("version", "model", "device", "sessions", "pid")
    details = ", ".join("%s %s" % (k, status[k]) for k in keep if k in status)
    return "samroto bridge is running" + (": " + details if details else "")


_SAFE = re.compile(r"[^A-Za-z0-9_-]+")


def matte_name(name):
    """The file-name form of an object name (the bridge's rule: samroto.core.io.mattes.safe_name)."""
    text = _SAFE.sub("_", str(name)).strip("_") or "obj"
    return text if text[0].isalpha() else "obj_" + text


def frame_pattern(path):
    """``/x/car.1001.exr`` -> ``/x/car.####.exr``."""
    folder, name = os.path.split(path)
    match = re.search(r"(\d+)(?=\D*$)", name)
    if not match:
        return path
    start, end = match.span(1)
    return os.path.join(folder, name[:start] + "#" * (end - start) + name[end:])


def run_track(request, emit, cancelled):
    """Open a session on the clip's files, send the prompts, propagate; ``emit`` gets
    ("progress", done, total) and ("matte", frame, {object id: path}). Returns "done" or
    "cancelled" (``cancelled`` is a threading.Event set by the UI: Esc)."""
    client = client_module()

    def on_event(event):
        if event.kind == "progress":
            emit(("progress", event.done, event.total))
        elif event.kind == "matte" and event.matte is not None:
            ids = [o.get("id") for o in event.matte.objects]
            emit(("matte", event.frame, dict(zip(ids, event.paths))))

    bridge = connect(request)
    try:
        lo, hi = request["range"]
        mattes = {"transport": "file", "pattern": request["pattern"], "layout": "files", "format": "exr"}
        return bridge.track_shot(request["source"], request["prompts"], direction=request["direction"],
                                 start=request["start"], first=lo, last=hi, color=request["color"],
                                 mattes=mattes, on_event=on_event, cancelled=cancelled)
    except client.BridgeError as exc:
        step = getattr(exc, "step", "")
        if step == "open":
            raise BridgeError("The bridge cannot open the clip %s: %s" % (request["source"], exc))
        if isinstance(exc, client.BadPrompts):
            raise BridgeError("The bridge rejected the prompts: %s" % exc)
        raise BridgeError("Tracking failed on the bridge: %s" % exc)
    finally:
        bridge.close()


def background(work):
    """A client BackgroundJob for ``work(emit, cancelled)``: link errors reach the UI as they are."""
    return client_module().BackgroundJob(work, known_errors=(BridgeError,), what="Tracking",
                                         name="samroto-track")
