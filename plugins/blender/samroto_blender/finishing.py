"""Finishing controls: samroto's matte finishing (docs/finishing.md) with Blender's names and
units, on the clip, previewed on the current frame and applied to the whole Track.

Off (the default), the bridge's own ``finish.*`` settings finish the mattes. On, the panel's
controls go with every request as per-request overrides (the matte spec's ``finish``): the
Live Matte of a prompted frame is then finished with them (what Track writes on that frame),
and Track finishes every frame with them. Changing a control asks for the current frame's
Live Matte again (debounced, like a drag: ``live.on_finish_change``), so its effect shows at
once.
"""

# (clip property, the bridge's finish setting): lengths are pixels of the plate, areas
# square pixels, as Blender's compositor nodes count them
CONTROLS = (
    ("finish_refine", "refine"),                  # Refine Edges (from the plate)
    ("finish_refine_radius", "refine_radius"),    # Edge Radius, px (0: auto)
    ("finish_fill_holes", "hole_area"),           # Fill Holes, px²
    ("finish_remove_specks", "speck_area"),       # Remove Specks, px²
    ("finish_largest_only", "keep_largest"),      # Largest Piece Only
    ("finish_stabilize", "temporal_strength"),    # Temporal Stabilization, 0-0.95
    ("finish_dilate_erode", "grow"),              # Dilate/Erode, px (negative erodes)
    ("finish_feather", "feather"),                # Feather, px (10%-90% ramp width)
    ("finish_choke", "choke"),                    # Choke, px (negative spreads)
    ("finish_exclusive", "non_overlap"),          # Non-Overlapping objects
)


def overrides(settings):
    """The ``finish`` overrides to send ({setting: value}), or None to leave finishing to the
    bridge's settings (the controls are off)."""
    if not settings.finish_custom:
        return None
    out = {}
    for prop, key in CONTROLS:
        value = getattr(settings, prop)
        out[key] = value if isinstance(value, bool) else round(float(value), 6)
    return out
