"""``python -m samroto.plugins.nuke.roto_export OUT.nk --object NAME=PATTERN ...``

Runs in samroto's Python (numpy, OpenImageIO, OpenCV) for the Nuke plugin's Convert to
Roto: reads each object's matte EXR sequence, fits one animated Bezier shape per object
(``samroto.core.splines.shot_shape_tracks``: one shape per contour), and writes one Roto node as .nk text
(``samroto.core.splines.nuke.write_roto_nk``) that the plugin pastes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def read_matte(path: Path):
    import numpy as np
    import OpenImageIO as oiio

    buf = oiio.ImageBuf(str(path))
    if buf.has_error:
        raise SystemExit(f"roto_export: cannot read {path}: {buf.geterror()}")
    names = list(buf.spec().channelnames)
    px = buf.get_pixels(oiio.FLOAT)
    index = names.index("A") if "A" in names else len(names) - 1
    return np.ascontiguousarray(px[..., index])


def object_mattes(pattern: str) -> dict:
    from samroto.core.io import parse_pattern

    seq = parse_pattern(pattern)
    if seq is None:
        raise SystemExit(f"roto_export: {pattern!r} is not a sequence pattern (use %04d or ####)")
    return {f: read_matte(seq.path(f)) for f in seq.scan()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help=".nk file to write")
    parser.add_argument("--object", action="append", default=[], metavar="NAME=PATTERN", required=True)
    parser.add_argument("--node-name", default="SamRoto")
    parser.add_argument("--tolerance", type=float, default=None,
                        help="largest distance in pixels from the matte edge (default: settings)")
    args = parser.parse_args(argv)

    from samroto.core.splines import shot_shape_tracks
    from samroto.core.splines.nuke import write_roto_nk

    tolerance = args.tolerance
    if tolerance is None:
        from samroto.core.settings import load_settings

        tolerance = load_settings()["finish.spline_tolerance"]
    shapes = []
    for item in args.object:
        name, sep, pattern = item.partition("=")
        if not sep:
            parser.error(f"--object wants NAME=PATTERN, got {item!r}")
        mattes = object_mattes(pattern)
        if mattes:  # one animated shape per piece of the object
            shapes.extend(shot_shape_tracks(mattes, tolerance=tolerance, name=name))
    if not shapes:
        print("roto_export: every matte is empty; there is nothing to convert", file=sys.stderr)
        return 1
    write_roto_nk(args.out, shapes, node_name=args.node_name)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
