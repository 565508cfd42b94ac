"""Input colour transforms: whatever a plate holds -> display-referred RGB in [0, 1].

SAM 2 was trained on ordinary display-referred pictures (8-bit sRGB / Rec.709 video), so a
scene-linear EXR or a camera-log plate must be turned into what a monitor would show before
the model sees it. OpenColorIO does that when a config and colour space are given; the
built-in names (``auto``, ``srgb``, ``rec709``, ``linear``) need no config.
"""

from __future__ import annotations

import difflib
import functools
import os
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from .errors import ColorError

BUILTIN_INPUTS = ("auto", "srgb", "rec709", "linear")
DEFAULT_OCIO_CONFIG = "ocio://studio-config-latest"  # has ACES, camera log spaces and displays
ROLLOFF_KNEE = 0.8  # scene-linear values above this are compressed smoothly towards 1.0


@dataclass(frozen=True)
class ColorSpec:
    """How to turn a source's pixels display-referred.

    ``input``: ``auto`` (linear for half/float data, sRGB for integer data and video),
    ``srgb`` (already display-referred: passed through), ``rec709`` (Rec.709 camera OETF),
    ``linear`` (scene-linear Rec.709 primaries), or an OCIO colour space name.
    ``ocio_config``: path or ``ocio://`` URI; None means ``$OCIO``, else the built-in
    studio config (only consulted for OCIO names). ``display``: an OCIO display (its
    default view is used, e.g. the ACES 2.0 SDR output transform) or colour space.
    ``highlight_rolloff``: for ``linear``, compress values above 0.8 instead of clipping.
    """

    input: str = "auto"
    ocio_config: str | None = None
    display: str = "sRGB"
    highlight_rolloff: bool = True

    @classmethod
    def coerce(cls, value: "ColorSpec | dict | str | None") -> "ColorSpec":
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            return cls(input=value)
        if isinstance(value, dict):
            known = {"input", "ocio_config", "display", "highlight_rolloff"}
            unknown = set(value) - known
            if unknown:
                raise ColorError(
                    f"unknown colour setting(s) {sorted(unknown)}; use {sorted(known)}"
                )
            fields = {k: v for k, v in value.items() if v is not None}
            if fields.get("ocio_config") == "":
                fields.pop("ocio_config")  # the settings file's "empty" means "not given"
            return cls(**fields)
        raise ColorError(f"colour must be a ColorSpec, dict, string or None, not {type(value).__name__}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- built-in curves -------------------------------------------------------------------

def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """Linear light -> sRGB piecewise encoding (IEC 61966-2-1)."""
    x = np.clip(linear, 0.0, None)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)


def srgb_decode(encoded: np.ndarray) -> np.ndarray:
    """sRGB encoding -> linear light."""
    v = np.clip(encoded, 0.0, None)
    return np.where(v <= 0.04045, v / 12.92, np.power((v + 0.055) / 1.055, 2.4)).astype(np.float32)


def rec709_decode(encoded: np.ndarray) -> np.ndarray:
    """Rec.709 camera OETF -> scene-linear (what Nuke calls the ``rec709`` colour space)."""
    v = np.clip(encoded, 0.0, None)
    return np.where(v < 0.081, v / 4.5, np.power((v + 0.099) / 1.099, 1 / 0.45)).astype(np.float32)


def highlight_rolloff(linear: np.ndarray, knee: float = ROLLOFF_KNEE) -> np.ndarray:
    """Identity below ``knee``; above, a Reinhard-style shoulder ``k + s*t/(1+t)`` that
    approaches 1.0 slowly (highlights several stops over stay apart) and is C1 at the knee."""
    x = np.asarray(linear, dtype=np.float32)
    span = 1.0 - knee
    t = np.maximum(x - knee, 0.0) / span
    return np.where(x > knee, knee + span * t / (1.0 + t), x).astype(np.float32)


# --- the transform a source applies -----------------------------------------------------

