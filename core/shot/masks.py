"""Mask prompts from files: the one reader every front end uses."""

from __future__ import annotations

import os

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


def write_mask(path, mask) -> str:
    """Write a mask prompt file that :func:`read_mask` reads back as exactly ``mask`` (a 2-D
    bool array: one 8-bit channel, 255 inside, 0 outside; PNG, TIFF or EXR by the name).
    Written to a temporary name beside it, then renamed: a reader never sees half a file.
    Returns the path."""
    import OpenImageIO as oiio

    path = os.fspath(path)
    pixels = np.ascontiguousarray(np.asarray(mask, bool), dtype=np.uint8) * np.uint8(255)
    if pixels.ndim != 2:
        raise MaskPromptError(f"a mask to write must be 2-D, got shape {pixels.shape}")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    stem, ext = os.path.splitext(os.path.basename(path))
    tmp = os.path.join(folder, f".{stem}.{os.getpid()}.tmp{ext}")
    out = oiio.ImageOutput.create(tmp)
    if out is None:
        raise MaskPromptError(f"cannot write mask {path}: {oiio.geterror() or 'unknown format'}; name it .png, "
                              ".tif or .exr")
    try:
        try:
            if not (out.open(tmp, oiio.ImageSpec(pixels.shape[1], pixels.shape[0], 1, oiio.UINT8))
                    and out.write_image(pixels[..., None])):
                raise MaskPromptError(f"cannot write mask {path}: {out.geterror()}")
        finally:
            out.close()
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path
