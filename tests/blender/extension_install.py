"""Inside Blender: the zip from `build_zip` installs through Blender's own "Install from
Disk" (extensions, 4.2+), enables as ``bl_ext.user_default.samroto_blender``, registers its
operators and preferences, and reads the samroto Python written by the installer."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import bpy  # noqa: E402

from helpers import args, result  # noqa: E402

a = args()
status = bpy.ops.extensions.package_install_files(
    filepath=a["zip"], repo="user_default", enable_on_install=True)
module = "bl_ext.user_default.samroto_blender"
prefs = bpy.context.preferences.addons[module].preferences if module in bpy.context.preferences.addons else None
result({
    "status": sorted(status),
    "enabled": module in bpy.context.preferences.addons,
    "track_operator": hasattr(bpy.ops.samroto, "track"),
    "clip_property": hasattr(bpy.types.MovieClip, "samroto"),
    "python_pref": prefs.python if prefs else None,
})
