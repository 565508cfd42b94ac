"""Matte writers: EXR (half/float), 16-bit PNG/TIFF, and matte movies (ProRes 4444, FFV1).

Every file appears complete or not at all: it is written to a hidden temporary file in the
target directory, read back (size, header and pixels for images; every packet and the last
frame for movies: some writers, OpenImageIO's PNG writer among them, do not report a full
disk), flushed to disk, then renamed over the target (``os.replace`` is atomic on one
filesystem). A crash, a full disk or an encoder error leaves no truncated frame behind.

Mattes match their plate (``plate=``, a :class:`~samroto.core.io.plate.PlateFormat`):
EXRs keep its display and data window (overscan) and pixel aspect; movies its frame rate,
start timecode, pixel aspect and colour tags. A matte is data: PNGs carry no sRGB/gAMA/cHRM
chunks, so colour-managed readers leave the values alone.

EXR channel naming (layout ``channels``, one file per frame): ``A`` holds the union (max) of
all objects, and each object has its own layer ``<name>.A``. Nuke reads ``A`` as
``rgba.alpha`` and each ``<name>.A`` as ``<name>.alpha``; Blender shows each layer as a pass;
Fusion's Loader lists them all. Layout ``files`` writes one single-channel file (``A``) per
object.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import uuid
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

from .errors import MatteWriteError, SamrotoIOError
from .patterns import format_frame_path, has_frame_token, insert_name
from .plate import PlateFormat, rate_of

log = logging.getLogger("samroto.io")
OVERSCAN_MODES = ("keep", "crop")

IMAGE_FORMATS = {"exr": ".exr", "png": ".png", "tiff": ".tif"}
MOVIE_FORMATS = {"mov": ".mov", "ffv1": ".mkv"}
FORMAT_BY_EXTENSION = {
    ".exr": "exr", ".png": "png", ".tif": "tiff", ".tiff": "tiff", ".mov": "mov", ".mkv": "ffv1",
}
EXR_COMPRESSIONS = {"zip", "zips", "piz", "dwaa", "dwab", "rle", "none"}
TIFF_COMPRESSIONS = {"zip", "lzw", "none"}


def safe_name(name: object) -> str:
    """An object name usable as an EXR layer and in a file name: ``[A-Za-z0-9_-]``, not
    starting with a digit (``1`` -> ``obj_1``) because layer names must start with a letter."""
    text = re.sub(r"[^A-Za-z0-9_-]+", "_", str(name)).strip("_") or "obj"
    return f"obj_{text}" if not text[0].isalpha() else text


class MatteWriter:
    """Writes per-frame mattes (``dict[name, float32 (H, W) in [0, 1]]``).

    ``pattern``: output path with a frame token (``%04d``, ``####``, ``@@@@``) for image
    formats, and ``{name}`` where one file per object goes (else ``_<name>`` is inserted
    before the frame number). Movies need no frame token. ``format``: exr, png, tiff, mov
    (ProRes 4444) or ffv1 (FFV1 in MKV); None picks it from the extension. ``layout``:
    ``channels`` (EXR only: one file per frame, a layer per object) or ``files`` (one file
    per object). ``compression``: EXR zip/piz/dwaa/none; TIFF zip/lzw/none. ``bit_depth``:
    EXR 16 (half) or 32 (float); PNG/TIFF 8 or 16. ``names``: the objects this writer
    writes, in order; when given, an object missing from a frame is written empty so every
    frame has the same channels, and an unknown object is an error.

    ``plate``: the plate's :class:`PlateFormat` (``FrameSource.plate``): windows, pixel
    aspect, frame rate, timecode and colour tags the mattes take on (``fps`` overrides its
    rate). ``overscan``: ``keep`` (EXR data window as the plate's; the matte's edge pixels
    continue into the overscan, which the model does not see) or ``crop`` (the display
    window only). ``metadata``: extra string attributes (EXR header, movie tags), e.g.
    ``samroto/model``. ``cryptomatte``: EXR ``channels`` layout also holds Cryptomatte layers.
    """

    def __init__(self, pattern: str | os.PathLike, format: str | None = None,
                 layout: str | None = None, compression: str = "zip", bit_depth: int = 16,
                 fps: float | None = None, names: Sequence[object] | None = None,
                 make_dirs: bool = False, *, plate: PlateFormat | None = None,
                 overscan: str = "keep", metadata: Mapping[str, object] | None = None,
                 cryptomatte: bool = False):
        self.pattern = os.fspath(pattern)
        ext = Path(self.pattern.replace("{name}", "x")).suffix.lower()
        self.format = _choose_format(format, ext, self.pattern)
        self.is_movie = self.format in MOVIE_FORMATS
        self.layout = layout or ("channels" if self.format == "exr" else "files")
        if self.layout not in ("channels", "files"):
            raise MatteWriteError(f"layout must be 'channels' or 'files', not {self.layout!r}")
        if self.layout == "channels" and self.format != "exr":
            raise MatteWriteError(
                f"layout 'channels' needs EXR; {self.format} holds one matte per file: use layout 'files'"
            )
        self.cryptomatte = bool(cryptomatte)
        if self.cryptomatte and (self.format != "exr" or self.layout != "channels"):
            raise MatteWriteError(
                f"Cryptomatte layers go in multi-layer EXRs (one file per frame): write .exr mattes "
                f"(not {self.format}, layout {self.layout}) or turn finish.cryptomatte off"
            )
        if overscan not in OVERSCAN_MODES:
            raise MatteWriteError(f"overscan must be one of {', '.join(OVERSCAN_MODES)}, not {overscan!r}")
        self.plate = plate.cropped() if plate is not None and overscan == "crop" else plate
        self.overscan = overscan
        self.compression = _check_compression(self.format, compression)
        self.bit_depth = _check_bit_depth(self.format, bit_depth)
        self.fps = fps or (plate.fps if plate is not None else None)
        self.metadata = {str(k): str(v) for k, v in (metadata or {}).items()}
        self.names = [safe_name(n) for n in names] if names is not None else None
        if self.names is not None and len(set(self.names)) != len(self.names):
            raise MatteWriteError(f"object names {list(names)} collide once made file-safe: {self.names}")
        if "{name}" in os.path.dirname(self.pattern):
            raise MatteWriteError(f"{{name}} may only appear in the file name of {self.pattern!r}")
        try:
            if not self.is_movie and not has_frame_token(self.pattern):
                raise MatteWriteError(
                    f"pattern {self.pattern!r} has no frame number: add %04d, #### or @@@@ "
                    f"(e.g. mattes.%04d{IMAGE_FORMATS[self.format]})"
                )
            format_frame_path(self.pattern, 0, "x")  # validates the token syntax
        except SamrotoIOError as exc:
            if isinstance(exc, MatteWriteError):
                raise
            raise MatteWriteError(str(exc)) from exc
        self.directory = Path(os.path.dirname(self.pattern) or ".")
        _check_writable_dir(self.directory, make_dirs)
        self._size: tuple[int, int] | None = None
        self._movies: dict[str, _MovieWriter] = {}
        self._closed = False

    # -- paths ----------------------------------------------------------------------
    def path_for(self, frame_number: int, name: str | None = None) -> Path:
        """Where a frame (and object, for layout ``files``) goes."""
        pattern = self.pattern
        if self.layout == "files":
            if name is None:
                raise MatteWriteError("layout 'files' writes one file per object: give the object name")
            if "{name}" not in pattern:
                pattern = insert_name(pattern, "{name}")
            return format_frame_path(pattern, frame_number, safe_name(name))
        return format_frame_path(pattern.replace("{name}", "all"), frame_number)

    def movie_path(self, name: str) -> Path:
        """Where an object's matte movie goes."""
        pattern = self.pattern if "{name}" in self.pattern else insert_name(self.pattern, "{name}")
        return Path(pattern.replace("{name}", safe_name(name)))

    def frame_paths(self, frame_number: int) -> list[Path]:
        """Every file one frame writes (needs ``names`` for layout ``files``)."""
        if self.is_movie:
            raise MatteWriteError("a matte movie has no per-frame files")
        if self.layout == "channels":
            return [self.path_for(frame_number)]
        if self.names is None:
            raise MatteWriteError("frame_paths needs the writer's object names (names=[...])")
        return [self.path_for(frame_number, n) for n in self.names]

    def has_frame(self, frame_number: int) -> bool:
        """Whether every file of a frame is on disk and its header reads, with this writer's
        channels and (EXR) the same ``samroto/prompts_sha256`` (what ``--skip-existing`` keeps)."""
        try:
            paths = self.frame_paths(frame_number)
        except MatteWriteError:
            return False
        digest = self.metadata.get("samroto/prompts_sha256") if self.format == "exr" else None
        return all(p.is_file() and _readable_image(p, self._expected_channels(), digest) for p in paths)

    def _expected_channels(self) -> set[str] | None:
        if self.layout == "files":
            return {"A"}
        if self.names is None:
            return None
        return {"A", *(f"{n}.A" for n in self.names)}

    # -- writing --------------------------------------------------------------------
    def write(self, frame_number: int, mattes: Mapping[object, np.ndarray]) -> list[Path]:
        """Write one frame's mattes; returns the paths written (for movies: the movie paths)."""
        if self._closed:
            raise MatteWriteError("this MatteWriter is closed")
        arrays = self._prepare(frame_number, mattes)
        if self.is_movie:
            return [self._movie(name).write(frame_number, a) for name, a in arrays.items()]
        attrs = self._frame_attributes(frame_number)
        if self.layout == "channels":
            path = self.path_for(frame_number)
            union = np.maximum.reduce(list(arrays.values()))
            channels = {"A": union, **{f"{n}.A": a for n, a in arrays.items()}}
            formats = None
            if self.cryptomatte:
                from .cryptomatte import cryptomatte_channels

                crypto, crypto_attrs = cryptomatte_channels(arrays, named=False)
                formats = {n: "float" for n in crypto}
                channels.update(crypto)
                attrs.update(crypto_attrs)
            _write_image_atomic(path, channels, self.format, self.compression, self.bit_depth, self.fps,
                                self.plate, attrs, formats)
            return [path]
        paths = []
        for name, a in arrays.items():
            path = self.path_for(frame_number, name)
            _write_image_atomic(path, {"A": a}, self.format, self.compression, self.bit_depth, self.fps,
                                self.plate, attrs)
            paths.append(path)
        return paths

    def _frame_attributes(self, frame_number: int) -> dict[str, object]:
        attrs: dict[str, object] = dict(self.metadata)
        if self.plate is not None and self.format == "exr":
            timecode = self.plate.timecode_of(frame_number)
            if timecode:
                attrs["smpte:TimeCode"] = timecode
        return attrs

    def _prepare(self, frame_number: int, mattes: Mapping[object, np.ndarray]) -> dict[str, np.ndarray]:
        if isinstance(frame_number, bool) or not isinstance(frame_number, (int, np.integer)):
            raise MatteWriteError(f"frame number must be an int, not {frame_number!r}")
        if not mattes:
            raise MatteWriteError(f"frame {frame_number}: no mattes to write")
        arrays: dict[str, np.ndarray] = {}
        for raw_name, matte in mattes.items():
            name = safe_name(raw_name)
            if name in arrays:
                raise MatteWriteError(f"frame {frame_number}: two objects are both named {name!r}")
            if self.names is not None and name not in self.names:
                raise MatteWriteError(
                    f"frame {frame_number}: object {raw_name!r} is not one of this writer's names {self.names}"
                )
            a = np.asarray(matte)
            if a.ndim == 3 and a.shape[2] == 1:
                a = a[:, :, 0]
            if a.ndim != 2:
                raise MatteWriteError(
                    f"frame {frame_number}: matte {raw_name!r} has shape {a.shape}; expected (H, W)"
                )
            if self._size is None:
                self._size = a.shape
                plate = self.plate
                if plate is not None and (plate.height, plate.width) != a.shape:
                    raise MatteWriteError(
                        f"frame {frame_number}: matte {raw_name!r} is {a.shape[1]}x{a.shape[0]}, the plate's "
                        f"display window is {plate.width}x{plate.height}"
                    )
            if a.shape != self._size:
                raise MatteWriteError(
                    f"frame {frame_number}: matte {raw_name!r} is {a.shape[1]}x{a.shape[0]}, earlier "
                    f"mattes were {self._size[1]}x{self._size[0]}"
                )
            a = np.nan_to_num(a.astype(np.float32, copy=False), nan=0.0, posinf=1.0, neginf=0.0)
            arrays[name] = np.clip(a, 0.0, 1.0)
        if self.names is not None:
            empty = np.zeros(self._size, np.float32)
            arrays = {n: arrays.get(n, empty) for n in self.names}
        return arrays

    def _movie(self, name: str) -> "_MovieWriter":
        if name not in self._movies:
            self._movies[name] = _MovieWriter(self.movie_path(name), self.format, self.fps, self.bit_depth,
                                              self.plate, self.metadata)
        return self._movies[name]

    # -- lifetime -------------------------------------------------------------------
    def close(self) -> None:
        """Finish movies (checked, then renamed into place only now). Image files are
        complete at write(). A movie that fails is dropped, and so are the others."""
        if self._closed:
            return
        self._closed = True
        errors = []
        for movie in self._movies.values():
            if errors:
                movie.discard()
                continue
            try:
                movie.finish()
            except MatteWriteError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def abort(self) -> None:
        """Drop unfinished movies (their temporary files) without publishing them."""
        self._closed = True
        for movie in self._movies.values():
            movie.discard()

    def __enter__(self) -> "MatteWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


# --- checks ----------------------------------------------------------------------------

def _choose_format(format: str | None, ext: str, pattern: str) -> str:
    aliases = {"tif": "tiff", "prores": "mov", "mkv": "ffv1", "exr": "exr"}
    from_ext = FORMAT_BY_EXTENSION.get(ext)
    if format is None:
        if from_ext is None:
            raise MatteWriteError(
                f"cannot tell the matte format from {pattern!r}: end it in .exr, .png, .tif, .mov "
                f"or .mkv, or name the format"
            )
        return from_ext
    fmt = aliases.get(format.lower(), format.lower())
    if fmt not in IMAGE_FORMATS and fmt not in MOVIE_FORMATS:
        raise MatteWriteError(f"unknown matte format {format!r}: use exr, png, tiff, mov or ffv1")
    if from_ext is not None and from_ext != fmt and not (fmt == "ffv1" and ext == ".mov"):
        raise MatteWriteError(
            f"format {fmt!r} does not match the extension of {pattern!r}: use "
            f"{(IMAGE_FORMATS | MOVIE_FORMATS)[fmt]}, or give no format to take it from the extension"
        )
    if from_ext is None:
        raise MatteWriteError(
            f"{pattern!r} has no matte file extension: end it in {(IMAGE_FORMATS | MOVIE_FORMATS)[fmt]}"
        )
    return fmt


def _check_compression(fmt: str, compression: str | None) -> str:
    c = (compression or "none").lower()
    if fmt == "exr" and c not in EXR_COMPRESSIONS:
        raise MatteWriteError(f"EXR compression {compression!r} unknown: use zip, piz, dwaa or none")
    if fmt == "tiff" and c not in TIFF_COMPRESSIONS:
        c = "zip"  # EXR-only names (piz, dwaa) fall back to lossless deflate for TIFF
    return c


def _check_bit_depth(fmt: str, bit_depth: int) -> int:
    allowed = {"exr": (16, 32), "png": (8, 16), "tiff": (8, 16), "mov": (10, 16), "ffv1": (8, 16)}[fmt]
    if fmt in MOVIE_FORMATS:
        return bit_depth if bit_depth in allowed else allowed[-1]
    if bit_depth not in allowed:
        raise MatteWriteError(f"{fmt} mattes are {' or '.join(map(str, allowed))} bit, not {bit_depth}")
    return bit_depth


def _check_writable_dir(directory: Path, make_dirs: bool) -> None:
    if make_dirs and not directory.exists():
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MatteWriteError(f"cannot create the output directory {directory}: {exc.strerror or exc}") from exc
    if not directory.is_dir():
        what = "is a file, not a directory" if directory.exists() else "does not exist"
        for parent in directory.parents:  # a regular file somewhere up the path
            if parent.is_file():
                what = f"cannot exist: {parent} is a file"
                break
        raise MatteWriteError(
            f"output directory {directory} {what}: create it or choose another output path"
        )
    try:  # a real probe: os.access lies for root and on network or read-only mounts
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".samroto-probe-"):
            pass
    except OSError as exc:
        raise MatteWriteError(
            f"output directory {directory} is not writable ({exc.strerror or exc}): fix its "
            f"permissions or choose another output path"
        ) from exc


