"""Place Prompts: the click/drag mode in the Movie Clip Editor.

The Movie Clip Editor has no tool system (``register_tool`` refuses it: "has no toolbar"),
so prompting is a modal operator started from the samroto panel: click for a positive
point, Alt-click or Ctrl-click for a negative one, drag for a box; Esc, Enter or
right-click ends it. Navigation (wheel, middle mouse, frame keys) passes through, so the
artist can zoom, pan and change frame while placing prompts.

``PromptGesture`` is the event logic without Blender events (tests drive it directly,
since no events are dispatched in background mode).
"""

from typing import TYPE_CHECKING, Any

import bpy

DRAG_THRESHOLD = 5  # pixels of mouse travel that turn a click into a box drag
DRAG: dict = {}  # the box being dragged right now, for the overlay: {"box": (co_a, co_b)}


class PromptGesture:
    """Press/move/release -> ("point", co, positive) or ("box", co_a, co_b) or None."""

    def __init__(self):
        self.press = None  # (region_xy, co)
        self.dragging = False

    def handle(self, kind, value, region_xy, co, negative=False):
        if kind == "LEFTMOUSE" and value == "PRESS":
            self.press, self.dragging = (region_xy, co), False
            return None
        if self.press is None:
            return None
        if kind == "MOUSEMOVE":
            (x0, y0), _ = self.press
            if abs(region_xy[0] - x0) + abs(region_xy[1] - y0) >= DRAG_THRESHOLD:
                self.dragging = True
            if self.dragging:
                DRAG["box"] = (self.press[1], co)
            return None
        if kind == "LEFTMOUSE" and value == "RELEASE":
            start, self.press = self.press[1], None
            DRAG.pop("box", None)
            if self.dragging:
                return ("box", start, co)
            return ("point", start, not negative)
        return None


def apply(action):
    """Run the add-on operator for a finished gesture; returns its result set."""
    if action is None:
        return None
    if action[0] == "box":
        return bpy.ops.samroto.add_box(co_a=action[1], co_b=action[2])  # type: ignore[attr-defined]  # ours
    return bpy.ops.samroto.add_point(co=action[1], positive=action[2])  # type: ignore[attr-defined]  # ours


def live_matte(context, clip, action, gesture):
    """The Live Matte of the frame: after a click or a finished box, and while a box is being
    dragged (each update; the host kit sends only a few of them, the newest winning)."""
    from . import live

    if clip is None:
        return
    try:
        if action is not None:
            live.request_async(context, clip)
        elif gesture.dragging and "box" in DRAG:
            live.request_async(context, clip, box=DRAG["box"])
    except Exception as exc:  # noqa: BLE001 - no bridge, a clip off disk: placing prompts goes on
        clip.samroto.last_message = str(exc)


class _ClickMode:
    """A mix-in of the click modes in the Movie Clip Editor (modal operators; each also derives
    from bpy.types.Operator): they need an editor showing a clip, work in its main region and
    show what the keys do in its header while they run."""
    if TYPE_CHECKING:  # what bpy.types.Operator provides (see ops_prompts._ClipOperator)
        poll_message_set: Any

    @classmethod
    def poll(cls, context):
        space = context.space_data
        if space is None or space.type != "CLIP_EDITOR" or space.clip is None:
            cls.poll_message_set("Use it in a Movie Clip Editor showing a clip")
            return False
        return True

    def _begin(self, context, hint):
        self.area = context.area
        self.region = next(r for r in context.area.regions if r.type == "WINDOW")
        context.window_manager.modal_handler_add(self)
        self.area.header_text_set(hint)
        return {"RUNNING_MODAL"}

    def _stop(self):
        self.area.header_text_set(None)
        self.area.tag_redraw()

    def _region_xy(self, event):
        return event.mouse_x - self.region.x, event.mouse_y - self.region.y

    def _inside(self, xy):
        """In the clip's region, not on the sidebar, header or timeline."""
        return 0 <= xy[0] < self.region.width and 0 <= xy[1] < self.region.height

    def _clip_co(self, xy):
        """Normalised clip coordinates (0..1, y up) of a region position, as ops_prompts takes."""
        return tuple(self.region.view2d.region_to_view(*xy))


HINT = "samroto: click = include, Alt/Ctrl-click = exclude, drag = box  |  Esc/Enter: done"


class SAMROTO_OT_place_prompts(_ClickMode, bpy.types.Operator):
    bl_idname = "samroto.place_prompts"
    bl_label = "Place Prompts"
    bl_description = ("Click on the clip to include the active object (Alt/Ctrl-click "
                      "excludes, drag draws a box); Esc or Enter when done")

    def invoke(self, context, event):
        self.gesture = PromptGesture()
        return self._begin(context, HINT)

    def modal(self, context, event):
        if event.type in {"ESC", "RET", "NUMPAD_ENTER", "RIGHTMOUSE"} and event.value == "PRESS":
            DRAG.pop("box", None)
            self._stop()
            return {"FINISHED"}
        if event.type not in {"LEFTMOUSE", "MOUSEMOVE"}:
            return {"PASS_THROUGH"}  # zoom, pan, frame change...
        xy = self._region_xy(event)
        if event.type == "LEFTMOUSE" and event.value == "PRESS" and not self._inside(xy):
            return {"PASS_THROUGH"}  # clicks on the sidebar, header, timeline
        co = self._clip_co(xy)
        action = self.gesture.handle(event.type, event.value, xy, co, negative=event.alt or event.ctrl)
        if action is not None:
            with context.temp_override(area=self.area, region=self.region):
                apply(action)
        live_matte(context, self.area.spaces.active.clip, action, self.gesture)
        self.area.tag_redraw()
        return {"RUNNING_MODAL"} if event.type == "LEFTMOUSE" or self.gesture.dragging else {"PASS_THROUGH"}


CLASSES = [SAMROTO_OT_place_prompts]
