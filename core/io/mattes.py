"""Matte writers: EXR (half/float), 16-bit PNG/TIFF, and matte movies (ProRes 4444, FFV1).

Every file appears complete or not at all: it is written to a hidden temporary file in the
target directory, flushed to disk, then renamed over the target (``os.replace`` is atomic on
one filesystem). A crash, a full disk or an encoder error leaves no truncated frame behind.

EXR channel naming (layout ``channels``, one file per frame): ``A`` holds the union (max) of
all objects, and each object has its own layer ``<name>.A``. Nuke reads ``A`` as
``rgba.alpha`` and each ``<name>.A`` as ``<name>.alpha``; Blender shows each layer as a pass;
Fusion's Loader lists them all. Layout ``files`` writes one single-channel file (``A``) per
object.
"""

from __future__ import annotations

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
    """

    def __init__(self, pattern: str | os.PathLike, format: str | None = None,
                 layout: str | None = None, compression: str = "zip", bit_depth: int = 16,
                 fps: float | None = None, names: Sequence[object] | None = None,
                 make_dirs: bool = False):
        self.pattern = os.fspath(pattern)
        ext = Path(self.pattern.replace("{name}", "x")).suffix.lower()
        self.format = _choose_format(format, ext, self.pattern)
        self.is_movie = self.format in MOVIE_FORMATS
        self.layout = layout or ("channels" if self.format == "exr" else "files")
        if self.layout not in ("channels", "files"):
            raise MatteWriteError(f"layout must be 'channels' or 'files', not {self.layout!r}")
        if self.layout == "channels" and self.format != "exr":
            raise MatteWriteError(
                f"layout 'channels' needs EXR; {self.format} holds one matte per file: use layout='files'"
            )
        self.compression = _check_compression(self.format, compression)
        self.bit_depth = _check_bit_depth(self.format, bit_depth)
        self.fps = fps
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

    # -- writing --------------------------------------------------------------------
    def write(self, frame_number: int, mattes: Mapping[object, np.ndarray]) -> list[Path]:
        """Write one frame's mattes; returns the paths written (for movies: the movie paths)."""
        if self._closed:
            raise MatteWriteError("this MatteWriter is closed")
        arrays = self._prepare(frame_number, mattes)
        if self.is_movie:
            return [self._movie(name).write(frame_number, a) for name, a in arrays.items()]
        if self.layout == "channels":
            path = self.path_for(frame_number)
            union = np.maximum.reduce(list(arrays.values()))
            channels = {"A": union, **{f"{n}.A": a for n, a in arrays.items()}}
            _write_image_atomic(path, channels, self.format, self.compression, self.bit_depth, self.fps)
            return [path]
        paths = []
        for name, a in arrays.items():
            path = self.path_for(frame_number, name)
            _write_image_atomic(path, {"A": a}, self.format, self.compression, self.bit_depth, self.fps)
            paths.append(path)
        return paths

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
            pattern = self.pattern if "{name}" in self.pattern else insert_name(self.pattern, "{name}")
            target = Path(pattern.replace("{name}", name))
            self._movies[name] = _MovieWriter(target, self.format, self.fps, self.bit_depth)
        return self._movies[name]

    # -- lifetime -------------------------------------------------------------------
    def close(self) -> None:
        """Finish movies (renamed into place only now). Image files are complete at write()."""
        if self._closed:
            return
        self._closed = True
        errors = []
        for movie in self._movies.values():
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
                f"or .mkv, or pass format="
            )
        return from_ext
    fmt = aliases.get(format.lower(), format.lower())
    if fmt not in IMAGE_FORMATS and fmt not in MOVIE_FORMATS:
        raise MatteWriteError(f"unknown matte format {format!r}: use exr, png, tiff, mov or ffv1")
    if from_ext is not None and from_ext != fmt and not (fmt == "ffv1" and ext == ".mov"):
        raise MatteWriteError(
            f"format {fmt!r} does not match the extension of {pattern!r}: use "
            f"{(IMAGE_FORMATS | MOVIE_FORMATS)[fmt]} or leave format=None"
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

@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target`` (same extension); renamed over it on success."""
    target = Path(target)
    tmp = target.with_name(f".{target.stem}.{uuid.uuid4().hex[:8]}.tmp{target.suffix}")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:  # on disk before the rename, so a power cut can't publish zeros
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            raise MatteWriteError(f"cannot write {target}: {exc.strerror or exc}. Nothing was written "
                                  f"(check free disk space and permissions)") from exc
        raise


def write_text_atomic(path, text: str) -> Path:
    """Write a text file (a .nk, a .setting, JSON) so that no reader ever sees half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="\n")
    return path


