"""``samroto export nuke|fusion|blender MATTES... --out FILE``: editable splines from mattes on disk.

Fits animated Bezier shapes to matte sequences (``samroto.core.splines``) and writes them
with the one spline exporter, ``samroto.core.splines.export`` (a Nuke Roto node as .nk, a
Fusion PolylineMask .setting, the Blender add-on's mask JSON). MATTES is a sequence pattern
(``mattes/shot.%04d.exr``): a multi-layer EXR gives one object per ``<name>.A`` layer, a
``{name}`` pattern one object per name found on disk, any other one object; ``NAME=PATTERN``
names an object's sequence explicitly. The plate's pixel aspect is read from the mattes
(samroto's mattes carry it) unless given.
"""

from __future__ import annotations

import re

from samroto.cli.errors import CommandError, CommandFailed

HOSTS = ("nuke", "fusion", "blender")


def register(sub):
    p = sub.add_parser("export", help="editable spline shapes (Nuke Roto, Fusion polygon, Blender mask) from mattes",
                       description="Fit animated spline shapes to matte sequences on disk and write them for a host: "
                                   "nuke (.nk with a Roto node), fusion (.setting with PolylineMask tools) or "
                                   "blender (mask JSON the samroto add-on turns into a Mask datablock).")
    p.add_argument("host", choices=HOSTS)
    p.add_argument("mattes", nargs="+", metavar="MATTES",
                   help="matte sequence pattern (mattes/shot.%%04d.exr: one object per EXR layer; "
                        "mattes/{name}.%%04d.png: one per name on disk), or NAME=PATTERN; repeat for more")
    p.add_argument("--out", required=True, metavar="FILE", help="file to write (.nk, .setting or .json)")
    p.add_argument("--name", help="the Roto node's name (nuke) or the mask's (blender)")
    p.add_argument("--tolerance", type=float, metavar="PX",
                   help="largest distance in pixels from the matte edge (default: finish.spline_tolerance)")
    p.add_argument("--pixel-aspect", type=float, metavar="R",
                   help="the plate's pixel aspect (default: the mattes' own, else 1)")
    p.add_argument("--frame-offset", type=int, default=0, metavar="N", help="added to every key's frame (fusion)")
    p.add_argument("--frames", metavar="A-B", help="only these frames (default: every frame on disk)")
    p.set_defaults(run=run)


def run(args, settings):
    from samroto.core.splines import export as exporter

    tolerance = settings["finish.spline_tolerance"] if args.tolerance is None else args.tolerance
    if tolerance <= 0:
        raise CommandError(f"--tolerance {tolerance}: give a distance in pixels above 0")
    frames = None
    if args.frames:
        from samroto.cli.track import parse_range

        lo, hi = parse_range(args.frames)
        frames = range(lo, hi + 1)
    objects = []
    for item in args.mattes:
        objects.extend(objects_of(item, frames))
    names = [n for n, _ in objects]
    if len(set(names)) != len(names):
        raise CommandError(f"two objects share a name in {names}: name them, NAME=PATTERN")
    pixel_aspect = args.pixel_aspect or _pixel_aspect(objects) or 1.0
    from samroto.core.splines import shot_shape_tracks

    shapes = []
    try:
        for name, mattes in objects:
            shapes.extend(shot_shape_tracks(mattes, tolerance=tolerance, name=name))
        if not shapes:
            raise CommandFailed("every matte is empty: there is nothing to convert")
        exporter.write(args.host, args.out, shapes, name=args.name, pixel_aspect=pixel_aspect,
                       frame_offset=args.frame_offset)
    except exporter.ExportError as exc:
        raise CommandFailed(str(exc)) from None
    except OSError as exc:
        raise CommandFailed(f"cannot write {args.out}: {exc.strerror or exc}") from None
    print(args.out)
    return 0


class _Mattes(dict):
    """{frame: matte} with the pixel aspect of the files it came from."""

    pixel_aspect: float | None = None


