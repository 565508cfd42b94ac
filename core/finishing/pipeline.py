"""One entry point for finishing: ``Finisher(settings).finish_frame(logits, plate, frame)``.

Order (each step optional, configured by the ``finish.*`` settings):

1. upsample the model's logits to the plate's resolution — guided by the plate
   (``finish.refine*``) or plainly bilinear, as SAM 2 does;
2. clean-up: fill holes, remove specks, keep the largest region (``finish.hole_area``,
   ``finish.speck_area``, ``finish.keep_largest``; areas in source pixels);
3. temporal stabilisation (``finish.temporal_strength``, off by default);
4. grow/shrink, feather, choke (``finish.grow``, ``finish.feather``, ``finish.choke``);
5. non-overlap between objects (``finish.non_overlap``), last, so it holds for what is
   written whatever the edge controls did.

Used by ``samroto track``, the bridge and, through the bridge, every plugin.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

import torch

from samroto.core.device import pick_device

from ._arrays import as_2d, kind_of, to_torch
from .cleanup import clean_matte, non_overlapping
from .edges import apply_edges
from .refine import bilinear_alpha, refine_alpha
from .temporal import TemporalStabilizer


@dataclass(frozen=True)
class FinishSettings:
    """The ``finish.*`` settings, with their defaults (see core/settings.py for help)."""
    refine: bool = True
    refine_radius: float = 0.0
    refine_eps: float = 1e-3
    refine_strength: float = 1.0
    hole_area: float = 0.0
    speck_area: float = 0.0
    keep_largest: bool = False
    non_overlap: bool = True
    temporal_strength: float = 0.0
    temporal_sensitivity: float = 0.03
    grow: float = 0.0
    feather: float = 0.0
    choke: float = 0.0

    @classmethod
    def from_settings(cls, settings: Any = None, **overrides) -> "FinishSettings":
        """From a samroto ``Settings`` object, a mapping (``finish.x`` or ``x`` keys), or neither."""
        values = {}
        names = {f.name for f in fields(cls)}
        if settings is not None:
            items = settings.items() if hasattr(settings, "items") else dict(settings).items()
            for key, value in items:
                short = key[len("finish."):] if key.startswith("finish.") else key
                if short in names:
                    values[short] = value
        for key, value in overrides.items():
            if key not in names:
                raise ValueError(f"unknown finishing setting {key!r}; known: {', '.join(sorted(names))}")
            values[key] = value
        return cls(**values)


class Finisher:
    """Turns per-object logits into finished full-resolution alphas, frame after frame.

    ``finish_frame({obj_id: logits}, plate, frame)`` -> ``{obj_id: alpha}``. Logits are
    low-res (the model's 256x256 square, aspect squashed) or full-res; plate is HxWx3 in
    [0, 1], display-referred. numpy in, numpy out; torch in, torch out (on the logits'
    device). Feed frames in propagation order for temporal stabilisation; ``reset()``
    between passes.
    """

    def __init__(self, settings: Any = None, device: str | torch.device | None = None, **overrides):
        self.settings = s = FinishSettings.from_settings(settings, **overrides)
        if device is None and settings is not None and hasattr(settings, "get"):
            device = settings.get("device", None)
        self.device = pick_device(device)
        self._stabilizers: dict[Any, TemporalStabilizer] = {}
        self._check(s)

    @staticmethod
    def _check(s: FinishSettings) -> None:
        if not 0 <= s.refine_strength <= 1:
            raise ValueError(f"finish.refine_strength must be between 0 and 1, got {s.refine_strength}")
        if not 0 <= s.temporal_strength < 1:
            raise ValueError(f"finish.temporal_strength must be in [0, 1), got {s.temporal_strength}")
        for name in ("hole_area", "speck_area", "feather", "refine_radius"):
            if getattr(s, name) < 0:
                raise ValueError(f"finish.{name} must be >= 0, got {getattr(s, name)}")

    def reset(self) -> None:
        self._stabilizers.clear()

    def finish(self, logits, plate, frame: int | None = None, obj_id: Any = 0):
        """One object: logits (h, w) -> alpha (H, W)."""
        return self.finish_frame({obj_id: logits}, plate, frame)[obj_id]

    def finish_frame(self, logits_by_obj: Mapping[Any, Any], plate, frame: int | None = None) -> dict:
        if not logits_by_obj:
            return {}
        s = self.settings
        ids = list(logits_by_obj)
        first = logits_by_obj[ids[0]]
        kind = kind_of(first)
        device = kind.device if kind.is_torch else self.device
        plate_t = to_torch(plate, device, "plate")
        if plate_t.ndim not in (2, 3):
            raise ValueError(f"plate must be HxWx3, got shape {tuple(plate_t.shape)}")
        H, W = plate_t.shape[:2]
        stacked = torch.stack([as_2d(to_torch(logits_by_obj[i], device, "logits"), f"logits for object {i!r}")
                               for i in ids])
        if s.refine and s.refine_strength > 0:
            alphas = refine_alpha(stacked, plate_t, s.refine_radius, s.refine_eps, s.refine_strength)
        else:
            alphas = bilinear_alpha(stacked, (H, W))
        out = []
        for obj, alpha in zip(ids, alphas):
            alpha = clean_matte(alpha, s.hole_area, s.speck_area, s.keep_largest)
            if s.temporal_strength > 0:
                stab = self._stabilizers.setdefault(obj, TemporalStabilizer(s.temporal_strength,
                                                                            s.temporal_sensitivity))
                alpha = stab(alpha, plate_t, frame)
            out.append(apply_edges(alpha, s.grow, s.feather, s.choke))
        if s.non_overlap and len(out) > 1:
            out = non_overlapping(out)
        return {i: kind.back(a) for i, a in zip(ids, out)}


def finish(logits, plate, settings: Any = None, frame: int | None = None, **overrides):
    """One-shot convenience (no temporal state): ``finish(logits, plate, grow=2)``."""
    return Finisher(settings, **overrides).finish(logits, plate, frame)
