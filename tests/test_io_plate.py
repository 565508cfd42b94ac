"""Mattes that match their plate, and writes that never lose data silently (issues 19 and 21).

Every output is read back with an independent reader: OpenImageIO for images, PyAV
(FFmpeg's demuxers and decoders) for movies, plain byte parsing for PNG chunks."""

from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from samroto.core.io import FrameSourceError, MatteWriteError, MatteWriter, open_frames
from samroto.core.io import mattes as mattes_module

W, H = 64, 48


def ramp(w=W, h=H):
    return np.tile(np.linspace(0, 1, w, dtype=np.float32), (h, 1))


def png_chunks(path):
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    i, out = 8, []
    while i < len(data):
        (n,) = struct.unpack(">I", data[i:i + 4])
        out.append(data[i + 4:i + 8].decode("ascii"))
        i += 12 + n
    return out


# --- issue 19.4: a matte is data ------------------------------------------------------------

def test_png_mattes_carry_no_colour_chunks(tmp_path):
    with MatteWriter(tmp_path / "m.%04d.png") as w:
        path = w.write(1, {"hero": ramp()})[0]
    chunks = png_chunks(path)
    assert chunks[0] == "IHDR" and chunks[-1] == "IEND"
    assert not {"sRGB", "gAMA", "cHRM", "iCCP"} & set(chunks), chunks


# --- issue 19.3: EXR mattes keep the plate's format ----------------------------------------

def write_overscan_plate(directory, first=1001, count=3, par=2.0, timecode=0x10000000):
    """An anamorphic 256x144 plate whose data window holds 16 px of overscan all round."""
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        spec = oiio.ImageSpec(288, 176, 3, "half")
        spec.x, spec.y = -16, -16
        spec.full_x, spec.full_y, spec.full_width, spec.full_height = 0, 0, 256, 144
        spec.attribute("PixelAspectRatio", par)
        spec.attribute("FramesPerSecond", oiio.TypeDesc("rational"), (24, 1))
        spec.attribute("smpte:TimeCode", oiio.TypeDesc("timecode"), (timecode, 0))
        out = oiio.ImageOutput.create(str(directory / f"plate.{first + i}.exr"))
        out.open(str(directory / f"plate.{first + i}.exr"), spec)
        out.write_image(np.full((176, 288, 3), 0.18, np.float32))
        out.close()
    return str(directory / "plate.####.exr")


def test_exr_matte_keeps_anamorphic_overscan_plate_format(tmp_path):
    plate = open_frames(write_overscan_plate(tmp_path / "plate"))
    assert plate.plate.window == (-16, -16, 288, 176) and plate.plate.pixel_aspect == 2.0
    matte = np.zeros((144, 256), np.float32)
    matte[:, :40] = 1.0  # touches the left edge: the overscan continues it
    with MatteWriter(tmp_path / "m.%04d.exr", plate=plate.plate, metadata={"samroto/model": "tiny"}) as w:
        path = w.write(1002, {"hero": matte})[0]
    spec = oiio.ImageInput.open(str(path)).spec()
    assert (spec.x, spec.y, spec.width, spec.height) == (-16, -16, 288, 176)  # data window as the plate's
    assert (spec.full_x, spec.full_y, spec.full_width, spec.full_height) == (0, 0, 256, 144)
    assert spec.getattribute("PixelAspectRatio") == 2.0
    assert spec.getattribute("samroto/model") == "tiny"
    assert spec.getattribute("Software").startswith("samroto ")
    assert spec.getattribute("smpte:TimeCode")[0] == 0x10000001  # the plate's 10:00:00:00 at 1001, one on
    buf = oiio.ImageBuf(str(path))
    pixels = buf.get_pixels(oiio.FLOAT)  # the data window
    a = pixels[..., list(spec.channelnames).index("hero.A")]
    assert a[16:160, 16:272].tolist() == matte.tolist()  # the display window is the matte
    assert a[:, :56].min() == 1.0 and a[:, 56:].max() == 0.0  # overscan: the edge carried outwards

    with MatteWriter(tmp_path / "c.%04d.exr", plate=plate.plate, overscan="crop") as w:
        path = w.write(1002, {"hero": matte})[0]
    spec = oiio.ImageInput.open(str(path)).spec()
    assert (spec.x, spec.y, spec.width, spec.height) == (0, 0, 256, 144)
    assert spec.getattribute("PixelAspectRatio") == 2.0