@dataclass
class ColorTransform:
    """A built transform: ``apply`` maps float32 (H, W, 3) to display-referred [0, 1]."""

    description: str
    identity: bool
    _fn: Callable[[np.ndarray], np.ndarray]

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        rgb = np.nan_to_num(np.asarray(rgb, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        out = rgb if self.identity else self._fn(rgb)
        return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


def build_transform(spec: "ColorSpec | dict | str | None", data_is_float: bool) -> ColorTransform:
    """The transform for a source whose pixels are float (EXR/HDR) or integer (PNG, video...)."""
    spec = ColorSpec.coerce(spec)
    name = spec.input.strip()
    key = name.lower()
    if spec.ocio_config is not None and key != "auto":
        config = load_ocio_config(spec.ocio_config)
        if config.getColorSpace(name) is not None:
            return _ocio_transform(config, spec.ocio_config, name, spec.display)
    if key == "auto":
        config_ref = spec.ocio_config or os.environ.get("OCIO")
        if data_is_float and config_ref:
            # a facility's config ($OCIO or color.ocio_config) says what its float plates are:
            # its scene_linear role (ACEScg in ACES configs), not linear Rec.709
            config = load_ocio_config(config_ref)
            linear = config.getColorSpace("scene_linear")
            if linear is None:
                raise ColorError(
                    f"the OCIO config {config_ref!r} has no scene_linear role, so color.input=auto cannot "
                    f"tell what float plates are: name their colour space (--colorspace NAME)")
            transform = _ocio_transform(config, config_ref, linear.getName(), spec.display)
            transform.description = f"auto: scene_linear role ({linear.getName()}) of {config_ref}; " \
                                    f"{transform.description}"
            return transform
        key = "linear" if data_is_float else "srgb"
    if key == "srgb":
        return ColorTransform("srgb (display-referred, passed through)", True, lambda x: x)
    if key == "rec709":
        return ColorTransform("rec709 OETF -> linear -> sRGB", False, lambda x: srgb_encode(rec709_decode(x)))
    if key == "linear":
        if spec.highlight_rolloff:
            return ColorTransform(
                f"scene-linear -> sRGB (highlight roll-off above {ROLLOFF_KNEE})",
                False, lambda x: srgb_encode(highlight_rolloff(x)),
            )
        return ColorTransform("scene-linear -> sRGB (clipped)", False, srgb_encode)
    config_ref = spec.ocio_config or os.environ.get("OCIO") or DEFAULT_OCIO_CONFIG
    config = load_ocio_config(config_ref)
    if config.getColorSpace(name) is None:
        raise ColorError(_unknown_space_message(config, config_ref, name))
    return _ocio_transform(config, config_ref, name, spec.display)


@functools.lru_cache(maxsize=8)
def load_ocio_config(ref: str):
    """An OCIO config from a path or ``ocio://`` URI (cached)."""
    import PyOpenColorIO as ocio

    try:
        return ocio.Config.CreateFromFile(str(ref))
    except Exception as exc:  # OCIO raises its own Exception type
        raise ColorError(
            f"cannot load the OpenColorIO config {ref!r}: {exc}. Give a readable config.ocio path "
            f"or a built-in URI such as {DEFAULT_OCIO_CONFIG!r} or 'ocio://default'."
        ) from exc


def list_color_spaces(ocio_config: str | None = None) -> list[str]:
    """Names usable as ``ColorSpec.input``: the built-ins, then those of the OCIO config."""
    ref = ocio_config or os.environ.get("OCIO") or DEFAULT_OCIO_CONFIG
    return list(BUILTIN_INPUTS) + list(load_ocio_config(ref).getColorSpaceNames())


def _unknown_space_message(config, ref: str, name: str) -> str:
    names = list(config.getColorSpaceNames())
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.4)
    hint = f" Did you mean: {', '.join(repr(c) for c in close)}?" if close else ""
    return (
        f"unknown colour space {name!r}: neither a built-in ({', '.join(BUILTIN_INPUTS)}) nor a "
        f"colour space of the OCIO config {ref!r} ({len(names)} spaces).{hint} List the valid names "
        f"with samroto.core.io.list_color_spaces({ref!r}) or `ociocheck --iconfig <config>`."
    )


def _ocio_transform(config, ref: str, src: str, display: str) -> ColorTransform:
    import PyOpenColorIO as ocio

    displays = list(config.getDisplays())
    by_lower = {d.lower(): d for d in displays}
    chosen = by_lower.get(display.lower())
    try:
        if chosen is None and config.getColorSpace(display) is not None:
            proc = config.getProcessor(src, display)
            label = f"OCIO {src} -> {display}"
        else:
            if chosen is None:  # "sRGB" -> "sRGB - Display"
                chosen = next((d for d in displays if d.lower().startswith(display.lower())), None)
            if chosen is None:
                raise ColorError(
                    f"unknown display {display!r} in OCIO config {ref!r}: use one of its displays "
                    f"({', '.join(displays)}) or a colour space name."
                )
            view = config.getDefaultView(chosen)
            proc = config.getProcessor(ocio.DisplayViewTransform(src=src, display=chosen, view=view))
            label = f"OCIO {src} -> {chosen} / {view}"
    except ColorError:
        raise
    except Exception as exc:
        raise ColorError(f"OCIO cannot convert {src!r} to {display!r} with {ref!r}: {exc}") from exc
    cpu = proc.getDefaultCPUProcessor()

    def apply(rgb: np.ndarray) -> np.ndarray:
        out = np.ascontiguousarray(rgb, dtype=np.float32).copy()
        cpu.applyRGB(out)
        return out

    return ColorTransform(label, False, apply)
