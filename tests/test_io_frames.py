"""Frame sources: video (PyAV), image sequences (OpenImageIO), arrays; numbering and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from samroto.core.io import (
    ArrayFrames,
    FrameSourceError,
    ImageSequenceFrames,
    VideoFrames,
    open_frames,
)
from test_io_support import CODECS, coded_frame, decode_index, has_encoder, write_clip, write_coded_sequence, write_image

# Forward, backward (into an earlier GOP), the last frame, one frame back, a long jump.
SEEK_ORDER = [0, 5, 39, 12, 11, 10, 30, 31, 32, 1, 38, 20, 19, 0]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    made = {}
    for codec, (encoder, _, _, ext) in CODECS.items():
        if has_encoder(encoder):
            made[codec] = write_clip(d / f"clip_{codec}{ext}", codec)
    return made


@pytest.mark.parametrize("codec", list(CODECS))
def test_video_random_access_is_frame_accurate(clips, codec):
    if codec not in clips:
        pytest.skip(f"this PyAV build has no {CODECS[codec][0]} encoder")
    with open_frames(clips[codec]) as src:
        assert isinstance(src, VideoFrames)
        assert (len(src), src.first, src.last, src.width, src.height, src.fps) == (40, 0, 39, 256, 128, 24.0)
        for n in SEEK_ORDER:
            frame = src.read(n)
            assert frame.dtype == np.float32 and frame.shape == (128, 256, 3)
            assert 0.0 <= frame.min() and frame.max() <= 1.0
            assert decode_index(frame) == n, f"{codec}: asked for frame {n}"
            assert decode_index(src.read_uint8(n)) == n


def test_video_sequential_reads_do_not_seek(clips, monkeypatch):
    seeks = []
    original = VideoFrames._seek
    monkeypatch.setattr(VideoFrames, "_seek", lambda self, *a: (seeks.append(a), original(self, *a)))
    with open_frames(clips["h264"]) as src:
        assert [decode_index(src.read(n)) for n in src.frame_numbers] == list(range(40))
        assert seeks == []  # frame 0 comes from the open, the rest decode forward
        src.read(3)  # backwards: one seek
        assert len(seeks) == 1


def test_video_read_ahead_then_plate_does_not_seek(clips, monkeypatch):
    # the tracker decodes frame n+1 on its reader thread before finishing reads frame n's plate
    seeks = []
    original = VideoFrames._seek
    monkeypatch.setattr(VideoFrames, "_seek", lambda self, *a: (seeks.append(a), original(self, *a)))
    with open_frames(clips["h264"]) as src:
        for n in src.frame_numbers[:-1]:
            assert decode_index(src.read_uint8(n + 1)) == n + 1
            assert decode_index(src.read(n)) == n
        assert seeks == []


def test_video_two_threads_read_the_right_frames(clips):
    import threading

    wrong, errors = [], []
    with open_frames(clips["h264"]) as src:
        def reader(order):
            try:
                for n in order:
                    got = decode_index(src.read_uint8(n))
                    if got != n:
                        wrong.append((n, got))
            except Exception as exc:  # noqa: BLE001 - any failure in the thread fails the test
                errors.append(exc)

        threads = [threading.Thread(target=reader, args=(order,))
                   for order in (list(range(40)) * 2, SEEK_ORDER * 4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == [] and wrong == []


def test_video_first_offset_and_last(clips):
    with open_frames(clips["prores"], first=1001, last=1010) as src:
        assert src.frame_numbers == list(range(1001, 1011))
        assert decode_index(src.read(1005)) == 4
        with pytest.raises(FrameSourceError, match="1001-1010"):
            src.read(5)
    with pytest.raises(FrameSourceError, match="past the end"):
        open_frames(clips["prores"], last=100)


def test_video_colour_is_close_to_what_was_encoded(tmp_path):
    import av
    from fractions import Fraction

    colour = np.zeros((64, 64, 3), np.uint8)
    colour[:] = (200, 100, 50)
    path = tmp_path / "flat.mov"
    with av.open(str(path), "w") as c:
        s = c.add_stream("prores_ks", rate=Fraction(24))
        s.width = s.height = 64
        s.pix_fmt = "yuv444p10le"
        for packet in s.encode(av.VideoFrame.from_ndarray(colour, format="rgb24")):
            c.mux(packet)
        for packet in s.encode(None):
            c.mux(packet)
    with open_frames(path) as src:
        assert np.abs(src.read_uint8(0).astype(int) - colour).max() <= 2


def test_video_bad_files(tmp_path, clips):
    junk = tmp_path / "junk.mov"
    junk.write_bytes(b"not a movie at all" * 100)
    with pytest.raises(FrameSourceError, match="cannot open video"):
        open_frames(junk)
    with pytest.raises(FrameSourceError, match="does not exist"):
        open_frames(tmp_path / "missing.mp4")


def test_video_truncated_file_fails_cleanly(tmp_path, clips):
    data = clips["prores"].read_bytes()
    cut = tmp_path / "cut.mov"
    cut.write_bytes(data[: len(data) // 2])  # moov atom is at the end: unreadable
    with pytest.raises(FrameSourceError):
        src = open_frames(cut)
        for n in src.frame_numbers:
            src.read(n)


# --- sequences ------------------------------------------------------------------------------

@pytest.mark.parametrize("syntax", ["plate.%04d.png", "plate.####.png", "plate.@@@@.png"])
def test_sequence_pattern_syntaxes_and_1001_numbering(tmp_path, syntax):
    write_coded_sequence(tmp_path, "plate.%04d.png", range(1001, 1011))
    (tmp_path / "plate.1005.png.bak").write_text("not part of it")
    (tmp_path / "plate.100.png").write_text("wrong padding")
    with open_frames(str(tmp_path / syntax)) as src:
        assert isinstance(src, ImageSequenceFrames)
        assert (src.first, src.last, len(src)) == (1001, 1010, 10)
        assert src.fps is None
        for n in (1010, 1001, 1004):
            assert decode_index(src.read(n)) == n % 256
        with pytest.raises(FrameSourceError, match="1001-1010"):
            src.read(1000)


def test_sequence_from_one_frame_file_and_unpadded(tmp_path):
    write_coded_sequence(tmp_path, "shot_v2.%04d.exr", range(1001, 1006), "half")
    src = open_frames(tmp_path / "shot_v2.1003.exr")
    assert src.frame_numbers == list(range(1001, 1006))
    write_coded_sequence(tmp_path, "frame%d.jpg", range(8, 13))
    src = open_frames(str(tmp_path / "frame%d.jpg"))
    assert src.frame_numbers == [8, 9, 10, 11, 12]
    assert decode_index(src.read(11)) == 11


def test_sequence_explicit_list(tmp_path):
    write_coded_sequence(tmp_path, "a.%04d.tif", range(1, 5), "uint16")
    paths = [tmp_path / f"a.{n:04d}.tif" for n in range(1, 5)]
    src = open_frames(paths)
    assert src.frame_numbers == [1, 2, 3, 4]  # numbers from the file names
    assert decode_index(src.read(3)) == 3
    (tmp_path / "x.tif").write_bytes((tmp_path / "a.0002.tif").read_bytes())
    src = open_frames([tmp_path / "x.tif", tmp_path / "a.0001.tif"], first=100)
    assert src.frame_numbers == [100, 101]  # un-numbered names: numbered from `first`
    assert decode_index(src.read(100)) == 2


def test_sequence_range_and_gaps(tmp_path):
    write_coded_sequence(tmp_path, "p.%04d.dpx", [*range(1001, 1006), *range(1008, 1011)], "uint16")
    with pytest.raises(FrameSourceError) as err:
        open_frames(str(tmp_path / "p.####.dpx"))
    assert "1006-1007" in str(err.value) and "frames 1001-1005" in str(err.value)
    with pytest.raises(FrameSourceError, match="1006-1007"):
        open_frames(str(tmp_path / "p.####.dpx"), first=1003, last=1009)
    src = open_frames(str(tmp_path / "p.####.dpx"), first=1008)  # a range without gaps is fine
    assert src.frame_numbers == [1008, 1009, 1010]
    assert decode_index(src.read(1009)) == 1009 % 256
    with pytest.raises(FrameSourceError, match="1000"):
        open_frames(str(tmp_path / "p.####.dpx"), first=1000, last=1002)


def test_sequence_wrong_pattern_hints_the_padding(tmp_path):
    write_coded_sequence(tmp_path, "p.%04d.png", range(1, 4))
    with pytest.raises(FrameSourceError, match="4 digits of padding"):
        open_frames(str(tmp_path / "p.%03d.png"))
    with pytest.raises(FrameSourceError, match="does not exist"):
        open_frames(str(tmp_path / "nowhere" / "p.%04d.png"))
    with pytest.raises(FrameSourceError, match="one frame token|valid sequence pattern"):
        open_frames(str(tmp_path / "p.%04d.%04d.png"))
    with pytest.raises(FrameSourceError, match="directory"):
        open_frames(tmp_path)


def test_sequence_corrupt_frame_is_a_clear_error(tmp_path):
    write_coded_sequence(tmp_path, "c.%04d.exr", range(1, 4), "half")
    good = (tmp_path / "c.0002.exr").read_bytes()
    (tmp_path / "c.0002.exr").write_bytes(good[: len(good) // 2])
    src = open_frames(str(tmp_path / "c.%04d.exr"))
    assert decode_index(src.read(1)) == 1
    with pytest.raises(FrameSourceError, match=r"frame 2 .*c\.0002\.exr"):
        src.read(2)
    (tmp_path / "c.0003.exr").write_bytes(b"garbage")
    with pytest.raises(FrameSourceError, match="c.0003.exr"):
        src.read(3)


def test_sequence_size_change_is_an_error(tmp_path):
    write_image(tmp_path / "s.0001.png", coded_frame(1))
    write_image(tmp_path / "s.0002.png", coded_frame(2, 128, 64))
    src = open_frames(str(tmp_path / "s.%04d.png"))
    with pytest.raises(FrameSourceError, match="same size"):
        src.read(2)


def test_exr_channels_and_data_window(tmp_path):
    import OpenImageIO as oiio

    # A multi-layer EXR: R, G, B are found by name; a cropped data window is placed in the display window.
    pixels = np.zeros((4, 6, 5), np.float32)
    pixels[:] = [0.9, 0.3, 0.5, 0.2, 1.0]  # A B G R Z
    spec = oiio.ImageSpec(6, 4, 5, "half")
    spec.channelnames = ("A", "B", "G", "R", "Z")
    spec.x, spec.y, spec.full_x, spec.full_y, spec.full_width, spec.full_height = 2, 1, 0, 0, 10, 8
    out = oiio.ImageOutput.create(str(tmp_path / "m.exr"))
    out.open(str(tmp_path / "m.exr"), spec)
    out.write_image(pixels)
    out.close()
    src = open_frames(tmp_path / "m.exr", color="srgb")
    assert (src.width, src.height, src.frame_numbers) == (10, 8, [0])
    frame = src.read(0)
    assert np.allclose(frame[1:5, 2:8], [0.2, 0.5, 0.3], atol=1e-3)
    assert frame[0].max() == 0 and frame[:, 8:].max() == 0


def test_arrays():
    frames = np.stack([coded_frame(i) for i in range(5)])
    src = ArrayFrames(frames, first=1001)
    assert src.frame_numbers == list(range(1001, 1006))
    assert decode_index(src.read(1003)) == 2
    assert np.array_equal(src.read_uint8(1004), frames[3])
    floats = open_frames([f.astype(np.float32) / 255 for f in frames], color="srgb")
    assert np.allclose(floats.read(0), frames[0] / 255.0, atol=1e-6)
    assert floats.describe()["color"]["transform"].startswith("srgb")
    with pytest.raises(FrameSourceError, match="outside"):
        src.read(0)
    with pytest.raises(FrameSourceError, match="shape"):
        ArrayFrames([np.zeros(5)])
    with pytest.raises(FrameSourceError, match="cannot open frames"):
        open_frames(42)
