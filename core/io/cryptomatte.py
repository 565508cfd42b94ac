"""Cryptomatte layers (Psyop's open specification) for multi-object matte EXRs.

Read by Nuke's and Fusion's Cryptomatte nodes and Blender's compositor: ``<layer>00.RGBA``,
``<layer>01.RGBA``... each holding two (ID, coverage) rank pairs, sorted by coverage,
32-bit float; IDs are the MurmurHash3_32 of the object's name with the bits read as a float
(exponent fixed so it is never inf/NaN/denormal), and the header holds
``cryptomatte/<key>/name``, ``hash`` (``MurmurHash3_32``), ``conversion``
(``uint32_to_float32``) and ``manifest`` (JSON name -> hex ID), where <key> is the first 7 hex
digits of the layer name's hash.

numpy only: ``MatteWriter(..., cryptomatte=True)`` writes them (``samroto track`` with
``finish.cryptomatte: true``); ``samroto.core.finishing.cryptomatte`` re-exports these.
"""

from __future__ import annotations

import json
import re
import struct
from typing import Mapping

import numpy as np

DEFAULT_LAYER = "CryptoObject"
DEFAULT_LEVELS = 6          # ranks: three RGBA layers, the spec's usual depth
_CHANNEL = re.compile(r"[^A-Za-z0-9_]")


def murmurhash3_32(data: bytes | str, seed: int = 0) -> int:
    """MurmurHash3 x86 32-bit, unsigned (as the Cryptomatte spec requires)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    c1, c2 = 0xCC9E2D51, 0x1B873593
    h = seed & 0xFFFFFFFF
    n = len(data) // 4
    for (k,) in struct.iter_unpack("<I", data[: n * 4]):
        k = (k * c1) & 0xFFFFFFFF
        k = ((k << 15) | (k >> 17)) & 0xFFFFFFFF
        k = (k * c2) & 0xFFFFFFFF
        h ^= k
        h = ((h << 13) | (h >> 19)) & 0xFFFFFFFF
        h = (h * 5 + 0xE6546B64) & 0xFFFFFFFF
    tail = data[n * 4:]
    k = 0
    for i, b in enumerate(tail):
        k |= b << (8 * i)
    if tail:
        k = (k * c1) & 0xFFFFFFFF
        k = ((k << 15) | (k >> 17)) & 0xFFFFFFFF
        k = (k * c2) & 0xFFFFFFFF
        h ^= k
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    h ^= h >> 16
    return h


def object_id(name: str) -> tuple[int, float]:
    """(uint32 hash with the spec's exponent fix, the same bits as a float32)."""
    h = murmurhash3_32(name)
    exponent = (h >> 23) & 0xFF
    if exponent in (0, 255):
        h ^= 1 << 23
    return h, struct.unpack("<f", struct.pack("<I", h))[0]


def layer_key(layer: str) -> str:
    return f"{murmurhash3_32(layer):08x}"[:7]


def channel_name(name: str) -> str:
    """A layer name Nuke, Fusion and Blender accept: letters, digits, underscores."""
    n = _CHANNEL.sub("_", str(name)) or "object"
    return n if not n[0].isdigit() else "_" + n


def cryptomatte_channels(mattes: Mapping[str, object], layer: str = DEFAULT_LAYER, levels: int = DEFAULT_LEVELS,
                         named: bool = True, crypto: bool = True) -> tuple[dict, dict]:
    """(channels {name: HxW float32}, header attributes) for one frame.

    ``mattes``: {object name: HxW alpha}. ``levels``: rank pairs kept (rounded up to even,
    at most what the objects need). Named channels are ``<name>.A``.
    """
    if not mattes:
        raise ValueError("no objects to write")
    names = list(mattes)
    alphas = np.stack([_plane(mattes[n], n) for n in names])
    channels: dict[str, np.ndarray] = {}
    attrs: dict[str, str] = {}
    if named:
        seen = set()
        for n, a in zip(names, alphas):
            c = channel_name(n)
            if c in seen:
                raise ValueError(f"two objects map to the same channel name {c!r}; rename one")
            seen.add(c)
            channels[f"{c}.A"] = a
    if crypto:
        ids = np.array([object_id(n)[1] for n in names], np.float32)
        ranks = min(max(2, levels + levels % 2), 2 * ((len(names) + 1) // 2))
        order = np.argsort(-alphas, axis=0, kind="stable")[:ranks]
        cov = np.take_along_axis(alphas, order, 0)
        idv = np.where(cov > 0, ids[order], 0.0).astype(np.float32)
        cov = np.where(cov > 0, cov, 0.0).astype(np.float32)
        for r in range(0, ranks, 2):
            base = f"{layer}{r // 2:02d}"
            channels[f"{base}.R"], channels[f"{base}.G"] = idv[r], cov[r]
            channels[f"{base}.B"], channels[f"{base}.A"] = (idv[r + 1], cov[r + 1]) if r + 1 < len(idv) else \
                (np.zeros_like(idv[r]), np.zeros_like(cov[r]))
        key = layer_key(layer)
        attrs = {
            f"cryptomatte/{key}/name": layer,
            f"cryptomatte/{key}/hash": "MurmurHash3_32",
            f"cryptomatte/{key}/conversion": "uint32_to_float32",
            f"cryptomatte/{key}/manifest": json.dumps({n: f"{object_id(n)[0]:08x}" for n in names},
                                                      separators=(",", ":")),
        }
    return channels, attrs


def _plane(matte, name) -> np.ndarray:
    a = np.asarray(matte, dtype=np.float32)
    if a.ndim == 3 and 1 in (a.shape[0], a.shape[-1]):
        a = a.reshape(a.shape[1:] if a.shape[0] == 1 else a.shape[:2])
    if a.ndim != 2:
        raise ValueError(f"matte {name!r} has shape {a.shape}; expected (H, W)")
    return a