# --- atomic files ------------------------------------------------------------------------

def _temp_path(target: Path) -> Path:
    return target.with_name(f".{target.stem}.{uuid.uuid4().hex[:8]}.tmp{target.suffix}")


def _remove_quietly(path: Path) -> str | None:
    """Remove a temporary file; None, or why it could not be removed (never raises: the
    failure that brought us here is the error to report)."""
    try:
        path.unlink()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("could not remove the temporary file %s: %s", path, exc.strerror or exc)
        return f"the temporary file {path} could not be removed ({exc.strerror or exc})"
    return None


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target`` (same extension); renamed over it on success.

    On any failure the temporary file is removed (a failure to remove it is logged, never
    raised over the real error) and an OSError becomes a MatteWriteError naming the target."""
    target = Path(target)
    tmp = _temp_path(target)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:  # on disk before the rename, so a power cut can't publish zeros
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        left = _remove_quietly(tmp)
        if isinstance(exc, OSError):
            raise MatteWriteError(f"cannot write {target}: {exc.strerror or exc}. Nothing was written "
                                  f"(check free disk space and permissions)"
                                  + (f"; {left}" if left else "")) from exc
        raise


def write_text_atomic(path, text: str) -> Path:
    """Write a text file (a .nk, a .setting, JSON) so that no reader ever sees half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
        if tmp.stat().st_size != len(data) or tmp.read_bytes() != data:
            raise MatteWriteError(f"cannot write {path}: the file read back differs from what was written "
                                  f"(check free disk space)")
    return path


