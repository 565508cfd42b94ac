"""Temporal stabilisation: less edge chatter, no lag.

A causal, motion-gated exponential smoothing along the propagation direction. Each
frame's alpha is blended with the previous *output*:

    out_t = (1 - w) * alpha_t + w * out_{t-1},   w = strength * gate

and the gate is close to 1 only where the plate did not change between the two frames
— the signed grey difference is averaged over a few working-resolution pixels first, so
film grain cancels out while real motion does not — nor within ``MOTION_SPREAD_PX`` of a
change (a refined edge's soft fringe reaches past the plate's own edge), and where the
matte did not jump. Where the object or the camera moves, the gate closes and the new
frame passes through untouched — so a moving edge does not trail, while a static edge's
frame-to-frame flicker is averaged away. Off by default.

The state is per object; a jump in frame number, a change of direction or of size resets it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .refine import box_mean, work_size

# The matte-change gate passes changes bigger than this untouched (a corrected frame, a pop).
_MATTE_JUMP = 0.5
# Motion anywhere this close (full-res px) closes the gate: a refined edge's soft fringe
# reaches a few pixels past the plate's own edge, and must follow it without trailing.
MOTION_SPREAD_PX = 16


def _grey_small(plate: torch.Tensor) -> torch.Tensor:
    """HxWx3 plate -> 1x1xhxw grey at working resolution, lightly blurred against grain."""
    g = plate[..., :3].mean(-1) if plate.ndim == 3 else plate
    h, w = work_size(*g.shape)
    return F.interpolate(g[None, None], size=(h, w), mode="area")


class TemporalStabilizer:
    """Feed frames in propagation order: ``out = stab(alpha, plate, frame)``.

    strength: 0 (off) .. 0.95 (heavy). sensitivity: plate change (0..1 grey levels) at which
    the gate is about 37% open; lower values protect motion more strictly.
    """

    def __init__(self, strength: float = 0.0, sensitivity: float = 0.03):
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"temporal strength must be in [0, 1), got {strength}")
        if sensitivity <= 0:
            raise ValueError(f"temporal sensitivity must be > 0, got {sensitivity}")
        self.strength = float(strength)
        self.sensitivity = float(sensitivity)
        self.reset()

    def reset(self) -> None:
        self._prev_out: torch.Tensor | None = None
        self._prev_grey: torch.Tensor | None = None
        self._prev_frame: int | None = None
        self._direction = 0

    def _continues(self, frame: int | None, shape) -> bool:
        if self._prev_out is None or self._prev_out.shape != shape:
            return False
        if frame is None or self._prev_frame is None:
            return frame is None and self._prev_frame is None
        step = frame - self._prev_frame
        if abs(step) != 1 or (self._direction and step != self._direction):
            return False
        self._direction = step
        return True

    def __call__(self, alpha: torch.Tensor, plate: torch.Tensor, frame: int | None = None) -> torch.Tensor:
        """alpha: HxW tensor; plate: HxWx3 tensor on the same device. Returns HxW."""
        if self.strength <= 0:
            return alpha
        grey = _grey_small(plate.to(alpha.device, torch.float32))
        if not self._continues(frame, alpha.shape):
            self._direction = 0
            out = alpha
        else:
            # signed difference averaged first: grain cancels out, motion does not
            change = box_mean(grey - self._prev_grey, 2).abs()
            k = max(1, round(MOTION_SPREAD_PX * grey.shape[-1] / alpha.shape[-1]))
            change = F.max_pool2d(change, 2 * k + 1, stride=1, padding=k)
            gate = torch.exp(-(change / self.sensitivity) ** 2)
            gate = F.interpolate(gate, size=alpha.shape, mode="bilinear", align_corners=False)[0, 0]
            jump = (alpha - self._prev_out).abs()
            gate = gate * (1.0 - jump / _MATTE_JUMP).clamp(0.0, 1.0)
            w = self.strength * gate
            out = torch.lerp(alpha, self._prev_out, w)
        self._prev_out, self._prev_grey, self._prev_frame = out, grey, frame
        return out
