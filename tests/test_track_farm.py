"""`samroto track` on a farm and in a pipeline (issues 19 and 21): mattes that match the plate,
Cryptomatte, exit codes, logs, JSON summaries, resume, interruption, I/O failures, exports.

Outputs are read with independent readers: OpenImageIO for images, PyAV for movies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from samroto.cli.main import main
from samroto.core import sample
from test_io_plate import write_mp4, write_overscan_plate

from test_track_cli import H, MODEL, DATA, N, W, isolated_settings  # noqa: F401 - the autouse fixture


@pytest.fixture(autouse=True)
def no_ocio(monkeypatch):
    monkeypatch.delenv("OCIO", raising=False)


def spec_of(path):
    inp = oiio.ImageInput.open(str(path))
    assert inp is not None, oiio.geterror()
    try:
        return inp.spec()
    finally:
        inp.close()


def plate(tmp_path, n=N):
    return sample.write_sample(tmp_path / "plate", n, W, H)  # plate.%04d.png, 1001-based


# --- 19.3: EXR mattes of an anamorphic overscan plate, with provenance ------------------------------

def test_exr_mattes_match_an_anamorphic_overscan_plate_and_name_their_making(tmp_path, capsys):
    src = write_overscan_plate(tmp_path / "plate", count=3)
    rc = main(["track", src, *MODEL, "--point", "1:1001:60,40", "--out", str(tmp_path / "m" / "sh.%04d.exr"),
               "--quiet"])
    assert rc == 0, capsys.readouterr().err
    assert sorted(os.listdir(tmp_path / "m")) == ["sh.1001.exr", "sh.1002.exr", "sh.1003.exr"]
    spec = spec_of(tmp_path / "m" / "sh.1002.exr")
    assert (spec.x, spec.y, spec.width, spec.height) == (-16, -16, 288, 176)
    assert (spec.full_x, spec.full_y, spec.full_width, spec.full_height) == (0, 0, 256, 144)
    assert spec.getattribute("PixelAspectRatio") == 2.0
    assert spec.getattribute("FramesPerSecond") == (24, 1)
    assert spec.getattribute("smpte:TimeCode")[0] == 0x10000001  # 10:00:00:01
    import samroto

    assert spec.getattribute("samroto/version") == samroto.__version__
    assert spec.getattribute("samroto/model") == str(DATA / "config.yaml")
    assert spec.getattribute("samroto/source") == str(tmp_path / "plate" / "plate.%04d.exr")
    assert len(spec.getattribute("samroto/prompts_sha256")) == 64
    # --set after the command name; overscan cropped on request
    rc = main(["track", src, *MODEL, "--point", "1:1001:60,40", "--out", str(tmp_path / "c" / "sh.%04d.exr"),
               "--quiet", "--set", "matte.overscan=crop"])
    assert rc == 0
    spec = spec_of(tmp_path / "c" / "sh.1001.exr")
    assert (spec.x, spec.y, spec.width, spec.height) == (0, 0, 256, 144)


# --- 19.1: Cryptomatte from the setting --------------------------------------------------------

def test_cryptomatte_setting_writes_cryptomatte_layers(tmp_path, capsys):
    from samroto.core.io.cryptomatte import murmurhash3_32

    movie = sample.write_sample(tmp_path, N, W, H, kind="mp4")  # test_track_cli's: a disc the model sees
    rc = main(["track", movie, *MODEL, "--point", "1:2:64,34", "--box", "2:2:5,50,40,78",
               "--out", str(tmp_path / "m" / "sh.%04d.exr"), "--quiet", "--set", "finish.cryptomatte=true"])
    assert rc == 0, capsys.readouterr().err
    path = tmp_path / "m" / "sh.0002.exr"
    spec = spec_of(path)
    names = list(spec.channelnames)
    assert {"A", "obj1.A", "obj2.A", "CryptoObject00.R", "CryptoObject00.G", "CryptoObject00.B",
            "CryptoObject00.A"} <= set(names)
    key = f"{murmurhash3_32('CryptoObject'):08x}"[:7]
    assert spec.getattribute(f"cryptomatte/{key}/name") == "CryptoObject"
    assert spec.getattribute(f"cryptomatte/{key}/hash") == "MurmurHash3_32"
    manifest = json.loads(spec.getattribute(f"cryptomatte/{key}/manifest"))
    assert set(manifest) == {"obj1", "obj2"}
    assert murmurhash3_32("hello") == 0x248BFA47  # the published MurmurHash3_32 test vector
    pixels = oiio.ImageBuf(str(path)).get_pixels(oiio.FLOAT)
    rank0_id = pixels[..., names.index("CryptoObject00.R")].astype(np.float32).view(np.uint32)
    rank0_cov = pixels[..., names.index("CryptoObject00.G")]
    assert pixels[..., names.index("obj1.A")].max() == 1.0  # the micro model sees the disc here
    for obj in ("obj1", "obj2"):
        alpha = pixels[..., names.index(f"{obj}.A")]
        mine = rank0_id == int(manifest[obj], 16)
        assert np.array_equal(mine, alpha > 0.5) or alpha.max() == 0  # objects never overlap (non_overlap)
        assert np.allclose(rank0_cov[mine], alpha[mine], atol=1e-3)  # coverage is the object's matte
    rc = main(["track", plate(tmp_path / "b", 2), *MODEL, "--point", "1:1001:30,30",  # not where it cannot go
               "--out", str(tmp_path / "p" / "x.%04d.png"), "--cryptomatte"])
    assert rc == 2 and "Cryptomatte layers go in multi-layer EXRs" in capsys.readouterr().err


# --- 19.2: a ProRes matte of a 25 fps MP4 with timecode ------------------------------------------

def test_prores_matte_of_a_timecoded_mp4_keeps_rate_timecode_count_and_tags(tmp_path, capsys):
    import av

    movie = write_mp4(tmp_path / "plate.mp4", frames=6)
    rc = main(["track", str(movie), *MODEL, "--first-frame", "1001", "--point", "1:1001:20,20",
               "--out", str(tmp_path / "m" / "shot.mov"), "--quiet", "--direction", "forward"])
    assert rc == 0, capsys.readouterr().err  # frame 1001 of an MP4 is a frame like any other
    with av.open(str(tmp_path / "m" / "shot_obj1.mov")) as c:
        v = c.streams.video[0]
        assert v.codec_context.name == "prores" and v.average_rate == 25
        assert sum(1 for p in c.demux(v) if p.size) == 6
        assert v.metadata["timecode"] == "10:00:00:00"
        cc = v.codec_context
        assert (cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range) == (1, 1, 1, 1)
    # numbered by its timecode, a range inside it: the movie starts at that frame's timecode
    rc = main(["track", str(movie), *MODEL, "--first-frame", "timecode", "--range", "900002-900004",
               "--point", "1:900002:20,20", "--out", str(tmp_path / "t" / "shot.mov"), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    with av.open(str(tmp_path / "t" / "shot_obj1.mov")) as c:
        v = c.streams.video[0]
        assert v.metadata["timecode"] == "10:00:00:02" and sum(1 for p in c.demux(v) if p.size) == 3


# --- 19.6: logs are clean off a terminal; --quiet keeps the summary ------------------------------

def test_progress_off_a_terminal_is_plain_lines_and_quiet_keeps_the_summary(tmp_path, capsys):
    src = plate(tmp_path)
    assert main(["track", src, *MODEL, "--point", "1:1001:30,30", "--out", str(tmp_path / "a.%04d.exr")]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "\x1b" not in err  # stderr is not a TTY here: no bar redraws
    assert "tracking: 5/5 frames (100%" in err and "wrote 5 frame(s)" in err
    assert main(["track", src, *MODEL, "--point", "1:1001:30,30", "--out", str(tmp_path / "b.%04d.exr"),
                 "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "tracking:" not in err and "wrote 5 frame(s)" in err


# --- 19.7: JSON summaries, ranges, exit codes, --set anywhere, resume --------------------------

def test_json_summary_and_single_frame_range(tmp_path, capsys):
    rc = main(["track", plate(tmp_path), *MODEL, "--point", "1:1002:30,30", "--range", "1002",
               "--out", str(tmp_path / "m" / "x.%04d.exr"), "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    summary = json.loads(out)
    assert summary["status"] == "done" and summary["exit_code"] == 0
    assert (summary["first"], summary["last"], summary["written"], summary["objects"]) == (1002, 1002, 1, ["obj1"])
    assert os.listdir(tmp_path / "m") == ["x.1002.exr"]


def test_a_range_outside_the_source_is_refused_not_clamped(tmp_path, capsys):
    rc = main(["track", plate(tmp_path), "--model", "missing-model", "--point", "1:1001:30,30",
               "--range", "990-1003", "--out", str(tmp_path / "m" / "x.%04d.exr")])
    assert rc == 2
    assert "990" in capsys.readouterr().err and not (tmp_path / "m").exists()


@pytest.mark.parametrize("flags, message", [
    (["--colorspace", "ACEScg", "--set", "color.ocio_config=/nowhere/config.ocio"], "cannot load the OpenColorIO config"),
    (["--colorspace", "ACEScgg"], "unknown colour space 'ACEScgg'"),
])
def test_a_bad_colour_setup_is_a_clear_error_before_the_model_loads(tmp_path, capsys, flags, message):
    rc = main(["track", plate(tmp_path, 2), "--model", "missing-model", "--point", "1:1001:30,30",
               "--out", str(tmp_path / "m" / "x.%04d.exr"), *flags])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err and "missing-model" not in err


def test_config_show_json_and_set_after_the_command(tmp_path, capsys):
    assert main(["config", "show", "--json", "--set", "model=sam2.1_hiera_tiny"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["settings"]["model"] == {"value": "sam2.1_hiera_tiny", "source": "flag",
                                         "env": "SAMROTO_MODEL"}


def test_help_describes_every_command(capsys):
    for command in ("doctor", "config", "install", "models", "export", "track"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        body = text.split("\n\n", 1)[1]
        assert not body.lstrip().startswith(("positional", "options")), command  # a description first


def test_skip_existing_resumes_and_rewrites_only_what_is_missing(tmp_path, capsys):
    src = plate(tmp_path)
    out = tmp_path / "m"
    args = ["track", src, *MODEL, "--point", "1:1001:30,30", "--out", str(out / "x.%04d.exr"), "--quiet"]
    assert main(args) == 0
    kept = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    (out / "x.1003.exr").unlink()
    (out / "x.1004.exr").write_bytes(b"")  # not a complete matte: written again
    assert main([*args, "--skip-existing", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["written"], summary["skipped"]) == (2, 3)
    after = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert sorted(after) == [f"x.{n}.exr" for n in range(1001, 1006)]
    assert all(after[n] == kept[n] for n in ("x.1001.exr", "x.1002.exr", "x.1005.exr"))
    assert spec_of(out / "x.1004.exr").width == W
    # mattes made from other prompts are not this shot's: all written again
    other = [a if a != "1:1001:30,30" else "1:1001:31,30" for a in args]
    assert main([*other, "--skip-existing", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["skipped"] == 0
    # every frame there: nothing runs, not even the model (which does not exist)
    rc = main(["track", src, "--model", "missing-model", "--point", "1:1001:31,30", "--out",
               str(out / "x.%04d.exr"), "--skip-existing"])
    assert rc == 0 and "nothing to do" in capsys.readouterr().err


# --- 21.5, 21.14, exit 1: I/O failures mid-run are one line, exit 1, nothing partial -------------

FULL_DISK_TRACK = textwrap.dedent("""
    import resource, signal, sys
    from samroto.cli.main import main
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
    sys.exit(main(sys.argv[2:]))
