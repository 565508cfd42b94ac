"""`samroto track` and `samroto demo` end to end on generated clips with the micro fixture model."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from samroto.cli.main import main
from samroto.core import sample

DATA = Path(__file__).parent / "data" / "sam2_parity"
MODEL = ["--model", str(DATA / "config.yaml"), "--checkpoint", str(DATA / "checkpoint.pt"), "--device", "cpu"]
W, H, N = 112, 80, 5


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("SAMROTO_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("SAMROTO_MODELS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SAMROTO_FINISH_REFINE", "false")  # keep tests quick


def read_alpha(path, layer="A"):
    buf = oiio.ImageBuf(str(path))
    assert not buf.has_error, buf.geterror()
    names = buf.spec().channelnames
    pixels = buf.get_pixels(oiio.FLOAT)
    return pixels[..., names.index(layer)]


def test_track_h264_movie(tmp_path, capsys):
    from samroto.core.io import open_frames
    from samroto.core.model.build import build_model
    from samroto.core.video import VideoSession

    movie = sample.write_sample(tmp_path, N, W, H, kind="mp4")
    # a click the (random-weight) micro model sees as an object, mid-shot: both directions run
    doc = {"version": 1, "objects": [{"id": 1, "name": "disc", "prompts": [
        {"frame": 2, "points": [[64, 34]], "labels": [1]}]}]}
    (tmp_path / "p.json").write_text(json.dumps(doc))
    rc = main(["track", movie, *MODEL, "--prompts", str(tmp_path / "p.json"),
               "--out", str(tmp_path / "m" / "shot.%04d.exr"), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    files = sorted(os.listdir(tmp_path / "m"))
    assert files == [f"shot.{i:04d}.exr" for i in range(N)]  # the movie's own numbering, every frame
    spec = oiio.ImageInput.open(str(tmp_path / "m" / "shot.0002.exr")).spec()
    assert (spec.width, spec.height) == (W, H) and "disc.A" in spec.channelnames

    # the mattes are the engine's masks at source resolution, frame for frame
    model = build_model(DATA / "config.yaml", DATA / "checkpoint.pt", device="cpu")
    session = VideoSession(model, open_frames(movie))
    session.add_prompt(2, 1, points=[[64, 34]], labels=[1])
    expected = {frame: logits[0] > 0 for frame, _, logits in session.propagate(direction="both")}
    assert sorted(expected) == list(range(N)) and expected[2].mean() > 0.05
    for frame, mask in expected.items():
        alpha = read_alpha(tmp_path / "m" / f"shot.{frame:04d}.exr", "disc.A")
        assert np.mean((alpha > 0.5) != mask) < 0.01, frame


def write_exr_sequence(directory, first):
    directory.mkdir()
    for i, frame in enumerate(sample.make_frames(N, W, H)):
        linear = (frame.astype(np.float32) / 255.0) ** 2.2  # scene-linear plate
        out = oiio.ImageOutput.create(str(directory / f"plate.{first + i:04d}.exr"))
        out.open(str(directory / f"plate.{first + i:04d}.exr"), oiio.ImageSpec(W, H, 3, oiio.HALF))
        out.write_image(linear)
        out.close()
    return str(directory / "plate.####.exr")


def test_track_exr_sequence_with_flags(tmp_path, capsys):
    plate = write_exr_sequence(tmp_path / "plate", 1001)
    (dx, dy), _ = sample.shape_centres(0, N, W, H)
    rc = main(["track", plate, *MODEL, "--point", f"1:1001:{dx:.1f},{dy:.1f}", "--box", "2:1002:60,30,100,70",
               "--out", str(tmp_path / "m" / "{name}.%04d.png"), "--range", "1001-1004", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    files = sorted(os.listdir(tmp_path / "m"))
    assert files == [f"{name}.{n}.png" for name in ("obj1", "obj2") for n in range(1001, 1005)]
    spec = oiio.ImageInput.open(str(tmp_path / "m" / "obj1.1003.png")).spec()
    assert (spec.width, spec.height, spec.nchannels) == (W, H, 1)


@pytest.mark.parametrize("prompts, message", [
    ('{"version": 1, "objects": [', "not valid JSON at line 1"),
    (json.dumps({"objects": [{"id": 1, "prompts": [{"frame": 99, "points": [[5, 5]], "labels": [1]}]}]}),
     "frame 99 is not in the source"),
    (json.dumps({"objects": [{"id": 1, "name": "a", "prompts": []}]}), r"object 1 ('a'): has no prompts"),
    (json.dumps({"objects": [{"id": 1, "prompts": [{"frame": 0, "box": [0, 0, 500, 20]}]}]}), "outside the 112x80 image"),
])
def test_bad_prompts_fail_before_work(tmp_path, capsys, prompts, message):
    movie = sample.write_sample(tmp_path, 3, W, H, kind="mp4")
    (tmp_path / "p.json").write_text(prompts)
    # a model that does not exist: the prompts are checked before anything is loaded
    rc = main(["track", movie, "--model", "sam2.1_hiera_large", "--prompts", str(tmp_path / "p.json"),
               "--out", str(tmp_path / "m" / "x.%04d.exr")])
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_interrupt_keeps_finished_mattes(tmp_path, capsys, monkeypatch):
    from samroto.core.io import MatteWriter

    plate = sample.write_sample(tmp_path / "plate", N, W, H)
    real_write, calls = MatteWriter.write, []

    def write_then_interrupt(self, frame, *a, **k):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(frame)
        return real_write(self, frame, *a, **k)

    monkeypatch.setattr(MatteWriter, "write", write_then_interrupt)
    rc = main(["track", plate, *MODEL, "--point", "1:1001:30,30", "--out", str(tmp_path / "m" / "x.%04d.exr"),
               "--quiet"])
    assert rc == 130
    assert "2 frame(s) written" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path / "m")) == ["x.1001.exr", "x.1002.exr"]  # no partial files
    assert read_alpha(tmp_path / "m" / "x.1002.exr").shape == (H, W)


def test_demo_runs_on_given_model(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "samroto", "demo", *MODEL, "--out", str(out), "--frames", "4",
                           "--size", "96x64", "--quiet"], capture_output=True, text=True, timeout=120,
                          env={**os.environ})
    assert proc.returncode == 0, proc.stderr
    assert len(list((out / "mattes").glob("demo_disc.*.png"))) == 4
    preview = oiio.ImageInput.open(str(out / "preview.png")).spec()
    assert preview.width > 0 and "preview:" in proc.stdout


def test_demo_without_checkpoint_says_how_to_get_one(tmp_path, capsys):
    rc = main(["demo", "--out", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "samroto models download sam2.1_hiera_base_plus" in err and "--checkpoint" in err
    assert not (tmp_path / "d").exists()


def test_precision_flag_and_setting_reach_the_session(tmp_path, monkeypatch):
    import torch

    from samroto.core import video

    made = []

    class Spy(video.VideoSession):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self.dtype)

    monkeypatch.setattr(video, "VideoSession", Spy)
    movie = sample.write_sample(tmp_path, 2, W, H, kind="mp4")
    common = ["track", movie, *MODEL, "--point", "1:0:64,34", "--quiet"]
    assert main([*common, "--out", str(tmp_path / "a.%04d.png"), "--precision", "bfloat16"]) == 0
    monkeypatch.setenv("SAMROTO_PRECISION", "float32")
    assert main([*common, "--out", str(tmp_path / "b.%04d.png")]) == 0
    from samroto.core.precision import resolve_precision

    # bfloat16 is asked for; a CPU where it would run on AMX computes in float32 (core/precision.py)
    assert made == [resolve_precision("bfloat16", torch.device("cpu")), torch.float32]
