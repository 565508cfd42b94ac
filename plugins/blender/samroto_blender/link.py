"""The add-on's only contact with the bridge: a few calls on samroto's stdlib client.

The client (``bridge/client.py`` + ``bridge/protocol.py``) is copied into ``vendor/`` by
``samroto install blender`` (and into the zip); nothing here imports ``bpy``, so it runs in
the tracking thread.
"""

import importlib


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
    """A connected client: the bridge at the preferences' address, else found or started
    with the preferences' Python."""
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
        return ("The samroto bridge is not running and no samroto Python is set: set it in "
                "Preferences > Add-ons > samroto (the Python where samroto is installed). (%s)" % text)
    return "Cannot start the samroto bridge with %s: %s" % (request["python"], text)


def run_track(request, emit, cancelled):
    """Open a session, send the prompts, propagate; ``emit`` gets ("matte", frame, paths)."""
    with connect(request) as bridge:
        raise BridgeError("not wired yet")
