"""The Finish tab: samroto's matte finishing (docs/finishing.md) as node knobs, in pixels of
the plate, in the order the bridge runs them. Off by default (the bridge's ``finish.*``
settings apply); with **override** on, the tab's values finish the live preview of the
current frame and every frame a Track writes.

Names are Nuke's where Nuke has the same control: **grow** is a Dilate by that many pixels
(negative: an Erode), **feather** the width of the soft edge ramp (10%-90%), **choke** an
"Erode (filter)" of the soft edge; **fill holes** / **remove specks** in square pixels.
"""

import nuke

# (knob, finish setting, label, kind, default, tooltip)
CONTROLS = [
    ("finish_refine", "refine", "edge refine", "bool", True,
     "Snap the matte's edge to the plate's edges (off: SAM 2's plain upscaled edge)."),
    ("finish_refine_strength", "refine_strength", "refine mix", "float", 1.0,
     "0 = SAM 2's edge, 1 = fully plate-guided."),
    ("finish_hole_area", "hole_area", "fill holes (px\u00b2)", "float", 0.0,
     "Fill holes up to this many pixels (0: off)."),
    ("finish_speck_area", "speck_area", "remove specks (px\u00b2)", "float", 0.0,
     "Remove specks up to this many pixels (0: off)."),
    ("finish_keep_largest", "keep_largest", "keep largest piece", "bool", False,
     "Keep only the largest piece of each object's matte."),
    ("finish_temporal_strength", "temporal_strength", "stabilise", "float", 0.0,
     "Calm edge chatter where the plate does not move, 0 (off) to 0.95; never lags motion."),
    ("finish_grow", "grow", "grow (px)", "float", 0.0,
     "Dilate the edge by this many pixels; negative erodes."),
    ("finish_feather", "feather", "feather (px)", "float", 0.0,
     "Soft edge: the width of the ramp from 10% to 90%, in pixels."),
    ("finish_choke", "choke", "choke (px)", "float", 0.0,
     "Pull the soft edge in without hardening it (Erode (filter)); negative spreads."),
    ("finish_non_overlap", "non_overlap", "no overlap", "bool", True,
     "Objects never share a pixel's coverage (alphas sum to at most 1)."),
]
OVERRIDE = "finish_override"
KNOBS = [c[0] for c in CONTROLS] + [OVERRIDE]


def make_knobs():
    """The Finish tab's knobs, for the node to add."""
    made = [nuke.Tab_Knob("finish", "Finish")]  # type: list
    override = nuke.Boolean_Knob(OVERRIDE, "override the bridge's finishing")
    override.setTooltip("Off: the bridge's finish.* settings. On: these values, on the live preview and on Track.")
    made.append(override)
    for name, _, label, kind, default, tip in CONTROLS:
        knob = nuke.Boolean_Knob(name, label) if kind == "bool" else nuke.Double_Knob(name, label)
        knob.setTooltip(tip)
        made.append(knob)
    return made, {name: default for name, _, _, _, default, _ in CONTROLS}


def overrides(node):
    """The bridge's ``finish`` override for the node's mattes ({setting: value}), or None
    when the node leaves finishing to the bridge's settings (or has no Finish tab)."""
    knob = node.knob(OVERRIDE)
    if knob is None or not knob.value():
        return None
    out = {}
    for name, setting, _, kind, _, _ in CONTROLS:
        value = node[name].value()
        out[setting] = bool(value) if kind == "bool" else float(value)
    return out
