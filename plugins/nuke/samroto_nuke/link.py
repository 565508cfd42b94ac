"""The plugin's only contact with samroto outside Nuke: the bridge client (copied into
``vendor/`` by ``samroto install nuke``) and samroto's Python for Convert to Roto.

Nothing here touches the node graph, so it runs in the tracking thread.
"""

import importlib
import os


class BridgeError(Exception):
    """The bridge cannot be reached or refused the work; the message says what to do."""


def samroto_python():
    """The Python that has samroto installed: $SAMROTO_PYTHON, else the installer's."""
    env = os.environ.get("SAMROTO_PYTHON", "").strip()
    if env:
        return env
    try:
        return importlib.import_module(__package__ + "._installed").PYTHON
    except ImportError:
        return ""


def client_module():
    try:
        return importlib.import_module(__package__ + ".vendor.client")
    except ImportError as exc:
        raise BridgeError("The samroto bridge client is missing from the Nuke plugin (%s): "
                          "reinstall it with `samroto install nuke`." % exc)


def connect(request):
    """A connected client: the running bridge, else one started with samroto's Python."""
    client = client_module()
    try:
        return client.Client.connect(python=request.get("python") or None, name="samroto-nuke",
                                     serve_args=serve_args(request))
    except client.BridgeError as exc:
        raise BridgeError(_explain(exc, request))
    except OSError as exc:
        raise BridgeError(_explain(exc, request))


def _explain(exc, request):
    text = str(exc) or type(exc).__name__
    if not request.get("python"):
        return ("The samroto bridge is not running and samroto's Python is unknown: set SAMROTO_PYTHON "
                "or reinstall with `samroto install nuke --python /path/to/python`. (%s)" % text)
    return "Cannot start the samroto bridge with %s: %s" % (request["python"], text)


def serve_args(request):
    """How the node starts a bridge when none runs: its model, checkpoint and device."""
    args = []
    for flag, key in (("--model", "model"), ("--checkpoint", "checkpoint")):
        if request.get(key):
            args += [flag, request[key]]
    if request.get("device") and request["device"] != "auto":
        args += ["--device", request["device"]]
    return args


def run_track(request, on_matte, cancelled):
    """Open a session on the request's frames, send the prompts, propagate. Calls
    ``on_matte(frame, objects, paths)`` as each frame's mattes are on disk; stops when
    ``cancelled()`` turns true (the bridge stops within a frame). Returns "done" or "cancelled"."""
    client = client_module()

    def on_event(event):
        if event.kind == "matte" and event.matte is not None:
            on_matte(event.frame, event.matte.objects, event.paths)

    bridge = connect(request)
    try:
        src = request["source"]
        lo, hi = request["range"]
        # the session covers the whole input (prompts may sit outside the tracked range)
        return bridge.track_shot(src["path"], request["prompts"], direction=request["direction"],
                                 start=request["start"], first=lo, last=hi, source_first=src["first"],
                                 source_last=src["last"], color=src["color"],
                                 model=request.get("model") or None, options=request.get("options") or {},
                                 mattes=request["mattes"], on_event=on_event, cancelled=cancelled)
    except client.BridgeError as exc:
        if getattr(exc, "step", "") in ("open", "prompts"):
            raise BridgeError("The bridge refused the shot: %s" % exc)
        raise BridgeError("Tracking failed in the bridge: %s" % exc)
    finally:
        bridge.close()
