"""What the plugins' equivalence tests share (issue 16): a real `samroto serve` on the micro
fixture model (tests/data/sam2_parity), `samroto track` run on the same shot, and the
mattes compared frame by frame, bit for bit, object by object.

The bridge and the CLI run with the same environment (``ENV``): one thread, so float
results do not depend on how work is split; the CPU in float32; and the same finishing
settings (temporal smoothing on, so a pass that restarts it differently would show),
which both read from the environment. Each side's colour setting comes from what the
plugin sent (``cli_env``). A plugin test tracks through the plugin's own code path, then
hands its matte sequences, its shot (source, prompts, direction, frames) and colour to
``assert_same_as_cli``.
"""

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "sam2_parity"
MODEL = ["--model", str(DATA / "config.yaml"), "--checkpoint", str(DATA / "checkpoint.pt"), "--device", "cpu"]
ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "SAMROTO_DEVICE": "cpu", "SAMROTO_PRECISION": "float32",
       "SAMROTO_FINISH_TEMPORAL_STRENGTH": "0.5"}


def serve(config_dir, timeout=120):
    """`samroto serve` on the micro model with ``ENV``, announcing itself in ``config_dir``;
    returns the process once its discovery file is live (fails the test with its log if not)."""
    from samroto.bridge import protocol

    config_dir = Path(config_dir)
    log = open(config_dir / "serve.log", "wb")
    env = dict(os.environ, SAMROTO_CONFIG_DIR=str(config_dir), **ENV)
    proc = subprocess.Popen([sys.executable, "-m", "samroto", "serve"] + MODEL, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.time() + timeout
    while protocol.read_discovery(protocol.discovery_path(str(config_dir))) is None:
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail("samroto serve did not start:\n" + (config_dir / "serve.log").read_text()[-3000:])
        time.sleep(0.1)
    return proc


@contextlib.contextmanager
def running_bridge(config_dir):
    """A private bridge for a module's tests; yields its config dir (str)."""
    proc = serve(config_dir)
    try:
        yield str(config_dir)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def cli_env(color, config_dir):
    """The CLI's environment: ``ENV`` plus the colour the plugin sent the bridge (a name or
    {"input", "ocio_config"}) as settings, and a config dir of its own (no settings file)."""
    color = color if isinstance(color, dict) else {"input": color or "auto"}
    env = dict(os.environ, SAMROTO_CONFIG_DIR=str(config_dir), SAMROTO_COLOR_INPUT=color.get("input", "auto"), **ENV)
    if color.get("ocio_config"):
        env["SAMROTO_COLOR_OCIO_CONFIG"] = color["ocio_config"]
    return env


_CLI = {}  # one `samroto track` run per shot (e.g. two Blender versions track the same one)


def cli_track(workdir, source, prompts, direction, first, last, color):
    """`samroto track SOURCE --prompts P --direction D --range first-last` (mattes in one EXR a
    frame, a layer per object): {frame: {file-safe object name: alpha (H, W) float32}}."""
    key = json.dumps([str(source), prompts, direction, first, last, color], sort_keys=True)
    if key in _CLI:
        return _CLI[key]
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "prompts.json").write_text(json.dumps(prompts))
    out = workdir / "cli" / "cli.%04d.exr"
    cmd = [sys.executable, "-m", "samroto", "track", str(source)] + MODEL + [
        "--prompts", str(workdir / "prompts.json"), "--out", str(out), "--direction", direction,
        "--range", "%d-%d" % (first, last), "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=cli_env(color, workdir / "config"))
    assert proc.returncode == 0, "samroto track failed:\n%s\n%s" % (" ".join(cmd), proc.stderr[-3000:])
    mattes = {}
    for path in sorted(out.parent.iterdir()):
        frame = int(path.name.split(".")[1])
        channels, names = read_exr(path)
        mattes[frame] = {n[:-2]: channels[..., i] for i, n in enumerate(names) if n.endswith(".A")}
    _CLI[key] = mattes
    return mattes


def read_exr(path):
    """(pixels (H, W, C) float32, channel names) of an EXR."""
    import OpenImageIO as oiio

    buf = oiio.ImageBuf(str(path))
    assert not buf.has_error, buf.geterror()
    spec = buf.spec()
    pixels = np.asarray(buf.get_pixels(oiio.FLOAT)).reshape(spec.height, spec.width, spec.nchannels)
    return pixels, list(spec.channelnames)


def assert_same_as_cli(workdir, patterns, frames, source, prompts, direction, first, last, color):
    """The plugin's mattes (``patterns``: object name -> its matte sequence, one channel a
    file; ``frames``: those the plugin reported) are bit for bit those of `samroto track`
    on the same shot: the same frames, and on each one every object's alpha identical.
    Returns {object name: frames where it covers something} (so a test can tell the mattes
    are not all empty)."""
    from samroto.core.io.mattes import safe_name
    from samroto.core.io.patterns import format_frame_path

    cli = cli_track(workdir, source, prompts, direction, first, last, color)
    assert sorted(frames) == sorted(cli), ("frames", sorted(frames), sorted(cli))
    names = [o["name"] for o in prompts["objects"]]
    assert sorted(patterns) == sorted(names)
    covered = {}
    for name in names:
        covered[name] = []
        for frame in sorted(cli):
            pixels, _ = read_exr(format_frame_path(patterns[name], frame))
            got, want = pixels[..., 0], cli[frame][safe_name(name)]
            assert got.shape == want.shape, (name, frame, got.shape, want.shape)
            differ = int(np.count_nonzero(got.view(np.uint32) != want.view(np.uint32)))
            assert differ == 0, "%s, frame %d: %d pixels differ from samroto track's (max %g)" % (
                name, frame, differ, float(np.abs(got - want).max()))
            if got.max() > 0.5:
                covered[name].append(frame)
    return covered
