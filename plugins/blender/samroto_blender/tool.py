"""The "samroto Prompt" tool in the Movie Clip Editor's toolbar (Tracking mode).

Click: positive point. Alt-click or Ctrl-click: negative point. Click-drag: box.
Everything goes to the active object on the current frame.
"""

import bpy


class SamrotoPromptTool(bpy.types.WorkSpaceTool):
    bl_space_type = "CLIP_EDITOR"
    bl_context_mode = "TRACKING"
    bl_idname = "samroto.prompt_tool"
    bl_label = "samroto Prompt"
    bl_description = ("Click: positive point. Alt/Ctrl-click: negative point. Drag: box. "
                      "For the active samroto object, on the current frame")
    bl_icon = "ops.gpencil.primitive_box"
    bl_widget = None
    bl_keymap = (
        ("samroto.click_point", {"type": "LEFTMOUSE", "value": "CLICK"},
         {"properties": [("positive", True)]}),
        ("samroto.click_point", {"type": "LEFTMOUSE", "value": "CLICK", "alt": True},
         {"properties": [("positive", False)]}),
        ("samroto.click_point", {"type": "LEFTMOUSE", "value": "CLICK", "ctrl": True},
         {"properties": [("positive", False)]}),
        ("samroto.drag_box", {"type": "LEFTMOUSE", "value": "CLICK_DRAG"}, None),
    )

    def draw_settings(context, layout, tool):
        clip = getattr(context, "edit_movieclip", None)
        obj = clip.samroto.active_object() if clip else None
        layout.label(text="Object: %s" % (obj.name if obj else "(new)"))


_REGISTERED = []


def register():
    try:
        bpy.utils.register_tool(SamrotoPromptTool, separator=True)
        _REGISTERED.append(SamrotoPromptTool)
    except Exception as exc:  # no toolbar (e.g. some background setups): the operators still work
        print("samroto: prompt tool not registered: %s" % exc)


def unregister():
    while _REGISTERED:
        bpy.utils.unregister_tool(_REGISTERED.pop())
