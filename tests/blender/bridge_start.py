"""Inside Blender: with no bridge running, the add-on starts one itself with the
"samroto Python" preference (``python -m samroto serve``, found again through the discovery
file in the "Bridge folder"), then asks it to stop."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import bpy  # noqa: E402

from helpers import args, enable_addon, result  # noqa: E402

a = args()
enable_addon()
from samroto_blender import prefs  # noqa: E402
from samroto_blender.kit import hostkit  # noqa: E402

p = prefs.get()
p.python, p.config_dir = a["python"], a["config_dir"]
out = {}
try:
    bpy.ops.samroto.bridge_status()
    out["status_op"] = "FINISHED"
except RuntimeError as exc:
    out["status_op"] = str(exc)
how = prefs.bridge()
out["describe"] = hostkit.describe(**how)
bridge = hostkit.connect(**how)
out["pid"] = bridge.status().get("pid")
bridge.shutdown()
bridge.close()
result(out)