# --- issue 19.2: movies keep frame rate, timecode, colour tags ---------------------------------

def write_mp4(path, frames=6, fps=25, timecode="10:00:00:00"):
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        cc = s.codec_context
        cc.color_primaries, cc.color_trc, cc.colorspace = 1, 1, 1
        if timecode:
            s.metadata["timecode"] = timecode
        for i in range(frames):
            img = np.zeros((H, W, 3), np.uint8)
            img[:, i * 8:i * 8 + 16] = 200
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


@pytest.mark.parametrize("ext", ["mov", "mkv"])
def test_matte_movie_has_the_plate_rate_timecode_and_tags(tmp_path, ext):
    import av

    plate = open_frames(write_mp4(tmp_path / "plate.mp4"), first="timecode")
    assert (plate.first, plate.fps, plate.plate.timecode) == (900000, 25.0, "10:00:00:00")
    with MatteWriter(tmp_path / f"m.{ext}", plate=plate.plate) as w:  # no fps given: the plate's
        for n in plate.frame_numbers[2:]:
            path = w.write(n, {"hero": ramp()})[0]
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        assert v.average_rate == 25
        assert sum(1 for p in c.demux(v) if p.size) == 4
        tags = {k.lower(): val for k, val in {**c.metadata, **v.metadata}.items()}  # Matroska: TIMECODE
        assert tags["timecode"] == "10:00:00:02"  # the first matte frame's, not the plate's start
        if ext == "mov":
            cc = v.codec_context
            assert (cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range) == (1, 1, 1, 1)


# --- issue 21.5: a full disk never publishes an empty or truncated matte ----------------------

FULL_DISK = textwrap.dedent("""
    import resource, signal, sys
    import numpy as np
    from samroto.core.io import MatteWriter, MatteWriteError
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)          # writes past the limit fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (3000, 3000))  # a disk that fills up after 3 kB
    rng = np.random.default_rng(0)
    try:
        with MatteWriter(sys.argv[1]) as w:
            for f in range(1001, 1004):
                w.write(f, {"hero": rng.random((256, 256), dtype=np.float32)})
    except MatteWriteError as exc:
        print("ERROR", exc)
        sys.exit(3)
    sys.exit(0)
""")


