"""The plugin's only contact with the bridge: a few calls on samroto's stdlib client.

``samroto install resolve`` copies the client (bridge/client.py + protocol.py) into
``vendor/``; from a source checkout the installed ``samroto.bridge.client`` is used.
Runs in the tracking thread: nothing here touches Resolve or Fusion objects.
"""

import importlib
import threading


class BridgeError(Exception):
    """The bridge cannot be reached or refused the work; the message says what to do."""


def client_module():
    for name in (__package__ + ".vendor.client", "samroto.bridge.client"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise BridgeError("The samroto bridge client is missing from the Resolve plugin. Reinstall it "
                      "with `samroto install resolve`.")


def connect(request):
    client = client_module()
    python = request.get("python") or None
    try:
        return client.Client.connect(python=python, name="samroto-resolve",
                                     config_dir=request.get("config_dir"))
    except client.BridgeError as exc:
        if not python:
            raise BridgeError("The samroto bridge is not running and no samroto Python is set: start "
                              "it with `samroto serve`, or reinstall the plugin with `samroto install "
                              "resolve` from the Python where samroto is installed. (%s)" % exc)
        raise BridgeError("Cannot start the samroto bridge with %s: %s" % (python, exc))


def run_track(request, emit, cancelled):
    """Open a session on the clip, send the prompts, propagate. ``emit`` receives
    ("progress", done, total, frame) and ("matte", frame, paths); returns "done" or
    "cancelled". ``cancelled`` is a threading.Event the UI sets."""
    client = client_module()
    bridge = connect(request)
    finished = threading.Event()
    try:
        first, last = request["range"]
        session = bridge.open_session(source=request["source"], first=first, last=last,
                                      color=request.get("color"), model=request.get("model"))

        def watch():  # turn the UI's cancel into a bridge cancel (stops within one frame)
            while not finished.is_set():
                if cancelled.wait(0.05):
                    try:
                        session.cancel()
                    except client.BridgeError:
                        pass
                    return

        watcher = threading.Thread(target=watch, name="samroto-cancel", daemon=True)
        watcher.start()
        session.add_prompts(request["prompts"])
        mattes = {"transport": "file", "pattern": request["pattern"], "layout": "files",
                  "format": request.get("format", "exr")}
        try:
            for event in session.propagate(direction=request["direction"], mattes=mattes):
                if event.kind == "progress":
                    emit(("progress", event.done, event.total, event.frame))
                elif event.kind == "matte":
                    emit(("matte", event.frame, list(event.paths)))
        except client.Cancelled:
            return "cancelled"
        finally:
            finished.set()
        return "cancelled" if cancelled.is_set() else "done"
    except client.BridgeError as exc:
        if cancelled.is_set() and getattr(exc, "code", "") == "cancelled":
            return "cancelled"
        raise BridgeError(str(exc))
    finally:
        finished.set()
        bridge.close()