""")


@pytest.mark.parametrize("out", ["m/x.%04d.png", "m/x.mov"])
def test_full_disk_mid_run_exits_1_without_traceback_or_empty_files(tmp_path, out):
    src = plate(tmp_path)
    env = {**os.environ, "SAMROTO_CONFIG_DIR": str(tmp_path / "config"), "SAMROTO_FINISH_REFINE": "false"}
    limit = 1 << 20 if out.endswith(".mov") else 2500  # the model's own files are read, not written
    noise = tmp_path / "plate" / "plate.1001.png"
    proc = subprocess.run([sys.executable, "-c", FULL_DISK_TRACK, str(limit), "track", src, *MODEL,
                           "--point", "1:1001:30,30", "--out", str(tmp_path / out), "--quiet"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert noise.exists()
    if out.endswith(".mov"):  # a short movie fits in 1 MiB: no failure, and the movie is whole
        assert proc.returncode == 0, proc.stderr
        return
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "check free disk space" in proc.stderr
    for name in os.listdir(tmp_path / "m"):
        assert not name.startswith(".") and (tmp_path / "m" / name).stat().st_size > 0
        assert spec_of(tmp_path / "m" / name).width == W


def test_damaged_frame_mid_run_exits_1_with_one_line(tmp_path, capsys):
    src = plate(tmp_path)
    (tmp_path / "plate" / "plate.1004.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # truncated
    rc = main(["track", src, *MODEL, "--point", "1:1001:30,30", "--out", str(tmp_path / "m" / "x.%04d.exr"),
               "--quiet", "--direction", "forward"])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert "frame 1004" in err and "Traceback" not in err
    assert "3 complete frame(s) written before it" in err
    assert sorted(os.listdir(tmp_path / "m")) == ["x.1001.exr", "x.1002.exr", "x.1003.exr"]


def test_output_turning_read_only_mid_run_reports_the_real_error(tmp_path, capsys, monkeypatch):
    from samroto.core.io import mattes as mattes_module

    src = plate(tmp_path)
    real_replace, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) > 2:
            raise OSError(30, "Read-only file system", str(dst))
        return real_replace(src, dst)

    def unlink(self, missing_ok=False):
        raise OSError(30, "Read-only file system", str(self))

    monkeypatch.setattr(mattes_module.os, "replace", replace)
    monkeypatch.setattr(mattes_module.Path, "unlink", unlink)
    rc = main(["track", src, *MODEL, "--point", "1:1001:30,30",
               "--out", str(tmp_path / "m" / "x.%04d.exr"), "--quiet", "--direction", "forward"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "cannot write" in err and "x.1003.exr: Read-only file system" in err and "Traceback" not in err


# --- 21.7: interruption publishes no partial movie and leaves no temp files ----------------------

@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_interrupted_movie_is_not_published(tmp_path, capsys, monkeypatch, how):
    from samroto.core.io import MatteWriter

    real_write, calls = MatteWriter.write, []

    def write_then_stop(self, frame, *a, **k):
        if len(calls) == 2:
            if how == "sigterm":
                os.kill(os.getpid(), signal.SIGTERM)  # what a farm's kill sends; handled like Ctrl-C
            else:
                raise KeyboardInterrupt
        calls.append(frame)
        return real_write(self, frame, *a, **k)

    monkeypatch.setattr(MatteWriter, "write", write_then_stop)
    rc = main(["track", plate(tmp_path), *MODEL, "--point", "1:1001:30,30", "--out", str(tmp_path / "m" / "x.mov"),
               "--quiet"])
    assert rc == 130
    assert "the unfinished matte movie was not written" in capsys.readouterr().err
    assert os.listdir(tmp_path / "m") == []  # neither a partial movie nor a hidden .tmp.mov
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored after the run


# --- BrokenPipe: `samroto models list --json | head` ---------------------------------------------

def test_closed_stdout_pipe_is_quiet(tmp_path):
    env = {**os.environ, "SAMROTO_CONFIG_DIR": str(tmp_path / "config")}
    code = ("import sys\nfrom samroto.cli.main import main\n"
            "sys.stdout = open(sys.stdout.fileno(), 'w', buffering=1, closefd=False)\n"
            "sys.exit(main(['models', 'list', '--json']))")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # the reader went away before a line was written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


# --- 19.8: samroto export --------------------------------------------------------------------

def test_export_writes_splines_for_every_host_from_mattes_on_disk(tmp_path, capsys):
    src = write_overscan_plate(tmp_path / "plate", count=3)
    assert main(["track", src, *MODEL, "--box", "1:1001:100,40,180,110", "--out", str(tmp_path / "m" / "s.%04d.exr"),
                 "--quiet"]) == 0
    # make the matte a clean shape (the random micro model's is not): the export reads files only
    for f in (1001, 1002, 1003):
        path = tmp_path / "m" / f"s.{f}.exr"
        buf = oiio.ImageBuf(str(path))
        spec = buf.spec()
        pixels = buf.get_pixels(oiio.FLOAT)
        pixels[..., list(spec.channelnames).index("obj1.A")] = 0
        pixels[40:100, 60 + 10 * (f - 1001):140 + 10 * (f - 1001), list(spec.channelnames).index("obj1.A")] = 1
        out = oiio.ImageOutput.create(str(path))
        out.open(str(path), spec)
        out.write_image(pixels)
        out.close()
    capsys.readouterr()
    assert main(["export", "fusion", str(tmp_path / "m" / "s.%04d.exr"), "--out", str(tmp_path / "s.setting")]) == 0
    text = (tmp_path / "s.setting").read_text()
    assert "obj1 = PolylineMask {" in text and 'DrawMode = "ModifyOnly"' in text
    assert 'OutputSize = Input { Value = FuID { "Custom" }, }' in text and "MaskWidth = Input { Value = 256, }" in text
    assert "PixelAspect = Input { Value = { 2, 1 }, }" in text  # read from the mattes
    assert text.count("Value = Polyline {") >= 3 and "ClosedPolyline" not in text
    assert main(["export", "nuke", f"hero={tmp_path / 'm' / 's.%04d.exr'}", "--out", str(tmp_path / "s.nk")]) == 0
    nk = (tmp_path / "s.nk").read_text()
    assert nk.count("Roto {") == 1 and "format \"256 144" in nk and "{curvegroup hero 512 bezier" in nk
    assert main(["export", "blender", str(tmp_path / "m" / "s.%04d.exr"), "--out", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text())
    assert main(["export", "nuke", str(tmp_path / "m" / "none.%04d.exr"), "--out", str(tmp_path / "x.nk")]) == 2
    assert "no matte files match" in capsys.readouterr().err
