"""Accept numpy arrays or torch tensors, hand back the same kind.

Finishing mixes torch (guided filter, temporal, on the engine's device) and OpenCV
(connected components, distance transforms, on the CPU). These helpers move data
between the two and remember what the caller gave, so every public function can
return what it was given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class Kind:
    """What the caller passed: numpy, or torch on some device with some dtype."""
    is_torch: bool
    device: torch.device | None = None
    dtype: torch.dtype | None = None

    def back(self, array: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        if self.is_torch:
            t = array if isinstance(array, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(array))
            # always float32: a bfloat16 alpha (from autocast logits) would band visibly
            return t.to(device=self.device, dtype=torch.float32)
        if isinstance(array, torch.Tensor):
            array = array.detach().to("cpu", torch.float32).numpy()
        return np.asarray(array, dtype=np.float32)


def kind_of(x: Any) -> Kind:
    if isinstance(x, torch.Tensor):
        return Kind(True, x.device, x.dtype)
    return Kind(False)


def to_numpy(x: Any, name: str = "array") -> np.ndarray:
    """float32 numpy copy-or-view of ``x`` (a tensor is moved to the CPU)."""
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float32).numpy()
    try:
        return np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a numpy array or torch tensor, got {type(x).__name__}") from exc


def to_torch(x: Any, device: torch.device | str | None = None, name: str = "array") -> torch.Tensor:
    """float32 tensor on ``device`` (default: where it already is, or the CPU)."""
    if isinstance(x, torch.Tensor):
        return x.detach().to(device=device or x.device, dtype=torch.float32)
    arr = to_numpy(x, name)
    return torch.from_numpy(np.ascontiguousarray(arr)).to(device or "cpu")


def as_2d(x, name: str):
    """Squeeze leading 1-sized axes: (1,1,H,W) and (1,H,W) logits become (H,W) (numpy or torch)."""
    while x.ndim > 2 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 2:
        raise ValueError(f"{name} must be one HxW matte (or 1xHxW / 1x1xHxW), got shape {tuple(x.shape)}")
    return x



