"""Matte writers: every format read back, channel names, numbering, atomicity, bad output paths."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from samroto.core.io import MatteWriteError, MatteWriter, format_frame_path, open_frames, safe_name
from samroto.core.io import mattes as mattes_module
from test_io_support import read_image

H, W = 48, 64


def make_mattes(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    hero = rng.random((H, W), dtype=np.float32)
    car = np.zeros((H, W), np.float32)
    car[10:30, 5:40] = 1.0
    return {"hero": hero, "car": car}


def test_format_frame_path():
    assert format_frame_path("m.%04d.exr", 1001) == Path("m.1001.exr")
    assert format_frame_path("m.####.exr", 7) == Path("m.0007.exr")
    assert format_frame_path("out/{name}.@@@.png", 12, "hero") == Path("out/hero.012.png")
    assert format_frame_path("m.%d.exr", 12345) == Path("m.12345.exr")
    assert format_frame_path("m.##.exr", 12345) == Path("m.12345.exr")  # padding is a minimum
    assert format_frame_path("m.mov", 3) == Path("m.mov")
    with pytest.raises(Exception, match="name"):
        format_frame_path("{name}.%04d.exr", 1)


@pytest.mark.parametrize("compression", ["zip", "piz", "dwaa", "none"])
def test_exr_channels_layout(tmp_path, compression):
    mattes = make_mattes(1)
    with MatteWriter(tmp_path / "m.%04d.exr", compression=compression) as writer:
        written = writer.write(1001, mattes)
    assert written == [tmp_path / "m.1001.exr"]
    pixels, names, spec = read_image(written[0])
    assert sorted(names) == ["A", "car.A", "hero.A"]
    assert spec.format.basetype == __import__("OpenImageIO").HALF
    assert spec.getattribute("compression").startswith(compression if compression != "none" else "none")
    got = {n: pixels[..., i] for i, n in enumerate(names)}
    tol = 0.05 if compression == "dwaa" else 1e-3  # half precision; DWAA is lossy
    assert np.allclose(got["hero.A"], mattes["hero"], atol=tol)
    assert np.array_equal(got["car.A"], mattes["car"])
    assert np.allclose(got["A"], np.maximum(mattes["hero"], mattes["car"]), atol=tol)
    assert [p.name for p in tmp_path.iterdir()] == ["m.1001.exr"]  # no temp files left


def test_exr_files_layout_and_name_convention(tmp_path):
    mattes = {"Hero Guy": np.ones((H, W), np.float32), 2: np.zeros((H, W), np.float32)}
    writer = MatteWriter(tmp_path / "shot.####.exr", layout="files", bit_depth=32)
    paths = writer.write(1001, mattes)
    assert [p.name for p in paths] == ["shot_Hero_Guy.1001.exr", "shot_obj_2.1001.exr"]
    pixels, names, spec = read_image(paths[0])
    assert names == ["A"] and spec.format.basetype == __import__("OpenImageIO").FLOAT
    assert pixels.min() == 1.0
    assert safe_name("a.b") == "a_b"  # a dot would start a new EXR layer


@pytest.mark.parametrize("fmt,ext", [("png", "png"), ("tiff", "tif")])
def test_16_bit_png_and_tiff(tmp_path, fmt, ext):
    mattes = make_mattes(2)
    with MatteWriter(str(tmp_path / f"{{name}}/../mat_{{name}}.%04d.{ext}").replace("{name}/../", ""),
                     format=fmt) as writer:
        paths = writer.write(1001, mattes)
        paths += writer.write(1002, mattes)
    assert sorted(p.name for p in paths) == sorted(
        f"mat_{n}.{f}.{ext}" for n in mattes for f in (1001, 1002))
    for name, matte in mattes.items():
        pixels, _, spec = read_image(tmp_path / f"mat_{name}.1002.{ext}")
        assert spec.nchannels == 1 and spec.format.basetype == __import__("OpenImageIO").UINT16
        assert np.abs(pixels[..., 0] - matte).max() <= 0.5 / 65535 + 1e-7
    # A matte sequence is a frame source too, 1001-based like the plate.
    src = open_frames(tmp_path / f"mat_hero.1001.{ext}")
    assert src.frame_numbers == [1001, 1002]


@pytest.mark.parametrize("fmt,ext,tol", [("ffv1", "mkv", 0.5 / 65535 + 1e-7), ("mov", "mov", 2.5 / 1023)])
def test_matte_movies(tmp_path, fmt, ext, tol):
    import av

    frames = [make_mattes(i) for i in range(4)]
    with MatteWriter(tmp_path / f"mattes.{ext}", fps=25) as writer:
        assert writer.format == fmt
        for i, m in enumerate(frames):
            paths = writer.write(1001 + i, m)
        assert not paths[0].exists()  # published only when finished
    for name in ("hero", "car"):
        path = tmp_path / f"mattes_{name}.{ext}"
        with av.open(str(path)) as c:
            stream = c.streams.video[0]
            assert stream.codec_context.name == ("ffv1" if fmt == "ffv1" else "prores")
            assert float(stream.average_rate) == 25
            decoded = []
            for frame in c.decode(stream):
                if fmt == "ffv1":
                    decoded.append(frame.to_ndarray().astype(np.float32) / 65535)
                else:
                    assert frame.format.name.startswith("yuva444p")  # the decoder gives 12-bit
                    bits = frame.format.components[3].bits
                    a = np.frombuffer(frame.planes[3], np.uint16).reshape(H, -1)[:, :W]
                    decoded.append(a.astype(np.float32) / (2**bits - 1))
        with open_frames(path, first=1001) as src:  # the luma shows the same matte as grey RGB
            assert src.frame_numbers == [1001, 1002, 1003, 1004]
            # ProRes luma is lossy and swscale 12-bit YUV->RGB ~0.5% off; the alpha plane is exact.
            rgb_tol = tol if fmt == "ffv1" else 0.01
            for n, m in zip(src.frame_numbers, frames):
                assert np.abs(src.read(n) - m[name][..., None]).max() <= rgb_tol
        assert len(decoded) == 4
        for got, m in zip(decoded, frames):
            assert np.abs(got - m[name]).max() <= tol
    assert sorted(os.listdir(tmp_path)) == ["mattes_car." + ext, "mattes_hero." + ext]


def test_movie_needs_consecutive_frames_and_leaves_nothing_on_error(tmp_path):
    writer = MatteWriter(tmp_path / "m.mkv")
    writer.write(10, make_mattes(0))
    with pytest.raises(MatteWriteError, match="consecutive"):
        writer.write(12, make_mattes(0))
    writer.abort()
    assert os.listdir(tmp_path) == []
    with pytest.raises(RuntimeError):
        with MatteWriter(tmp_path / "n.mov") as w:
            w.write(1, make_mattes(0))
            raise RuntimeError("tracking crashed")
    assert os.listdir(tmp_path) == []  # the half-made movie was dropped


def test_interrupted_write_leaves_no_partial_file(tmp_path, monkeypatch):
    import OpenImageIO as oiio

    target = tmp_path / "m.1001.exr"
    target.write_bytes(b"previous good frame")
    real_create = oiio.ImageOutput.create

    class Failing:
        """Writes half a file, then fails like a full disk would."""

        def __init__(self, path):
            self.path = path

        def open(self, path, spec):
            Path(path).write_bytes(b"\x76\x2f\x31\x01" + b"\0" * 100)
            return True

        def write_image(self, data):
            raise OSError(28, "No space left on device")

        def close(self):
            return True

    monkeypatch.setattr(oiio.ImageOutput, "create", staticmethod(lambda p: Failing(p)))
    writer = MatteWriter(tmp_path / "m.%04d.exr")
    with pytest.raises(MatteWriteError, match="No space left"):
        writer.write(1001, make_mattes(0))
    assert target.read_bytes() == b"previous good frame"  # the old frame is untouched
    assert os.listdir(tmp_path) == ["m.1001.exr"]  # and no temp file is left
    monkeypatch.setattr(oiio.ImageOutput, "create", real_create)
    with pytest.raises(MatteWriteError):
        writer.write(1002, {"x": np.full((H, W), np.nan, np.float32)[None]})
    assert not (tmp_path / "m.1002.exr").exists()


def test_bad_output_paths_fail_before_writing(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(MatteWriteError, match="is a file"):
        MatteWriter(blocker / "m.%04d.exr")  # unwritable for root too
    with pytest.raises(MatteWriteError, match="does not exist"):
        MatteWriter(tmp_path / "missing" / "m.%04d.exr")
    MatteWriter(tmp_path / "made" / "m.%04d.exr", make_dirs=True)
    assert (tmp_path / "made").is_dir()
    with pytest.raises(MatteWriteError, match="no frame number"):
        MatteWriter(tmp_path / "m.exr")
    with pytest.raises(MatteWriteError, match="extension"):
        MatteWriter(tmp_path / "m.%04d.exr", format="png")
    with pytest.raises(MatteWriteError, match="layout"):
        MatteWriter(tmp_path / "m.%04d.png", layout="channels")
    with pytest.raises(MatteWriteError, match="compression"):
        MatteWriter(tmp_path / "m.%04d.exr", compression="jpeg2000")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_dir(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(MatteWriteError, match="not writable"):
            MatteWriter(ro / "m.%04d.exr")
    finally:
        ro.chmod(0o755)


def test_read_only_probe_failure_is_reported(tmp_path, monkeypatch):
    # Root ignores chmod; simulate a read-only mount at the probe (the same OSError a real one gives).
    def refuse(*a, **k):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(mattes_module.tempfile, "NamedTemporaryFile", refuse)
    with pytest.raises(MatteWriteError, match="not writable.*Read-only file system"):
        MatteWriter(tmp_path / "m.%04d.exr")


def test_names_fix_the_channel_set_and_shapes_are_checked(tmp_path):
    writer = MatteWriter(tmp_path / "m.%04d.exr", names=["hero", "car"])
    path = writer.write(5, {"hero": np.ones((H, W), np.float32)})[0]
    pixels, names, _ = read_image(path)
    assert sorted(names) == ["A", "car.A", "hero.A"]
    assert pixels[..., names.index("car.A")].max() == 0.0  # absent object: empty matte
    with pytest.raises(MatteWriteError, match="not one of"):
        writer.write(6, {"dog": np.ones((H, W), np.float32)})
    with pytest.raises(MatteWriteError, match="earlier"):
        writer.write(6, {"hero": np.ones((H + 1, W), np.float32)})
    with pytest.raises(MatteWriteError, match="shape"):
        writer.write(6, {"hero": np.ones((2, H, W), np.float32)})