def objects_of(item: str, frames=None) -> list[tuple[str, _Mattes]]:
    """[(object name, {frame: matte})] for one MATTES argument."""
    from samroto.core.io import SamrotoIOError, parse_pattern

    name, sep, pattern = item.partition("=")
    if not sep or "%" in name or "#" in name or "/" in name:
        name, pattern = None, item
    if "{name}" in pattern:
        if name:
            raise CommandError(f"{item!r}: NAME=PATTERN takes a pattern without {{name}}")
        return [(n, _read(pattern.replace("{name}", n), frames, None)) for n in _names_on_disk(pattern)]
    try:
        seq = parse_pattern(pattern)
    except SamrotoIOError as exc:
        raise CommandError(f"{pattern!r}: {exc}") from None
    if seq is None:
        raise CommandError(f"{pattern!r} is not a matte sequence: its file name needs a frame token (%04d or ####)")
    found = [f for f in seq.scan() if frames is None or f in frames]
    if not found:
        raise CommandError(f"no matte files match {seq.text}" + (f" in frames {frames.start}-{frames.stop - 1}"
                                                                  if frames is not None else ""))
    layers = _layers(seq.path(found[0]))
    if name:
        return [(name, _read(pattern, frames, f"{name}.A" if f"{name}.A" in layers else None))]
    if layers:
        return [(layer[:-2], _read(pattern, frames, layer)) for layer in layers]
    stem = re.sub(r"[._-]+$", "", seq.prefix) or "matte"
    return [(stem, _read(pattern, frames, None))]


def _layers(path) -> list[str]:
    """The per-object layers (``<name>.A``) of a multi-layer matte EXR, in file order."""
    import OpenImageIO as oiio

    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        raise CommandFailed(f"cannot read the matte {path}: {oiio.geterror() or 'not an image'}")
    try:
        names = list(inp.spec().channelnames)
    finally:
        inp.close()
    return [c for c in names if c.endswith(".A") and c.count(".") == 1 and not c.startswith("Crypto")]


def _names_on_disk(pattern: str) -> list[str]:
    import os

    from samroto.core.io import parse_pattern

    seq = parse_pattern(pattern.replace("{name}", "\0"))
    if seq is None:
        raise CommandError(f"{pattern!r} is not a matte sequence: its file name needs a frame token")
    head, _, tail = seq.prefix.partition("\0")
    regex = re.compile(re.escape(head) + r"(.+?)" + re.escape(tail) + r"-?\d+" + re.escape(seq.suffix) + "$")
    try:
        names = sorted({m.group(1) for f in os.listdir(seq.directory) if (m := regex.match(f))})
    except OSError as exc:
        raise CommandError(f"cannot list {seq.directory}: {exc.strerror or exc}") from None
    if not names:
        raise CommandError(f"no matte files match {pattern}")
    return names


def _read(pattern: str, frames, channel: str | None) -> _Mattes:
    """{frame: float32 (H, W)}: the channel given, else the file's alpha, else its first channel."""
    import numpy as np
    import OpenImageIO as oiio

    from samroto.core.io import parse_pattern

    seq = parse_pattern(pattern)
    out = _Mattes()
    for f in seq.scan():
        if frames is not None and f not in frames:
            continue
        path = seq.path(f)
        buf = oiio.ImageBuf(str(path))
        spec = buf.spec()
        if buf.has_error or spec.width <= 0:
            raise CommandFailed(f"cannot read the matte {path}: {buf.geterror() or 'not an image'}")
        if out.pixel_aspect is None:
            out.pixel_aspect = float(spec.getattribute("PixelAspectRatio") or 1.0)
        # the display window: overscan is cut, the shapes are in the plate's frame
        roi = oiio.ROI(spec.full_x, spec.full_x + spec.full_width, spec.full_y, spec.full_y + spec.full_height)
        pixels = np.asarray(buf.get_pixels(oiio.FLOAT, roi)).reshape(spec.full_height, spec.full_width,
                                                                     spec.nchannels)
        names = list(spec.channelnames)
        index = names.index(channel) if channel in names else max(spec.alpha_channel, 0)
        out[f] = np.ascontiguousarray(pixels[..., index])
    return out


def _pixel_aspect(objects) -> float | None:
    for _, mattes in objects:
        if mattes.pixel_aspect:
            return mattes.pixel_aspect
    return None
