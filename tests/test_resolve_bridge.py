"""The Resolve plugin's tracking against a REAL `samroto serve` on the micro fixture
checkpoint (tests/data/sam2_parity), driven through the FAKE Resolve/Fusion: prompts on two
frames for two objects, progress, matte files with the clip's frame numbers, cancel."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "plugins" / "resolve"))

from fake_resolve import scene  # noqa: E402
from samroto_resolve import headless, prompts  # noqa: E402

DATA = ROOT / "tests" / "data" / "sam2_parity"


@pytest.fixture(scope="module")
def bridge(tmp_path_factory):
    config = tmp_path_factory.mktemp("config")
    env = dict(os.environ, SAMROTO_CONFIG_DIR=str(config), SAMROTO_DEVICE="cpu")
    proc = subprocess.Popen([sys.executable, "-m", "samroto", "serve", "--model", str(DATA / "config.yaml"),
                             "--checkpoint", str(DATA / "checkpoint.pt")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while not (config / "bridge.json").exists():
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail("samroto serve did not start: %s" % proc.stdout.read().decode(errors="replace"))
        time.sleep(0.2)
    yield str(config)
    proc.terminate()
    proc.wait(30)


def _clip(tmp_path):
    from test_io_support import write_clip
    path = write_clip(tmp_path / "shot010.mp4", "h264", frames=12)
    resolve, item = scene.build(path, frames=12, left=2, duration=6, width=256, height=128)
    comp = prompts.clip_comp(item)
    box = comp.AddTool("RectangleMask"); box.SetAttrs({"TOOLS_Name": "samroto_hero_box"})
    box.SetInput("Center", {1: 0.25, 2: 0.5}, 3); box.SetInput("Center", {1: 0.3, 2: 0.5}, 5)
    box.SetInput("Width", 0.2, 3); box.SetInput("Height", 0.2, 3)
    pos = comp.AddTool("EllipseMask"); pos.SetAttrs({"TOOLS_Name": "samroto_car_pos"})
    pos.SetInput("Center", {1: 0.75, 2: 0.5}, 3); pos.SetInput("Center", {1: 0.7, 2: 0.5}, 5)
    return resolve, item


def test_track_both_writes_and_imports_mattes(bridge, tmp_path):
    resolve, item = _clip(tmp_path)
    lines = []
    done, plan, imported = headless.track(resolve, "both", out=lines.append, poll=0.05, handles=1,
                                          config_dir=bridge, python=sys.executable)
    assert done.state == "done", done.summary()
    assert plan.range == (1, 8) and sorted(done.frames) == list(range(1, 9))
    for name in ("car", "hero"):
        for f in range(1, 9):
            assert os.path.isfile(plan.pattern.replace("{name}", name) % f)
    assert sorted(imported) == ["car", "hero"]
    assert any("%" in line for line in lines)  # progress was reported


def test_cancel_stops_and_keeps_finished_mattes(bridge, tmp_path):
    resolve, item = _clip(tmp_path)
    from samroto_resolve import workflow
    plan = workflow.Plan(resolve, "forward", handles=1, config_dir=bridge, python=sys.executable)
    j = plan.job().start()
    while j.running and not j.frames:
        j.poll(); time.sleep(0.01)
    j.cancel()
    j.wait(60)
    assert j.state in ("cancelled", "done")
    for f in j.frames:
        assert os.path.isfile(plan.pattern.replace("{name}", "hero") % f)
