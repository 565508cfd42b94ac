"""The SAM2Matte node: a Group built in Python, and the one place its buttons land.

Knobs: the SAM2 tab (model, range, matte, buttons) and a Prompts tab that grows as objects
and handles are added (see knobs.py); what is inside the group: group.py. Nothing in the
plugin imports this module back: it sits on top (buttons -> knobs, tracking, roto).
"""

import sys
import traceback

import nuke

from . import group as group_mod
from . import finishing, knobs, live, masks, review, roto, tracking, viewer
from .kit import hostkit

MARKER = "samroto_version"
MODELS = ["settings default", "sam2.1_hiera_tiny", "sam2.1_hiera_small", "sam2.1_hiera_base_plus",
          "sam2.1_hiera_large", "custom"]
DEVICES = ["auto", "cuda", "mps", "cpu"]
RANGES = ["input", "project", "custom"]
SHOWS = ["tracked", "live", "auto masks"]

BUTTON = "import samroto_nuke.node as _sam; _sam.on_button(nuke.thisNode(), %r)"
KNOB_CHANGED = "import samroto_nuke.node as _sam; _sam.on_knob_changed(nuke.thisNode(), nuke.thisKnob())"


def _button(name, label, action, tooltip):
    knob = nuke.PyScript_Knob(name, label, BUTTON % action)
    knob.setTooltip(tooltip)
    return knob


def _free_name(base):
    i = 1
    while nuke.toNode("%s%d" % (base, i)) is not None:
        i += 1
    return "%s%d" % (base, i)


def create(version):
    """A new SAM2Matte node (connected to the selected node by createNode) with one object;
    ``version``: the plugin's, kept in a hidden knob."""
    group = nuke.createNode("Group", inpanel=False)
    group.setName(_free_name("SAM2Matte"))
    segment_knobs, segment_defaults = masks.make_knobs()
    k = [nuke.Tab_Knob("sam2", "SAM2"),
         nuke.Text_Knob("status", "", "add prompts, then Track"),
         nuke.Int_Knob("object", "object"),
         _button("add_object", "add object", "add_object", "A new object with its own output channel."),
         _button("add_pos", "+ point", "add_pos", "A positive point for the object, keyed on this frame."),
         _button("add_neg", "- point", "add_neg", "A negative point (exclude) keyed on this frame."),
         _button("add_box", "box", "add_box", "A box around the object, keyed on this frame."),
         nuke.Enumeration_Knob(viewer.KNOB, "viewer clicks", viewer.MODES),
         _button("clear_frame", "clear frame", "clear_frame", "Delete the object's prompts on this frame."),
         _button("clear", "clear", "clear", "Delete all prompts of the object."),
         nuke.Text_Knob("div_live", ""),
         nuke.Boolean_Knob("live", "live matte"),
         nuke.Enumeration_Knob("show", "show", SHOWS),
         nuke.Text_Knob("candidates", "candidates", ""),
         nuke.Enumeration_Knob("candidate", "candidate", live.CHOICES),
         _button("mask_input", "mask from input", "mask_input",
                 "The mask input's alpha on this frame becomes the object's mask prompt there."),
         _button("segment", "segment everything", "segment",
                 "SAM 2's automatic masks on this frame: tick the ones to keep, then 'add picked'."),
         _button("add_picked", "add picked", "add_picked",
                 "Each ticked automatic mask becomes a new object, with that mask as its prompt on its frame."),
         ] + segment_knobs + [
         nuke.Text_Knob("div_track", ""),
         _button("track_backward", "<< track backward", "backward", "Track from this frame to the range start."),
         _button("track_frame", "track frame", "frame", "Only this frame."),
         _button("track_forward", "track forward >>", "forward", "Track from this frame to the range end."),
         _button("track_both", "<< track both >>", "both", "Track both ways from this frame."),
         _button("prev_lost", "<< lost", "prev_lost", "The previous frame where SAM 2 says the object was lost."),
         _button("next_lost", "lost >>", "next_lost", "The next frame where SAM 2 says the object was lost."),
         nuke.Enumeration_Knob("range", "range", RANGES),
         nuke.Int_Knob("range_first", "first"),
         nuke.Int_Knob("range_last", "last"),
         nuke.Text_Knob("div_model", ""),
         nuke.Enumeration_Knob("model", "model", MODELS),
         nuke.File_Knob("model_config", "custom config"),
         nuke.File_Knob("checkpoint", "custom checkpoint"),
         nuke.Enumeration_Knob("device", "device", DEVICES),
         nuke.File_Knob("matte_dir", "matte folder"),
         _button("convert_roto", "Convert to Roto", "roto", "A Roto node with animated shapes fitted to the mattes."),
         nuke.String_Knob(MARKER, "samroto"),
         ]
    finish, defaults = finishing.make_knobs()
    k += finish + [nuke.Tab_Knob("prompts", "Prompts")]
    for knob in k:
        group.addKnob(knob)
    for name, value in list(defaults.items()) + list(segment_defaults.items()):
        group[name].setValue(value)
    group["live"].setValue(True)
    group["live"].setTooltip("Show the current frame's matte as soon as a prompt changes (no Track needed).")
    group[viewer.KNOB].setTooltip("Armed: Ctrl+click in the Viewer adds a + or - point there, Ctrl+Shift+drag "
                                  "a box, or picks the automatic mask under the click (one node at a time).")
    group["candidate"].setTooltip("SAM 2's three masks for a single + point: pick the one you mean; "
                                  "it becomes the frame's mask prompt and Track uses it.")
    group[MARKER].setValue(version)
    group[MARKER].setVisible(False)
    group["object"].setValue(1)
    root = nuke.root()
    group["range_first"].setValue(int(root["first_frame"].value()))
    group["range_last"].setValue(int(root["last_frame"].value()))
    group.begin()  # type: ignore[attr-defined]  # stub gap: createNode("Group") is a Group
    try:
        plate = nuke.nodes.Input(name="Plate")
        nuke.nodes.Input(name="Mask", number=1)  # the group's second input: a matte to prompt with
        out = nuke.nodes.Output(name="Output1")
        out.setInput(0, plate)
    finally:
        group.end()  # type: ignore[attr-defined]  # stub gap: createNode("Group") is a Group
    group["knobChanged"].setValue(KNOB_CHANGED)
    knobs.add_object(group)
    return group


