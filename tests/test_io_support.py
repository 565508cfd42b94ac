"""Media the I/O tests generate themselves: clips and sequences whose pixels encode their frame
number, so a test can check a seek landed on the right frame. (No tests in this module.)"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

BITS = 8
W, H = 256, 128  # even sizes every codec accepts; 32 px per bit stripe


def coded_frame(index: int, width: int = W, height: int = H) -> np.ndarray:
    """uint8 RGB frame: 8 vertical stripes, white for 1 bits of ``index`` (LSB first)."""
    img = np.zeros((height, width, 3), np.uint8)
    stripe = width // BITS
    for bit in range(BITS):
        if (index >> bit) & 1:
            img[:, bit * stripe:(bit + 1) * stripe] = 235
        else:
            img[:, bit * stripe:(bit + 1) * stripe] = 20
    return img


def decode_index(rgb: np.ndarray) -> int:
    """Inverse of coded_frame for a float [0, 1] or uint8 frame (tolerates lossy codecs)."""
    a = rgb.astype(np.float32)
    if rgb.dtype == np.uint8:
        a /= 255.0
    stripe = a.shape[1] // BITS
    index = 0
    for bit in range(BITS):
        centre = a[a.shape[0] // 4: 3 * a.shape[0] // 4, bit * stripe + stripe // 4: (bit + 1) * stripe - stripe // 4]
        if centre.mean() > 0.5:
            index |= 1 << bit
    return index


CODECS = {
    # name: (encoder, pix_fmt, options, container extension)
    "h264": ("libx264", "yuv420p", {"g": "12", "bf": "2", "crf": "18", "preset": "ultrafast"}, ".mp4"),
    "hevc": ("libx265", "yuv420p", {"crf": "20", "preset": "ultrafast", "x265-params": "keyint=12:min-keyint=12:bframes=2:log-level=error"}, ".mp4"),
    "prores": ("prores_ks", "yuv422p10le", {"profile": "2"}, ".mov"),
    "dnxhr": ("dnxhd", "yuv422p", {"profile": "dnxhr_sq"}, ".mov"),
    "mpeg4": ("mpeg4", "yuv420p", {"g": "12", "bf": "2", "qscale": "2"}, ".mp4"),
}


def has_encoder(name: str) -> bool:
    import av

    try:
        av.codec.Codec(name, "w")
        return True
    except Exception:
        return False


def write_clip(path: Path, codec: str, frames: int = 40, fps: int = 24, width: int = W, height: int = H) -> Path:
    import av

    encoder, pix_fmt, options, _ = CODECS[codec]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(encoder, rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.options = dict(options)
        if "g" in options:
            stream.codec_context.gop_size = int(options["g"])
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(coded_frame(i, width, height), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def write_image(path: Path, pixels: np.ndarray, pixel_type: str | None = None, channels=None) -> Path:
    import OpenImageIO as oiio

    a = pixels if pixels.ndim == 3 else pixels[:, :, None]
    spec = oiio.ImageSpec(a.shape[1], a.shape[0], a.shape[2], pixel_type or str(a.dtype))
    if channels:
        spec.channelnames = tuple(channels)
    out = oiio.ImageOutput.create(str(path))
    assert out is not None, oiio.geterror()
    assert out.open(str(path), spec), out.geterror()
    assert out.write_image(a), out.geterror()
    out.close()
    return path


def read_image(path: Path):
    """(pixels float32 (H, W, C), channel names, spec) read back with OpenImageIO."""
    import OpenImageIO as oiio

    inp = oiio.ImageInput.open(str(path))
    assert inp is not None, oiio.geterror()
    spec = inp.spec()
    data = inp.read_image(0, 0, 0, spec.nchannels, "float")
    inp.close()
    return np.asarray(data).reshape(spec.height, spec.width, spec.nchannels), list(spec.channelnames), spec


def write_coded_sequence(directory: Path, pattern: str, numbers, ext_type: str = "uint8") -> None:
    """Frames ``numbers`` of a sequence (``pattern`` in printf form) with coded pixels."""
    for n in numbers:
        img = coded_frame(n % 256)
        if ext_type == "half" or ext_type == "float":
            write_image(directory / (pattern % n), (img / 255.0).astype(np.float32), ext_type)
        elif ext_type == "uint16":
            write_image(directory / (pattern % n), img.astype(np.uint16) * 257, "uint16")
        else:
            write_image(directory / (pattern % n), img, "uint8")
