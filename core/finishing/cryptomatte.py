"""Cryptomatte-style multi-object EXR: every object of a shot in one file per frame.

Two things go in the file, both optional:

- **named channels**, one per object (``<name>.A``), plain alphas a compositor can
  shuffle out by name (half float);
- **Cryptomatte layers** (Psyop's open spec, read by Nuke's and Fusion's Cryptomatte
  nodes and Blender's compositor): ``<layer>00.RGBA``, ``<layer>01.RGBA``... each holding
  two (ID, coverage) rank pairs, sorted by coverage, 32-bit float; IDs are the
  MurmurHash3_32 of the object's name with the bits read as a float (exponent fixed so it
  is never inf/NaN/denormal), and the header holds ``cryptomatte/<key>/name``, ``hash``
  (``MurmurHash3_32``), ``conversion`` (``uint32_to_float32``) and ``manifest`` (JSON
  name -> hex ID), where <key> is the first 7 hex digits of the layer name's hash.

The EXR is written with OpenImageIO, atomically (temp file, then ``os.replace``).
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Mapping

import numpy as np

from samroto.core.io import atomic_path

from ._arrays import as_2d, to_numpy

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
    alphas = np.stack([as_2d(to_numpy(mattes[n], f"matte {n!r}"), f"matte {n!r}") for n in names])
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


def write_cryptomatte_exr(path, mattes: Mapping[str, object], layer: str = DEFAULT_LAYER,
                          levels: int = DEFAULT_LEVELS, named: bool = True, crypto: bool = True,
                          compression: str = "zip") -> Path:
    """Write one frame's objects to ``path`` (EXR) atomically; returns the path.

    Named channels are half float; Cryptomatte channels are float32 (IDs need every bit).
    """
    import OpenImageIO as oiio

    channels, attrs = cryptomatte_channels(mattes, layer, levels, named, crypto)
    names = list(channels)
    h, w = next(iter(channels.values())).shape
    spec = oiio.ImageSpec(w, h, len(names), oiio.FLOAT)
    spec.channelnames = tuple(names)
    spec.channelformats = tuple(oiio.TypeDesc(oiio.FLOAT if n.startswith(layer) and crypto else oiio.HALF)
                                for n in names)
    spec.attribute("compression", compression)
    for k, v in attrs.items():
        spec.attribute(k, v)
    pixels = np.ascontiguousarray(np.stack([channels[n] for n in names], -1), np.float32)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        out = oiio.ImageOutput.create(str(tmp))
        if out is None or not out.open(str(tmp), spec):
            raise OSError(f"cannot write {path}: {oiio.geterror()}")
        ok = out.write_image(pixels)
        out.close()
        if not ok:
            raise OSError(f"cannot write {path}: {oiio.geterror()}")
    return path
