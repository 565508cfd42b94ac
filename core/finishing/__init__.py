"""Matte finishing: from SAM 2 logits to a matte a compositor would ship.

See docs/finishing.md. Entry point: :class:`Finisher` (configured by ``finish.*`` settings).
"""

from .cleanup import clean_matte, fill_holes_logits, non_overlapping
from .edges import apply_edges, choke, feather, grow_shrink, signed_distance
from .pipeline import FinishSettings, Finisher, finish
from .refine import bilinear_alpha, refine_alpha
from .temporal import TemporalStabilizer

__all__ = [
    "Finisher", "FinishSettings", "finish", "refine_alpha", "bilinear_alpha", "clean_matte",
    "fill_holes_logits", "non_overlapping", "apply_edges", "grow_shrink", "feather", "choke",
    "signed_distance", "TemporalStabilizer",
]
