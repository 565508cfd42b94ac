"""One shot, one set of mattes: the same shot and prompts (points, a box, an RGBA PNG mask,
an EXR mask; forward, backward, both, a sub-range) give bit-identical mattes through
`samroto track` and through the bridge client against a real `samroto serve`. Both run as
subprocesses with the same settings and thread count, as a user and a plugin would run
them. (Each plugin's own code path is compared with `samroto track` in its bridge test:
tests/test_nuke_bridge.py, tests/test_resolve_bridge.py, tests/test_blender.py.)

What this catches, each measured on the code before core/shot: the bridge read an RGBA mask
by the max over all channels (80 pixels inside where the CLI's alpha had 40), refused EXR
masks, started a backward track at the last prompted frame where the CLI started at the
first, and finished the matte from different logits."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from samroto.bridge import discovery
from samroto.bridge.client import Client
from samroto.core import sample
from samroto.core.prompts import from_dict
from samroto.core.shot.provenance import prompts_digest


def prompts_sha256(document):
    return prompts_digest(from_dict(document))

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data" / "sam2_parity"
MODEL = ["--model", str(DATA / "config.yaml"), "--checkpoint", str(DATA / "checkpoint.pt")]
W, H, N = 112, 80, 6


def write_image(path, pixels, fmt):
    spec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], pixels.shape[2], fmt)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec), oiio.geterror()
    out.write_image(np.ascontiguousarray(pixels, np.float32))
    out.close()


@pytest.fixture(scope="module")
def shot(tmp_path_factory):
    """A 6-frame plate (1001-1006), prompts of every kind, and the settings both sides use."""
    root = tmp_path_factory.mktemp("shot")
    plate = sample.write_sample(root / "plate", N, W, H)
    (disc, square) = sample.shape_centres(2, N, W, H)
    roto = np.zeros((H, W, 4), np.float32)  # an RGBA roto export: colour spills past the alpha
    x, y = int(square[0]), int(square[1])
    roto[y - 8:y + 8, x - 8:x + 8, :3] = 1.0
    roto[y - 8:y, x - 8:x + 8, 3] = 1.0
    write_image(root / "square.png", roto, oiio.UINT8)
    exr = np.zeros((H, W, 1), np.float32)
    (disc4, _) = sample.shape_centres(4, N, W, H)
    exr[int(disc4[1]) - 6:int(disc4[1]) + 6, int(disc4[0]) - 6:int(disc4[0]) + 6] = 1.0
    write_image(root / "disc.exr", exr, oiio.HALF)
    prompts = {"version": 1, "objects": [
        {"id": 1, "name": "disc", "prompts": [
            {"frame": 1002, "points": [[disc[0], disc[1]], [5, 5]], "labels": [1, 0]},
            {"frame": 1005, "mask": str(root / "disc.exr")}]},
        {"id": 2, "name": "square", "prompts": [
            {"frame": 1003, "mask": str(root / "square.png")},
            {"frame": 1004, "box": [x - 12, y - 12, x + 12, y + 12]}]}]}
    (root / "prompts.json").write_text(json.dumps(prompts))
    env = {**os.environ, "SAMROTO_CONFIG_DIR": str(root / "config"), "SAMROTO_DEVICE": "cpu",
           "OMP_NUM_THREADS": "1", "SAMROTO_FINISH_REFINE": "false", "SAMROTO_FINISH_GROW": "1.5"}
    return {"root": root, "plate": plate, "prompts": prompts, "env": env}


@pytest.fixture(scope="module")
def bridge(shot):
    serve = subprocess.run([sys.executable, "-m", "samroto", "serve", "--detach", *MODEL], env=shot["env"],
                           capture_output=True, text=True, timeout=120, cwd=REPO)
    assert serve.returncode == 0, serve.stderr
    client = Client.connect(config_dir=str(shot["root"] / "config"), start=False)
    yield client
    info = discovery.live(str(shot["root"] / "config"))
    try:
        client.shutdown()
    finally:
        client.close()
        if info is not None:
            discovery.wait_gone(info["pid"], 20)


def read_mattes(folder, prefix):
    """{frame: {channel: pixels}} of every EXR matte with that prefix."""
    out = {}
    for path in sorted(Path(folder).glob(f"{prefix}.*.exr")):
        buf = oiio.ImageBuf(str(path))
        assert not buf.has_error, buf.geterror()
        pixels = buf.get_pixels(oiio.FLOAT)
        out[int(path.name.split(".")[1])] = {c: pixels[..., i] for i, c in enumerate(buf.spec().channelnames)}
    return out


CASES = {
    "forward": ("forward", None),
    "backward": ("backward", None),
    "both": ("both", None),
    "both over 1002-1005": ("both", (1002, 1005)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_track_and_bridge_give_the_same_mattes(case, shot, bridge):
    direction, frames = CASES[case]
    out = shot["root"] / case.replace(" ", "_")
    cmd = [sys.executable, "-m", "samroto", "track", shot["plate"], *MODEL, "--prompts",
           str(shot["root"] / "prompts.json"), "--direction", direction, "--out", str(out / "cli.%04d.exr"), "--quiet"]
    if frames:
        cmd += ["--range", f"{frames[0]}-{frames[1]}"]
    run = subprocess.run(cmd, env=shot["env"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert run.returncode == 0, run.stderr

    first, last = frames or (None, None)
    state = bridge.track_shot(shot["plate"], shot["prompts"], direction=direction, first=first, last=last,
                              mattes={"transport": "file", "pattern": str(out / "bridge.%04d.exr")})
    assert state == "done"

    cli, through_bridge = read_mattes(out, "cli"), read_mattes(out, "bridge")
    lo, hi = frames or (1001, 1000 + N)
    expected = {"forward": range(1002, hi + 1), "backward": range(lo, 1005 + 1), "both": range(lo, hi + 1)}[direction]
    assert sorted(cli) == list(expected), "the one rule: forward from the first prompt, backward from the last"
    assert sorted(through_bridge) == sorted(cli)
    for frame in cli:
        assert sorted(cli[frame]) == sorted(through_bridge[frame]) == ["A", "disc.A", "square.A"]
        for channel, pixels in cli[frame].items():
            assert np.array_equal(pixels, through_bridge[frame][channel]), f"frame {frame} {channel} differs"
    # and the files say the same about their making (core.shot.provenance, the plate's format)
    for name in ("cli", "bridge"):
        spec = oiio.ImageInput.open(str(out / f"{name}.{min(cli):04d}.exr")).spec()
        assert spec.getattribute("samroto/prompts_sha256") == prompts_sha256(shot["prompts"])
        assert spec.getattribute("samroto/frames") == (f"{frames[0]}-{frames[1]}" if frames else f"1001-{1000 + N}")
        assert (spec.full_width, spec.full_height) == (W, H)
    # the mattes say something (a random-weight model: not every object is found on every frame)
    coverage = [float(cli[f][c].mean()) for f in cli for c in ("disc.A", "square.A")]
    assert max(coverage) > 0.005 and min(coverage) < 0.5