def _write_image_atomic(path: Path, channels: dict[str, np.ndarray], fmt: str, compression: str,
                        bit_depth: int, fps: float | None, plate: PlateFormat | None = None,
                        attrs: Mapping[str, object] | None = None,
                        formats: Mapping[str, str] | None = None) -> None:
    """One image file, verified by reading it back before it is published. ``channels`` are
    the display window; with a ``plate`` whose data window differs (EXR), the file's data
    window is the plate's. ``formats``: per-channel pixel type overriding the file's
    (``"float"`` for Cryptomatte IDs in a half-float EXR)."""
    import OpenImageIO as oiio

    names = list(channels)
    data = np.stack([channels[n] for n in names], axis=-1)
    full_h, full_w, n = data.shape
    origin, window = (0, 0), (0, 0, full_w, full_h)
    if fmt == "exr" and plate is not None:
        origin = plate.display_origin
        window = plate.window
        data = _to_data_window(data, origin, window)
    x, y, w, h = window
    if fmt == "exr":
        pixel_type = "half" if bit_depth == 16 else "float"
        if formats:
            data = data.astype(np.float32)
    else:
        pixel_type = "uint16" if bit_depth == 16 else "uint8"
        scale = 65535.0 if bit_depth == 16 else 255.0
        data = (data * scale + 0.5).astype(np.uint16 if bit_depth == 16 else np.uint8)
    spec = oiio.ImageSpec(w, h, n, pixel_type)
    spec.x, spec.y = x, y
    spec.full_x, spec.full_y = origin
    spec.full_width, spec.full_height = full_w, full_h
    spec.channelnames = tuple(names)
    if formats:
        spec.channelformats = tuple(oiio.TypeDesc(formats.get(c, pixel_type)) for c in names)
    spec.alpha_channel = -1  # a matte is data, not associated alpha: never premultiply
    spec.attribute("oiio:ColorSpace", "Raw")  # data: no sRGB/gAMA/cHRM chunks in PNGs
    if plate is not None and plate.pixel_aspect != 1.0:
        spec.attribute("PixelAspectRatio", float(plate.pixel_aspect))
    if fmt == "exr":
        spec.attribute("compression", compression)
        if fps:
            spec.attribute("FramesPerSecond", oiio.TypeDesc("rational"), _rational(fps))
    elif fmt == "tiff":
        spec.attribute("compression", compression)
    spec.attribute("Software", _software())
    for key, value in (attrs or {}).items():
        if key == "smpte:TimeCode":
            from .frames import pack_timecode

            spec.attribute(key, oiio.TypeDesc("timecode"), (pack_timecode(str(value)), 0))
        elif fmt == "exr" or key.startswith("cryptomatte/"):
            spec.attribute(key, str(value))
    with atomic_path(path) as tmp:
        out = oiio.ImageOutput.create(str(tmp))
        if out is None:
            raise MatteWriteError(f"cannot write {path}: {oiio.geterror()}")
        try:
            if not out.open(str(tmp), spec):
                raise MatteWriteError(f"cannot write {path}: {out.geterror()} (check disk space and permissions)")
            ok = out.write_image(data)
            ok = out.close() and ok
            if not ok:
                raise MatteWriteError(f"cannot write {path}: {out.geterror()} (check free disk space)")
        except BaseException:
            out.close()
            raise
        _verify_image(tmp, path, spec)


