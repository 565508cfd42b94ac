"""``python -m samroto.core.splines.export --host nuke|blender|fusion OUT --object NAME=PATTERN ...``

The one spline exporter: reads each object's matte sequence (OpenImageIO: EXR, PNG,
TIFF...), fits animated Bezier shapes to it (:func:`samroto.core.splines.shot_shape_tracks`:
one shape per piece of the object, ``name``, ``name_2``...) and writes them in the host's
format:

- ``nuke``: one Roto node as .nk text (:func:`samroto.core.splines.nuke.write_roto_nk`),
  which the Nuke plugin's Convert to Roto pastes;
- ``blender``: mask JSON (:func:`samroto.core.splines.blender.write_mask_json`), from which
  the Blender add-on's Convert to Mask builds a Mask datablock;
- ``fusion``: a PolylineMask .setting (:func:`samroto.core.splines.fusion.write_polygon_setting`).

Plugins run it in samroto's Python (``hostkit.export_shapes``): their hosts' Pythons have
no OpenCV. An error is one line on stderr, written for the artist, and exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HOSTS = ("nuke", "blender", "fusion")


class ExportError(Exception):
    """The shapes cannot be made; the message says why."""


def read_matte(path) -> "np.ndarray":  # noqa: F821
    """A matte file as float32 (H, W): its alpha channel when it has one, else its first."""
    import numpy as np
    import OpenImageIO as oiio

    buf = oiio.ImageBuf(str(path))
    if buf.has_error or buf.spec().width <= 0:
        raise ExportError(f"cannot read the matte {path}: {buf.geterror() or 'not an image'}")
    spec = buf.spec()
    pixels = np.asarray(buf.get_pixels(oiio.FLOAT)).reshape(spec.height, spec.width, spec.nchannels)
    return np.ascontiguousarray(pixels[..., max(spec.alpha_channel, 0)])


def read_sequence(pattern: str) -> dict:
    """{frame: matte} for every frame of ``pattern`` (``%04d``, ``####`` or ``@@@@``) on disk."""
    from samroto.core.io import parse_pattern

    seq = parse_pattern(pattern)
    if seq is None:
        raise ExportError(f"{pattern!r} is not a matte sequence (its file name needs a frame token: %04d or ####)")
    return {f: read_matte(seq.path(f)) for f in seq.scan()}


def object_shapes(objects, tolerance: float) -> list:
    """Animated shapes for [(name, pattern)], largest piece of each object first."""
    from samroto.core.splines import shot_shape_tracks

    shapes = []
    for name, pattern in objects:
        mattes = read_sequence(pattern)
        if not mattes:
            raise ExportError(f"no matte files for {name}: nothing matches {pattern}")
        shapes.extend(shot_shape_tracks(mattes, tolerance=tolerance, name=name))
    if not shapes:
        raise ExportError("every matte is empty: there is nothing to convert")
    return shapes


def write(host: str, out, shapes: list, name: str | None = None, pixel_aspect: float = 1.0,
          frame_offset: int = 0) -> None:
    """Write ``shapes`` for ``host`` at ``out``; ``name``: the Roto node's (Nuke) or the mask's
    (Blender)."""
    if host == "nuke":
        from .nuke import write_roto_nk

        write_roto_nk(out, shapes, node_name=name or "SamRoto")
    elif host == "blender":
        from .blender import write_mask_json

        write_mask_json(out, shapes, pixel_aspect=pixel_aspect, mask_name=name or "samroto")
    elif host == "fusion":
        from .fusion import write_polygon_setting

        write_polygon_setting(out, shapes, pixel_aspect=pixel_aspect, frame_offset=frame_offset)
    else:
        raise ExportError(f"unknown host {host!r}: use one of {', '.join(HOSTS)}")


def parse_objects(items) -> list[tuple[str, str]]:
    objects = []
    for item in items:
        name, sep, pattern = item.partition("=")
        if not sep or not name or not pattern:
            raise ExportError(f"--object wants NAME=PATTERN, got {item!r}")
        objects.append((name, pattern))
    return objects


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m samroto.core.splines.export",
                                     description="Fit animated spline shapes to matte sequences and "
                                                 "write them for Nuke, Blender or Fusion.")
    parser.add_argument("--host", choices=HOSTS, required=True)
    parser.add_argument("out", type=Path, help="file to write (.nk, .json or .setting)")
    parser.add_argument("--object", action="append", default=[], metavar="NAME=PATTERN", required=True,
                        help="an object's name and its matte sequence; repeat for more")
    parser.add_argument("--name", help="the Roto node's name (nuke) or the mask's (blender)")
    parser.add_argument("--tolerance", type=float, default=None,
                        help="largest distance in pixels from the matte edge (default: the "
                             "finish.spline_tolerance setting)")
    parser.add_argument("--pixel-aspect", type=float, default=1.0, help="the plate's pixel aspect (blender, fusion)")
    parser.add_argument("--frame-offset", type=int, default=0, help="added to every key's frame (fusion)")
    args = parser.parse_args(argv)
    try:
        tolerance = args.tolerance
        if tolerance is None:
            from samroto.core.settings import load_settings

            tolerance = load_settings()["finish.spline_tolerance"]
        shapes = object_shapes(parse_objects(args.object), tolerance)
        write(args.host, args.out, shapes, name=args.name, pixel_aspect=args.pixel_aspect,
              frame_offset=args.frame_offset)
    except (ExportError, OSError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 1
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