@pytest.mark.parametrize("name", ["m.%04d.png", "m.%04d.tif", "m.%04d.exr", "m.mov", "m.mkv"])
def test_full_disk_fails_and_publishes_nothing(tmp_path, name):
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run([sys.executable, "-c", FULL_DISK, str(out / name)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 3, proc.stdout + proc.stderr  # an error, never a silent success
    assert "check free disk space" in proc.stdout
    assert os.listdir(out) == []  # no empty, truncated or hidden temporary file


def test_a_file_that_does_not_read_back_is_not_published(tmp_path, monkeypatch):
    """OIIO's PNG writer reports success on a full disk; the read-back is what catches it."""
    real_create = oiio.ImageOutput.create

    class Truncating:
        def __init__(self, path):
            self.out, self.path = real_create(path), path

        def open(self, path, spec):
            return self.out.open(path, spec)

        def write_image(self, data):
            return self.out.write_image(data)

        def close(self):
            ok = self.out.close()
            Path(self.path).write_bytes(Path(self.path).read_bytes()[:200])  # the tail never reached the disk
            return ok

        def geterror(self):
            return ""

    monkeypatch.setattr(oiio.ImageOutput, "create", staticmethod(lambda p: Truncating(p)))
    with pytest.raises(MatteWriteError, match="do not read back|does not read back"):
        MatteWriter(tmp_path / "m.%04d.png").write(1, {"hero": np.random.default_rng(0).random((H, W))})
    assert os.listdir(tmp_path) == []


# --- issue 21.14: cleanup never hides the real error ---------------------------------------

def test_temp_cleanup_failure_does_not_hide_the_write_error(tmp_path, monkeypatch):
    def replace(src, dst):
        raise PermissionError(13, "Permission denied", str(dst))

    def unlink(self, missing_ok=False):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(mattes_module.os, "replace", replace)
    monkeypatch.setattr(Path, "unlink", unlink)
    with pytest.raises(MatteWriteError) as err:
        MatteWriter(tmp_path / "m.%04d.exr").write(1, {"hero": ramp()})
    message = str(err.value)
    assert message.startswith(f"cannot write {tmp_path / 'm.0001.exr'}: Permission denied")
    assert "temporary file" in message and "could not be removed" in message


# --- issue 21.7: a movie is published whole or not at all ----------------------------------

def test_movie_that_lost_frames_is_not_published(tmp_path, monkeypatch):
    w = MatteWriter(tmp_path / "m.mov", fps=25)
    for n in range(3):
        w.write(n, {"hero": ramp()})
    w._movies["hero"].count += 1  # as if a frame had been accepted but never reached the file
    with pytest.raises(MatteWriteError, match="holds 3 of the 4 frames"):
        w.close()
    assert os.listdir(tmp_path) == []


# --- issue 21.6: a damaged movie fails the frame (or warns), never passes silently --------------

def damaged_mp4(tmp_path):
    import av

    path = tmp_path / "clip.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        s.options = {"g": "12"}
        for i in range(48):
            img = (rng.random((240, 320, 3)) * 60).astype(np.uint8)
            img[:, (i * 6) % 280:(i * 6) % 280 + 40] = 255
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    good = {}
    with av.open(str(path)) as c:  # PyAV's own decode of the intact file: the reference
        for i, f in enumerate(c.decode(c.streams.video[0])):
            good[i] = f.to_ndarray(format="rgb24").astype(np.int16)
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 2000] = random.Random(1).randbytes(2000)  # 2,000 random bytes mid-file
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    return bad, good


def test_damaged_movie_frames_fail_and_none_pass_as_garbage(tmp_path, caplog):
    bad, good = damaged_mp4(tmp_path)
    src = open_frames(bad)
    failed, garbage = [], []
    for n in src.frame_numbers:
        try:
            pixels = src.read_uint8(n).astype(np.int16)
        except FrameSourceError as exc:
            failed.append(n)
            assert "damaged" in str(exc) or "cannot decode" in str(exc)
            continue
        if np.abs(pixels - good[n]).mean() > 0.5:
            garbage.append(n)
    assert failed, "the damage was not noticed"
    assert garbage == []  # every frame handed out is the intact file's
    assert failed == list(range(failed[0], failed[-1] + 1)) and len(failed) < 20  # the damaged GOP only

    warned = open_frames(bad, on_damage="warn")
    for n in warned.frame_numbers:
        warned.read(n)
    assert warned.damaged == failed
    assert sum("damaged" in r.getMessage() for r in caplog.records) == len(failed)


# --- issue 19.5: $OCIO is the facility's word on what float plates are -----------------------

def test_auto_input_uses_the_ocio_config_scene_linear_role(tmp_path, monkeypatch):
    import PyOpenColorIO as ocio

    path = tmp_path / "p.1001.exr"
    out = oiio.ImageOutput.create(str(path))
    out.open(str(path), oiio.ImageSpec(4, 2, 3, "half"))
    out.write_image(np.full((2, 4, 3), [0.5, 0.1, 0.05], np.float32))
    out.close()
    plain = open_frames(path).read(1001)[0, 0]
    monkeypatch.setenv("OCIO", "ocio://studio-config-latest")
    frames = open_frames(path)
    assert "scene_linear" in frames.transform.description and "ACEScg" in frames.transform.description
    got = frames.read(1001)[0, 0]
    config = ocio.Config.CreateFromFile("ocio://studio-config-latest")
    display = next(d for d in config.getDisplays() if d.startswith("sRGB"))
    proc = config.getProcessor(ocio.DisplayViewTransform(src="ACEScg", display=display,
                                                         view=config.getDefaultView(display)))
    want = np.array([[0.5, 0.1, 0.05]], np.float32)
    proc.getDefaultCPUProcessor().applyRGB(want)
    assert np.allclose(got, np.clip(want[0], 0, 1), atol=1e-3)
    assert not np.allclose(got, plain, atol=1e-2)  # not read as linear Rec.709 any more
