"""Prompts where the artist looks: Ctrl+click and Ctrl+Shift+drag in the Viewer.

Nuke's Python API has no mouse events for the Viewer (the community SAM tools either drag
XY_Knob / BBox_Knob handles, link points to a Tracker's tracks, or hook the Viewer's Qt
widget, which breaks between Nuke versions). It does keep the pixel (Ctrl+click) or the
region (Ctrl+Shift+drag) the artist last sampled in the Viewer node's
``colour_sample_bbox`` knob, in the Viewer's normalised coordinates: x from -1 at the
image's left edge to 1 at its right, y in the same units from the image's centre. A
``knobChanged`` callback on Viewer nodes (``nuke.addKnobChanged(..., nodeClass="Viewer")``,
installed by menu.py) turns that sample into a prompt on the SAM2Matte node whose
**viewer clicks** knob is armed: a positive or negative point at the clicked pixel, a box
over the dragged region, or a tick on the automatic mask under the click. The prompt is the
same animated handle the buttons make, so it can still be dragged, and the live matte
answers it.
"""

import nuke

from . import knobs, live
from . import group as group_mod
from .kit import hostkit

MODES = ["off", "+ point", "- point", "box", "pick auto mask"]
KNOB = "viewer_clicks"
SAMPLE = "colour_sample_bbox"


def to_pixels(sample, width, height, pixel_aspect=1.0):
    """A Viewer sample (x0, y0, x1, y1), normalised, -> Nuke pixels (x0, y0, x1, y1), y up,
    corners in order. x spans the width from -1 to 1; y has the same unit, the displayed
    width's half, counted from the image's centre (anamorphic pixels displayed wider)."""
    x0, y0, x1, y1 = (float(v) for v in sample)
    half_w = width / 2.0
    half_h = height / 2.0
    unit_y = half_w * pixel_aspect  # display pixels per unit of y, in image rows
    xs = sorted((half_w + x0 * half_w, half_w + x1 * half_w))
    ys = sorted((half_h + y0 * unit_y, half_h + y1 * unit_y))
    return xs[0], ys[0], xs[1], ys[1]


def armed():
    """The SAM2Matte nodes at the script's top whose viewer clicks are on."""
    found = []
    for node in nuke.allNodes("Group", nuke.root()):
        knob = node.knob(KNOB)
        if knob is not None and knob.value() != "off":
            found.append(node)
    return found


def on_knob_changed(node, knob):
    """The SAM2Matte's own knobChanged for its ``viewer_clicks`` knob: arming one node
    disarms the others, so a click goes to one node."""
    if knob.value() == "off":
        return
    for other in armed():
        if other is not node:
            live.quietly(other, KNOB, "off")


def on_viewer_knob():
    """``nuke.addKnobChanged`` callback for Viewer nodes: a new colour sample becomes a
    prompt on the armed SAM2Matte."""
    knob = nuke.thisKnob()
    if knob is None or knob.name() != SAMPLE:
        return
    nodes = armed()
    if len(nodes) != 1:
        return  # nothing armed: an ordinary colour sample
    node = nodes[0]
    try:
        apply_sample(node, knob.value())
    except hostkit.HostError as exc:
        group_mod.set_status(node, "Error: " + str(exc))


def apply_sample(node, sample):
    """Put the armed kind of prompt where ``sample`` (the Viewer's colour_sample_bbox) is."""
    fmt = node.format()
    x0, y0, x1, y1 = to_pixels(sample, fmt.width(), fmt.height(), _pixel_aspect(fmt))
    mode, obj, frame = node[KNOB].value(), int(node["object"].value()), nuke.frame()
    x, y = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    if mode in ("+ point", "- point"):
        return knobs.add_handle(node, obj, "pos" if mode == "+ point" else "neg", frame, at=(x, y))
    if mode == "box":
        if x1 - x0 < 2 or y1 - y0 < 2:
            raise hostkit.HostError("A box needs a region: Ctrl+Shift+drag over the object in the Viewer "
                                    "(Ctrl+click places points).", "bad_prompts")
        return knobs.add_handle(node, obj, "box", frame, at=(x0, y0, x1, y1))
    found = getattr(live.live_for(node), "auto", None)
    if not found:
        raise hostkit.HostError("No automatic masks to pick from: press 'segment everything' first.", "no_masks")
    mask = hostkit.mask_at(found, x, fmt.height() - y)  # the masks' pixels have y down
    if mask is None:
        group_mod.set_status(node, "no automatic mask under the click at x %d, y %d" % (x, y))
        return None
    tick = node["auto%d" % mask.index]
    tick.setValue(not tick.value())
    group_mod.set_status(node, "automatic mask #%d %s" % (mask.index, "picked" if tick.value() else "dropped"))
    return tick


def _pixel_aspect(fmt):
    aspect = getattr(fmt, "pixelAspect", None)
    return float(aspect()) if aspect is not None else 1.0
