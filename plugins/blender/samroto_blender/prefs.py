"""Add-on preferences: the one setting the add-on needs (where samroto lives)."""

import bpy
from bpy.props import StringProperty

from .kit import HOW_TO_SET, hostkit

# Written by `samroto install blender` (the Python that ran it) so a fresh install just works.
INSTALLED_PYTHON = hostkit.installed_python(__package__)


class SamrotoPreferences(bpy.types.AddonPreferences):
    # Extensions live in bl_ext.<repo>.samroto_blender, legacy add-ons in samroto_blender.
    bl_idname = __package__

    python: StringProperty(
        name="samroto Python", subtype="FILE_PATH", default=INSTALLED_PYTHON,
        description="The Python where samroto is installed; the add-on starts the bridge "
                    "with it when none is running (e.g. ~/samroto/.venv/bin/python)")
    config_dir: StringProperty(
        name="Bridge folder", subtype="DIR_PATH", default="",
        description="Optional: the samroto config folder whose discovery file names the "
                    "bridge to use (a bridge started with SAMROTO_CONFIG_DIR); empty: your "
                    "user config folder")

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "python")
        layout.prop(self, "config_dir")
        layout.operator("samroto.bridge_status", icon="PLUGIN")


def get(context=None):
    """These preferences (or defaults when the add-on is loaded without registering them)."""
    context = context or bpy.context
    addon = context.preferences.addons.get(__package__)
    return addon.preferences if addon else None


def bridge(context=None):
    """How the add-on reaches the bridge (``hostkit.connect``'s arguments), read on the main
    thread: the preferences' samroto Python (else $SAMROTO_PYTHON) and bridge folder."""
    p = get(context)
    return {"python": hostkit.samroto_python(bpy.path.abspath(p.python) if p and p.python else ""),
            "config_dir": bpy.path.abspath(p.config_dir) if p and p.config_dir else "",
            "name": "samroto-blender", "how_to_set": HOW_TO_SET}


class SAMROTO_OT_bridge_status(bpy.types.Operator):
    bl_idname = "samroto.bridge_status"
    bl_label = "Check Bridge"
    bl_description = "Connect to the samroto bridge (starting it if needed) and report its state"

    def execute(self, context):
        try:
            text = hostkit.describe(**bridge(context))
        except hostkit.HostError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, text)
        return {"FINISHED"}


CLASSES = [SamrotoPreferences, SAMROTO_OT_bridge_status]
