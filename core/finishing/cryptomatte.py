"""Cryptomatte-style multi-object EXR: every object of a shot in one file per frame.

The layers themselves (hashing, ranks, the manifest) live in
:mod:`samroto.core.io.cryptomatte` (numpy only), which ``MatteWriter(cryptomatte=True)``
and so ``samroto track`` with ``finish.cryptomatte: true`` use; this module re-exports them
and writes one frame from numpy arrays or torch tensors.

Two things go in the file, both optional:

- **named channels**, one per object (``<name>.A``), plain alphas a compositor can
  shuffle out by name (half float);
- **Cryptomatte layers** ``<layer>00.RGBA``... (32-bit float) with the
  ``cryptomatte/<key>/name|hash|conversion|manifest`` header (see the io module).

The EXR is written atomically and read back before it is published.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from samroto.core.io.cryptomatte import (DEFAULT_LAYER, DEFAULT_LEVELS, channel_name, cryptomatte_channels,
                                         layer_key, murmurhash3_32, object_id)

from ._arrays import as_2d, to_numpy

__all__ = ["DEFAULT_LAYER", "DEFAULT_LEVELS", "channel_name", "cryptomatte_channels", "layer_key",
           "murmurhash3_32", "object_id", "write_cryptomatte_exr"]


def write_cryptomatte_exr(path, mattes: Mapping[str, object], layer: str = DEFAULT_LAYER,
                          levels: int = DEFAULT_LEVELS, named: bool = True, crypto: bool = True,
                          compression: str = "zip") -> Path:
    """Write one frame's objects to ``path`` (EXR) atomically; returns the path.

    Named channels are half float; Cryptomatte channels are float32 (IDs need every bit).
    """
    from samroto.core.io.mattes import _write_image_atomic

    arrays = {n: as_2d(to_numpy(m, f"matte {n!r}"), f"matte {n!r}") for n, m in mattes.items()}
    channels, attrs = cryptomatte_channels(arrays, layer, levels, named, crypto)
    formats = {n: "float" for n in channels if crypto and n.startswith(layer)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_image_atomic(path, channels, "exr", compression, 16, None, None, attrs, formats)
    return path
