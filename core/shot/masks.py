"""Mask prompts from files: the one reader every front end uses."""

from __future__ import annotations

import numpy as np

from .errors import MaskPromptError


def read_mask(path, width: int, height: int, model_size: int | None = None) -> np.ndarray:
    """A mask prompt as a bool array (True inside), read with OpenImageIO (PNG, TIFF, EXR,
    DPX, JPEG...). Inside is the alpha channel when the image has one (an RGBA roto
    export), else any channel above zero. The mask is the plate's size (``width`` x
    ``height``), or the model's input size ``model_size`` squared."""
    import OpenImageIO as oiio

    buf = oiio.ImageBuf(str(path))
    if buf.has_error or buf.spec().width <= 0:
        raise MaskPromptError(f"cannot read mask prompt {path}: {buf.geterror() or 'not an image'}; "
                              f"give a PNG, TIFF or EXR the size of the plate ({width}x{height})")
    spec = buf.spec()
    sizes = [(height, width)] + ([(model_size, model_size)] if model_size else [])
    if (spec.height, spec.width) not in sizes:
        raise MaskPromptError(f"mask prompt {path} is {spec.width}x{spec.height}; it must be the plate's size "
                              f"{width}x{height}")
    pixels = np.asarray(buf.get_pixels(oiio.FLOAT)).reshape(spec.height, spec.width, spec.nchannels)
    inside = pixels[..., spec.alpha_channel] if spec.alpha_channel >= 0 else pixels.max(axis=2)
    return inside > 0