def _to_data_window(data: np.ndarray, origin: tuple[int, int], window: tuple[int, int, int, int]) -> np.ndarray:
    """(H, W, C) display-window pixels -> the data window's: cropped, or extended by repeating
    the display window's edge pixels into the overscan."""
    full_h, full_w = data.shape[:2]
    x, y, w, h = window
    x0, y0 = x - origin[0], y - origin[1]
    if (x0, y0, w, h) == (0, 0, full_w, full_h):
        return data
    cols = np.clip(np.arange(x0, x0 + w), 0, full_w - 1)
    rows = np.clip(np.arange(y0, y0 + h), 0, full_h - 1)
    return np.ascontiguousarray(data[rows][:, cols])


def _verify_image(tmp: Path, target: Path, spec) -> None:
    """Read a just-written image back (size, header, every pixel) before it is published:
    OpenImageIO's PNG writer, for one, reports success on a full disk and leaves an empty or
    truncated file."""
    import OpenImageIO as oiio

    def fail(why: str):
        raise MatteWriteError(f"cannot write {target}: {why}. Nothing was written (check free disk space)")

    try:
        size = tmp.stat().st_size
    except OSError as exc:
        fail(f"the file vanished while being written ({exc.strerror or exc})")
    if size == 0:
        fail("the file came out empty")
    inp = oiio.ImageInput.open(str(tmp))
    if inp is None:
        fail(f"it does not read back ({oiio.geterror() or 'unreadable'}; {size} bytes on disk)")
    try:
        got = inp.spec()
        if (got.width, got.height, got.nchannels, got.x, got.y) != (spec.width, spec.height, spec.nchannels,
                                                                   spec.x, spec.y):
            fail(f"it reads back as {got.width}x{got.height}x{got.nchannels} at {got.x},{got.y}, not "
                 f"{spec.width}x{spec.height}x{spec.nchannels} at {spec.x},{spec.y}")
        pixels = inp.read_image(0, 0, 0, got.nchannels, "float")
        if pixels is None or inp.has_error:
            fail(f"its pixels do not read back ({inp.geterror() or 'truncated'}; {size} bytes on disk)")
    finally:
        inp.close()


