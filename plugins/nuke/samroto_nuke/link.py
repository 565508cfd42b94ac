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
        return client.Client.connect(python=request.get("python") or None, name="samroto-nuke")
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


def model_spec(request):
    """The session's model: None (the bridge's default), a name, or name + checkpoint."""
    if not request.get("model"):
        return None
    if request.get("checkpoint"):
        return {"name": request["model"], "checkpoint": request["checkpoint"]}
    return request["model"]


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
                                          color=src["color"], model=model_spec(request),
                                          options=request.get("options") or {})
            session.add_prompts(request["prompts"])
        except client.BridgeError as exc:
            raise BridgeError("The bridge refused the shot: %s" % exc)
        stop = threading.Event()
        watcher = threading.Thread(target=_watch_cancel, args=(session, cancelled, stop),
                                   name="samroto-cancel", daemon=True)
        watcher.start()
        try:
            for event in session.propagate(direction=request["direction"], start=request["start"],
                                           first=lo, last=hi, mattes=request["mattes"]):
                if event.matte is not None:
                    on_matte(event.frame, event.matte.objects, event.paths)
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
