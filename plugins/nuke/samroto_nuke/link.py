"""The plugin's only contact with samroto outside Nuke: the bridge client (copied into
``vendor/`` by ``samroto install nuke``) and samroto's Python for Convert to Roto.

Nothing here touches the node graph, so it runs in the tracking thread.
"""

import importlib
import os
import threading


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


def _watch_cancel(session, cancelled, stop):
    """Poll the artist's Cancel (ProgressTask) and tell the bridge, which stops within a frame."""
    while not stop.wait(0.1):
        if cancelled():
            try:
                session.cancel()
            except Exception:
                pass  # the connection is going away anyway
            return


def run_track(request, on_matte, cancelled):
    """Open a session on the request's frames, send the prompts, propagate. Calls
    ``on_matte(frame, objects, paths)`` as each frame's mattes are on disk; stops when
    ``cancelled()`` turns true (returns normally then)."""
    client = client_module()
    bridge = connect(request)
    try:
        src = request["source"]
        lo, hi = request["range"]
        try:
            session = bridge.open_session(source=src["path"], first=src["first"], last=src["last"],
                                          color=src["color"], model=request.get("model") or None,
                                          options=request.get("options") or {})
            session.add_prompts(request["prompts"])
        except client.BridgeError as exc:
            raise BridgeError("The bridge refused the shot: %s" % exc)
        stop = threading.Event()
        watcher = threading.Thread(target=_watch_cancel, args=(session, cancelled, stop),
                                   name="samroto-cancel", daemon=True)
        watcher.start()
        try:
            # the wire's propagate request (docs/protocol.md): start + first..last
            for header, _ in bridge.stream("propagate", session=session.id, direction=request["direction"],
                                           start=request["start"], first=lo, last=hi,
                                           mattes=request["mattes"]):
                if header.get("event") == "matte":
                    on_matte(header["frame"], header.get("objects", []), header.get("paths", []))
        except client.Cancelled:
            pass
        except client.BridgeError as exc:
            raise BridgeError("Tracking failed in the bridge: %s" % exc)
        finally:
            stop.set()
        try:
            session.close()
        except client.BridgeError:
            pass
    finally:
        bridge.close()
