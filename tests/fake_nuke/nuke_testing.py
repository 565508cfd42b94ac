"""Helpers for samroto's Nuke tests: load the fake ``nuke`` and the plugin, make plates."""

import importlib
import sys
from pathlib import Path

import numpy as np

FAKE = Path(__file__).resolve().parent
REPO = FAKE.parents[1]
PLUGIN_SRC = REPO / "plugins" / "nuke"


def load(monkeypatch, plugin_dir=PLUGIN_SRC):
    """The fake nuke (reset to an empty script) and samroto_nuke imported from ``plugin_dir``."""
    monkeypatch.syspath_prepend(str(FAKE))
    monkeypatch.syspath_prepend(str(plugin_dir))
    for name in [m for m in sys.modules if m == "samroto_nuke" or m.startswith("samroto_nuke.")]:
        del sys.modules[name]
    import nuke

    nuke._reset()
    return nuke, importlib.import_module("samroto_nuke")


def disk(w, h, cx, cy, r):
    yy, xx = np.mgrid[0:h, 0:w]
    return ((xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= r * r).astype(np.float32)


def write_exr(path, pixels):
    import OpenImageIO as oiio

    pixels = np.ascontiguousarray(pixels, np.float32)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    c = pixels.shape[2]
    spec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], c, oiio.HALF)
    spec.channelnames = ("R", "G", "B")[:c] if c == 3 else ("A",)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec), oiio.geterror()
    out.write_image(pixels)
    out.close()


def read_exr(path):
    import OpenImageIO as oiio

    buf = oiio.ImageBuf(str(path))
    assert not buf.has_error, buf.geterror()
    return buf.get_pixels(oiio.FLOAT), list(buf.spec().channelnames)


def make_plate(folder, frames=range(1001, 1005), w=64, h=48):
    """A linear EXR plate: a bright disk moving right on a dark ground; returns the pattern."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        m = disk(w, h, 20 + 3 * i, 22, 10)
        rgb = np.stack([0.05 + 0.8 * m, 0.05 + 0.6 * m, 0.04 + 0.2 * m], -1)
        write_exr(folder / ("plate.%04d.exr" % f), rgb)
    return str(folder / "plate.%04d.exr")


def make_movie(folder, frames=12, w=64, h=48):
    """samroto's sample shot (an orange disc moving right, a blue square moving left) as an
    H.264 movie of ``frames`` frames; returns its path."""
    from samroto.core import sample

    return sample.write_sample(folder, frames, w, h, kind="mp4")


def movie_frame(path, index):
    """Frame ``index`` (0 = the first) of a movie, decoded, as float RGB (H, W, 3)."""
    import av

    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="rgb24").astype(np.float32) / 255.0
    raise IndexError(index)


def movie_read(nuke, path, frames, first, last, **knobs):
    """A Read of a movie as Nuke makes it: the movie's frames are 1..frames (``origfirst``
    1), trimmed to ``first``..``last``."""
    return nuke.nodes.Read(file=str(path), origfirst=1, origlast=frames, first=first, last=last, **knobs)