def on_button(node, action):
    """Every button of the node lands here (main thread); saved scripts call it by this name."""
    try:
        obj = int(node["object"].value())
        frame = nuke.frame()
        if action == "add_object":
            node["object"].setValue(knobs.add_object(node))
        elif action in ("add_pos", "add_neg", "add_box"):
            knobs.add_handle(node, obj, action[4:], frame)
        elif action == "clear_frame":
            knobs.clear_frame(node, obj, frame)
        elif action == "clear":
            knobs.clear_object(node, obj)
        elif action in ("forward", "backward", "both", "frame"):
            return tracking.start(node, action)
        elif action in ("prev_lost", "next_lost"):
            return review.jump(node, obj, -1 if action == "prev_lost" else 1)
        elif action == "roto":
            return roto.convert(node)
        elif action == "mask_input":
            return masks.from_input(node, obj, frame)
        elif action == "segment":
            return masks.segment(node)
        elif action == "add_picked":
            return masks.add_picked(node)
        else:
            raise ValueError("unknown action %r" % action)
    except hostkit.HostError as exc:  # the plugin's own errors say what to change
        group_mod.report_error(node, str(exc))
    except Exception as exc:  # say it in Nuke; keep the traceback for the Script Editor
        traceback.print_exc(file=sys.stderr)
        group_mod.report_error(node, "%s: %s" % (type(exc).__name__, exc))


def on_knob_changed(node, knob):
    """The node's knobChanged (main thread): the viewer-clicks switch, else the live matte."""
    if knob is not None and knob.name() == viewer.KNOB:
        return viewer.on_knob_changed(node, knob)
    return live.on_knob_changed(node, knob)
