"""Finish: samroto's matte finishing (docs/finishing.md) with Resolve's names and units.

Names follow Magic Mask's refine controls where Resolve has the same idea (Shrink/Grow,
Blur Radius, Clean Black, Clean White, Smart Refine, Consistency), in plate pixels (square
pixels for the clean-ups) rather than Magic Mask's 0-100 scales, so a value means the same
on an HD and a 4K clip. The values live with the clip, in its Fusion comp's persistent data
(``comp:SetData("samroto.finish", {...})``, Fusion Scripting Guide, "Object Data": data
set on a composition is saved with it), so the window, the no-window scripts and the Lua
scripts all read the same ones. None saved: the bridge's own ``finish.*`` settings apply.
Each value finishes the preview of the current frame (Preview frame) and every frame a
Track writes.
"""

DATA = "samroto.finish"

# (finish setting, Resolve's name, kind, minimum, maximum, default, what it does)
CONTROLS = [
    ("refine", "Smart Refine", "bool", None, None, True,
     "Snap the matte's edge to the plate's edges (off: SAM 2's plain upscaled edge)."),
    ("refine_strength", "Refine Mix", "float", 0.0, 1.0, 1.0, "0 = SAM 2's edge, 1 = fully plate-guided."),
    ("speck_area", "Clean Black (px\u00b2)", "float", 0.0, 1e6, 0.0,
     "Remove white specks in the black up to this many square pixels (0: off)."),
    ("hole_area", "Clean White (px\u00b2)", "float", 0.0, 1e6, 0.0,
     "Fill black holes in the white up to this many square pixels (0: off)."),
    ("temporal_strength", "Consistency", "float", 0.0, 0.95, 0.0,
     "Calm edge chatter where the picture does not move, 0 (off) to 0.95; never lags motion."),
    ("grow", "Shrink/Grow (px)", "float", -1000.0, 1000.0, 0.0, "Grow the edge by this many pixels; negative shrinks."),
    ("feather", "Blur Radius (px)", "float", 0.0, 1000.0, 0.0, "Soft edge: the width of the ramp from 10% to 90%."),
    ("choke", "Choke (px)", "float", -1000.0, 1000.0, 0.0,
     "Pull the soft edge in without hardening it; negative spreads."),
]
SETTINGS = [c[0] for c in CONTROLS]


class FinishError(ValueError):
    """A finishing value out of range; the message names it and its range."""


def check(values):
    """``values`` ({setting: value}) checked against CONTROLS: numbers in range, booleans;
    returns the cleaned dict (unknown names refused)."""
    out = {}  # type: dict
    for setting, value in dict(values).items():
        spec = next((c for c in CONTROLS if c[0] == setting), None)
        if spec is None:
            raise FinishError("samroto has no finishing control %r; it has: %s" % (setting, ", ".join(SETTINGS)))
        _, label, kind, low, high, _, _ = spec
        if kind == "bool":
            out[setting] = bool(value)
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise FinishError("%s must be a number, not %r." % (label, value))
        if not float(low or 0) <= number <= float(high or 0):
            raise FinishError("%s must be between %g and %g, not %g." % (label, float(low or 0), float(high or 0),
                                                                         number))
        out[setting] = number
    return out


def read(comp):
    """The clip's finishing values ({setting: value}) saved in its comp, or None."""
    getter = getattr(comp, "GetData", None)
    data = getter(DATA) if callable(getter) else None
    if not isinstance(data, dict) or not data:
        return None
    try:
        return check({str(k): v for k, v in data.items() if str(k) in SETTINGS})
    except FinishError:
        return None


def save(comp, values):
    """Save ``values`` (checked) as the clip's finishing; None or {} goes back to the
    bridge's settings. Returns what was saved."""
    values = check(values or {})
    comp.SetData(DATA, values or None)
    return values or None


def describe(values):
    if not values:
        return "Finish: the bridge's settings"
    parts = []
    for setting, label, kind, _, _, _, _ in CONTROLS:
        if setting in values:
            value = values[setting]
            parts.append("%s %s" % (label, ("on" if value else "off") if kind == "bool" else "%g" % value))
    return "Finish: " + ", ".join(parts)