def _write_image_atomic(path: Path, channels: dict[str, np.ndarray], fmt: str, compression: str,
                        bit_depth: int, fps: float | None) -> None:
    import OpenImageIO as oiio

    names = list(channels)
    data = np.stack([channels[n] for n in names], axis=-1)
    h, w, n = data.shape
    if fmt == "exr":
        pixel_type = "half" if bit_depth == 16 else "float"
    else:
        pixel_type = "uint16" if bit_depth == 16 else "uint8"
        scale = 65535.0 if bit_depth == 16 else 255.0
        data = (data * scale + 0.5).astype(np.uint16 if bit_depth == 16 else np.uint8)
    spec = oiio.ImageSpec(w, h, n, pixel_type)
    spec.channelnames = tuple(names)
    spec.alpha_channel = -1  # a matte is data, not associated alpha: never premultiply
    if fmt == "exr":
        spec.attribute("compression", compression)
        if fps:
            spec.attribute("FramesPerSecond", oiio.TypeDesc("rational"), _rational(fps))
    elif fmt == "tiff":
        spec.attribute("compression", compression)
    spec.attribute("Software", "samroto")
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


def _rational(fps: float) -> tuple[int, int]:
    f = Fraction(fps).limit_denominator(1001)
    return (f.numerator, f.denominator)


# --- movies ------------------------------------------------------------------------------

class _MovieWriter:
    """One matte movie, encoded to a hidden temporary file and renamed into place by ``finish``."""

    def __init__(self, target: Path, fmt: str, fps: float | None, bit_depth: int):
        import av

        self.target = target
        self.tmp = target.with_name(f".{target.stem}.{uuid.uuid4().hex[:8]}.tmp{target.suffix}")
        self.fmt = fmt
        self.bit_depth = bit_depth
        self.rate = Fraction(fps or 24).limit_denominator(1001)
        self.next_frame: int | None = None
        self.stream = None
        try:
            self.container = av.open(str(self.tmp), mode="w")
        except (av.FFmpegError, OSError) as exc:
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
                self._open_stream(matte.shape)
            for packet in self.stream.encode(self._frame(matte)):
                self.container.mux(packet)
        except (av.FFmpegError, OSError) as exc:
            self.discard()
            raise MatteWriteError(f"cannot encode frame {frame_number} into {self.target}: {exc}") from exc
        self.next_frame = frame_number + 1
        return self.target

    def _open_stream(self, shape) -> None:
        h, w = shape
        if self.fmt == "mov":
            self.stream = self.container.add_stream("prores_ks", rate=self.rate)
            self.stream.pix_fmt = "yuva444p10le"
            self.stream.options = {"profile": "4"}  # 4444: the matte in luma and in alpha
        else:
            self.stream = self.container.add_stream("ffv1", rate=self.rate)
            self.stream.pix_fmt = "gray16le" if self.bit_depth == 16 else "gray"
        self.stream.width, self.stream.height = w, h

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
            with open(self.tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(self.tmp, self.target)
        except (av.FFmpegError, OSError) as exc:
            self.discard()
            raise MatteWriteError(f"cannot finish the matte movie {self.target}: {exc}") from exc

    def discard(self) -> None:
        try:
            self.container.close()
        except Exception:  # already closed or broken: the temp file goes either way
            pass
        try:
            self.tmp.unlink()
        except FileNotFoundError:
            pass


def _fill_plane(plane, values: np.ndarray) -> None:
    """Copy a (H, W) uint16 array into a frame plane that may have padded rows."""
    h, w = values.shape
    row = plane.line_size // 2
    buf = np.frombuffer(plane, dtype=np.uint16).reshape(-1, row)
    buf[:h, :w] = values
