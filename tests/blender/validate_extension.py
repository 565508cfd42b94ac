"""Blender's own extension validator on a package (a folder or a zip), as
``blender --command extension validate PATH`` runs it: ``bl_pkg/cli/blender_ext.py`` from
the bpy wheel, with the valid tags Blender ships (``_bpy_internal/extensions/tags.py``; see
bl_pkg/bl_extension_cli.py, ``cli_extension_handler``).

Run with a bpy virtualenv's Python: ``python validate_extension.py '{"path": ...}'``. It
does not import bpy (the validator is plain Python), so it is quick and Blender 4.2's exit
crash does not apply. Prints ``RESULT {"rc": int, "messages": [...]}``.
"""

import glob
import importlib.util
import io
import json
import os
import sys
from contextlib import redirect_stdout

a = json.loads(sys.argv[1])
site = [p for p in sys.path if p.endswith("site-packages")]
found = []
for folder in site:
    found += glob.glob(os.path.join(folder, "bpy", "[0-9]*", "scripts", "addons_core", "bl_pkg", "cli", "blender_ext.py"))
if not found:
    raise SystemExit("no bl_pkg validator in this bpy wheel (site-packages: %s)" % site)
validator = found[0]
scripts = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(validator))))
tags = os.path.join(scripts, "modules", "_bpy_internal", "extensions", "tags.py")

spec = importlib.util.spec_from_file_location("blender_ext", validator)
blender_ext = importlib.util.module_from_spec(spec)
sys.modules["blender_ext"] = blender_ext
spec.loader.exec_module(blender_ext)
blender_ext.ARG_DEFAULTS_OVERRIDE.build_valid_tags = tags  # what `blender --command extension` sets
text = io.StringIO()
with redirect_stdout(text):
    rc = blender_ext.main(["validate", a["path"]], args_internal=False, prog="blender --command extension")
print("RESULT " + json.dumps({"rc": rc, "messages": text.getvalue().splitlines(),
                              "validator": os.path.relpath(validator, site[0]), "tags": os.path.isfile(tags)}))
