"""The plugin's only contact with the bridge: a few calls on samroto's stdlib client.

``samroto install resolve`` copies the client (bridge/client.py + protocol.py) into
``vendor/``; from a source checkout the installed ``samroto.bridge.client`` is used.
Runs in the tracking thread: nothing here touches Resolve or Fusion objects.
"""

import importlib


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

    def on_event(event):
        if event.kind == "progress":
            emit(("progress", event.done, event.total, event.frame))
        elif event.kind == "matte":
            emit(("matte", event.frame, list(event.paths)))

    bridge = connect(request)
    try:
        first, last = request["range"]
        mattes = {"transport": "file", "pattern": request["pattern"], "layout": "files",
                  "format": request.get("format", "exr")}
        return bridge.track_shot(request["source"], request["prompts"], direction=request["direction"],
                                 first=first, last=last, color=request.get("color"),
                                 model=request.get("model"), mattes=mattes, on_event=on_event,
                                 cancelled=cancelled)
    except client.BridgeError as exc:
        raise BridgeError(str(exc))
    finally:
        bridge.close()


def background(work):
    """A client BackgroundJob for ``work(emit, cancelled)``: link errors reach the UI as they are."""
    return client_module().BackgroundJob(work, known_errors=(BridgeError,), what="Tracking",
                                         name="samroto-track")
