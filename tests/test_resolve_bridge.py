"""The Resolve plugin's tracking against a REAL `samroto serve` on the micro fixture
checkpoint (tests/data/sam2_parity), driven through the FAKE Resolve/Fusion: prompts on two
frames for two objects, progress, matte files with the clip's frame numbers, cancel. The
mattes are `samroto track`'s on the same shot, bit for bit (tests/plugin_parity.py): both
ways and forward, over the clip's used range plus handles (a sub-range of the movie)."""

import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "plugins" / "resolve"))

import plugin_parity  # noqa: E402
from fake_resolve import scene  # noqa: E402
from samroto_resolve import headless, prompts  # noqa: E402


@pytest.fixture(scope="module")
def bridge(tmp_path_factory):
    with plugin_parity.running_bridge(tmp_path_factory.mktemp("config")) as config:
        yield config


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


def same_as_cli(job, plan, tmp_path):
    """The job's mattes against `samroto track` on the plan's shot (the clip's file, the
    prompts read from the comp, its direction and frames, the clip's colour)."""
    names = {o["id"]: o["name"] for o in plan.prompts["objects"]}
    shot = plan.shot()
    return plugin_parity.assert_same_as_cli(tmp_path / "cli", {names[i]: p for i, p in job.patterns.items()},
                                            job.frames, shot.source, shot.prompts, shot.direction, shot.first,
                                            shot.last, shot.color)


@pytest.mark.parametrize("direction", ["both", "forward"])
def test_track_writes_and_imports_the_cli_mattes(bridge, tmp_path, direction):
    resolve, item = _clip(tmp_path)
    lines = []
    done, plan, imported = headless.track(resolve, direction, out=lines.append, poll=0.05, handles=1,
                                          config_dir=bridge, python=sys.executable)
    assert done.state == "done", done.summary()
    assert plan.range == (1, 8) and plan.prompt_frames == [3, 5]
    assert sorted(done.frames) == (list(range(1, 9)) if direction == "both" else list(range(3, 9)))
    for name in ("car", "hero"):
        for f in done.frames:
            assert os.path.isfile(plan.pattern.replace("{name}", name) % f)
    assert sorted(imported) == ["car", "hero"]
    assert any("%" in line for line in lines)  # progress was reported
    # the used range plus handles of the movie = `samroto track --range 1-8`, bit for bit
    covered = same_as_cli(done, plan, tmp_path)
    assert covered["car"] and covered["hero"]


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
