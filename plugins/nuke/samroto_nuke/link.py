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
    client = client_module()
    try:
        if request.get("address"):
            return client.Client.connect(request["address"])
        return client.Client.find_or_start(python=request.get("python") or None)
    except Exception as exc:
        raise BridgeError(_explain(exc, request))


def _explain(exc, request):
    text = str(exc) or type(exc).__name__
    if request.get("address"):
        return "Cannot reach the samroto bridge at %s: %s" % (request["address"], text)
    if not request.get("python"):
        return ("The samroto bridge is not running and samroto's Python is unknown: set SAMROTO_PYTHON "
                "or reinstall with `samroto install nuke --python /path/to/python`. (%s)" % text)
    return "Cannot start the samroto bridge with %s: %s" % (request["python"], text)


def run_track(request, on_frame, cancelled):
    """Open a session on the request's frames, send the prompts, propagate; calls
    ``on_frame(frame)`` as each frame's mattes are on disk; stops when ``cancelled()``."""
    raise BridgeError("the samroto bridge client is not wired yet")