def _readable_image(path: Path, channels: set[str] | None, digest: str | None = None) -> bool:
    """A complete matte file: its header reads, it has the expected channels, and (EXR) it
    was made from the same prompts when both say which."""
    import OpenImageIO as oiio

    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        oiio.geterror()
        return False
    try:
        spec = inp.spec()
        made_from = spec.getattribute("samroto/prompts_sha256")
        if digest and made_from and made_from != digest:
            return False
        return channels is None or channels <= set(spec.channelnames)
    finally:
        inp.close()


def _software() -> str:
    import samroto

    return f"samroto {samroto.__version__}"


def _rational(fps: float) -> tuple[int, int]:
    f = rate_of(fps)
    return (f.numerator, f.denominator)


# --- movies ------------------------------------------------------------------------------

class _MovieWriter:
    """One matte movie, encoded to a hidden temporary file; ``finish`` checks it (every frame
    there, the last one decodes) and renames it into place, ``discard`` removes it."""

    def __init__(self, target: Path, fmt: str, fps: float | None, bit_depth: int,
                 plate: PlateFormat | None = None, metadata: Mapping[str, str] | None = None):
        import av

        self.target = target
        self.tmp = _temp_path(target)
        self.fmt = fmt
        self.bit_depth = bit_depth
        self.plate = plate
        self.metadata = dict(metadata or {})
        self.rate = rate_of(fps or 24)
        self.next_frame: int | None = None
        self.count = 0
        self.stream = None
        self.finished = False
        try:
            # mov: write our tags (samroto/...) too, not only the ones QuickTime defines
            options = {"movflags": "use_metadata_tags"} if fmt == "mov" else {}
            self.container = av.open(str(self.tmp), mode="w", options=options)
        except (av.FFmpegError, OSError) as exc:
            _remove_quietly(self.tmp)
            raise MatteWriteError(f"cannot create the matte movie {target}: {exc}") from exc

    def write(self, frame_number: int, matte: np.ndarray) -> Path:
        import av

        if self.next_frame is not None and frame_number != self.next_frame:
            self.discard()
            raise MatteWriteError(
                f"matte movies take consecutive frames in order: got {frame_number} after "
                f"{self.next_frame - 1}. Write an image sequence instead, or write frames in order."
            )
        try:
            if self.stream is None:
                self._open_stream(matte.shape, frame_number)
            for packet in self.stream.encode(self._frame(matte)):
                self.container.mux(packet)
        except (av.FFmpegError, OSError) as exc:
            self.discard()
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise MatteWriteError(f"cannot encode frame {frame_number} into {self.target}: {why}. Nothing was "
                                  f"written (check free disk space)") from exc
        self.next_frame = frame_number + 1
        self.count += 1
        return self.target

    def _open_stream(self, shape, first_frame: int) -> None:
        h, w = shape
        plate = self.plate
        timecode = plate.timecode_of(first_frame) if plate is not None else None
        for key, value in {**self.metadata, **({"timecode": timecode} if timecode else {})}.items():
            self.container.metadata[key] = value
        if self.fmt == "mov":
            self.stream = self.container.add_stream("prores_ks", rate=self.rate)
            self.stream.pix_fmt = "yuva444p10le"
            self.stream.options = {"profile": "4"}  # 4444: the matte in luma and in alpha
        else:
            self.stream = self.container.add_stream("ffv1", rate=self.rate)
            self.stream.pix_fmt = "gray16le" if self.bit_depth == 16 else "gray"
            self.stream.codec_context.gop_size = 1  # every frame a keyframe: seekable, each checkable alone
        self.stream.width, self.stream.height = w, h
        if timecode:
            self.stream.metadata["timecode"] = timecode
        cc = self.stream.codec_context
        if plate is not None and plate.pixel_aspect != 1.0:
            cc.sample_aspect_ratio = Fraction(plate.pixel_aspect).limit_denominator(10000)
        if self.fmt == "mov":
            # the plate's tags (BT.709 when it has none); the luma is video range, as ProRes is
            tags = {"color_primaries": 1, "color_trc": 1, "colorspace": 1}
            tags.update((plate.color_tags if plate is not None else {}) or {})
            for key, value in tags.items():
                setattr(cc, key, value)
            cc.color_range = 1

    def _frame(self, matte: np.ndarray):
        import av

        if self.fmt == "mov":
            # Full-range 10-bit code values in the limited-range (64..940) ProRes luma; chroma neutral.
            y = (64 + matte * 876.0 + 0.5).astype(np.uint16)
            a = (matte * 1023.0 + 0.5).astype(np.uint16)
            c = np.full_like(y, 512)
            frame = av.VideoFrame(matte.shape[1], matte.shape[0], "yuva444p10le")
            for plane, values in zip(frame.planes, (y, c, c, a)):
                _fill_plane(plane, values)
            frame.color_range = 1
            cc = self.stream.codec_context
            frame.color_primaries, frame.color_trc, frame.colorspace = cc.color_primaries, cc.color_trc, cc.colorspace
            return frame
        if self.bit_depth == 16:
            return av.VideoFrame.from_ndarray((matte * 65535.0 + 0.5).astype(np.uint16), format="gray16le")
        return av.VideoFrame.from_ndarray((matte * 255.0 + 0.5).astype(np.uint8), format="gray")

    def finish(self) -> None:
        import av

        try:
            if self.stream is not None:
                for packet in self.stream.encode(None):
                    self.container.mux(packet)
            self.container.close()
            self._verify()
            with open(self.tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(self.tmp, self.target)
            self.finished = True
        except (av.FFmpegError, OSError, MatteWriteError) as exc:
            left = self.discard()
            if isinstance(exc, MatteWriteError):
                raise
            raise MatteWriteError(f"cannot finish the matte movie {self.target}: {exc}. Nothing was "
                                  f"written (check free disk space)" + (f"; {left}" if left else "")) from exc

    def _verify(self) -> None:
        """Every frame written is in the file, and the last one decodes."""
        import av

        def fail(why):
            raise MatteWriteError(f"cannot finish the matte movie {self.target}: {why}. Nothing was written "
                                  f"(check free disk space)")

        if self.tmp.stat().st_size == 0:
            fail("the file came out empty")
        try:
            with av.open(str(self.tmp)) as check:
                stream = check.streams.video[0]
                count, last = 0, None
                for packet in check.demux(stream):
                    if packet.size:
                        count, last = count + 1, packet
                if count != self.count:
                    fail(f"it holds {count} of the {self.count} frames written")
                if last is not None:  # intra-only codecs: the last packet decodes on its own
                    decoded = list(last.decode()) + list(stream.codec_context.decode(None))
                    if not decoded:
                        fail("its last frame does not decode")
        except av.FFmpegError as exc:
            fail(f"it does not read back ({exc})")
        except IndexError:
            fail("it has no video stream")

    def discard(self) -> str | None:
        if self.finished:
            return None
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - already closed or broken: the temp file goes either way
            pass
        return _remove_quietly(self.tmp)


def _fill_plane(plane, values: np.ndarray) -> None:
    """Copy a (H, W) uint16 array into a frame plane that may have padded rows."""
    h, w = values.shape
    row = plane.line_size // 2
    buf = np.frombuffer(plane, dtype=np.uint16).reshape(-1, row)
    buf[:h, :w] = values
