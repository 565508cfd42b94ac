"""samroto farm: a batch of shots as an Open Job Description template that `openjd run`
executes (mattes identical to `samroto track`'s) and as an OpenCue job spec built with
pyoutline whose every frame runs the same `samroto track` command."""

import json
import os
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest
import yaml

from samroto.core import sample
from samroto.farm import BatchError, load_batch, track_command

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data" / "sam2_parity"
SAMROTO = shutil.which("samroto", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "SAMROTO_FINISH_REFINE": "false"}


@pytest.fixture()
def batch(tmp_path):
    for name in ("sh010", "sh020"):
        sample.write_sample(tmp_path / name, 4, 96, 64)
    (tmp_path / "p.json").write_text(json.dumps({"version": 1, "objects": [
        {"id": 1, "name": "disc", "prompts": [{"frame": 1002, "box": [10, 10, 50, 40]}]}]}))
    shots = {"version": 1,
             "defaults": {"model": str(DATA / "config.yaml"), "checkpoint": str(DATA / "checkpoint.pt"),
                          "device": "cpu", "settings": {"finish.grow": 1}},
             "shots": [{"name": "sh010", "source": "sh010/plate.%04d.png", "prompts": "p.json",
                        "out": "farm/sh010/m.%04d.exr"},
                       {"name": "sh020", "source": "sh020/plate.%04d.png", "prompts": "p.json",
                        "out": "farm/sh020/m.%04d.exr", "direction": "backward", "range": "1001-1003"}]}
    path = tmp_path / "shots.json"
    path.write_text(json.dumps(shots))
    return path


def read_exr(path):
    buf = oiio.ImageBuf(str(path))
    assert not buf.has_error, buf.geterror()
    return buf.get_pixels(oiio.FLOAT)


def test_node_plan_fills_a_node_with_shots_as_memory_allows():
    from samroto.farm.node import node_plan

    assert node_plan(64, 256, 1.2) == (64, 1)  # tiny model: a shot per core
    assert node_plan(64, 128, 12) == (10, 6)  # memory-bound: fewer shots, the cores shared out
    assert node_plan(2, 24, 1.2) == (2, 1)
    with pytest.raises(ValueError):
        node_plan(0, 1, 1)


def test_batch_paths_resolve_and_bad_batches_are_named(batch, tmp_path):
    shots = load_batch(batch)
    assert [s.name for s in shots] == ["sh010", "sh020"]
    assert shots[0].source == str(tmp_path / "sh010" / "plate.%04d.png")  # absolute: workers start elsewhere
    assert shots[1].range == "1001-1003" and shots[0].settings == {"finish.grow": 1}
    argv = track_command(shots[1])
    assert argv[:4] == ["samroto", "--set", "finish.grow=1", "track"] and argv[argv.index("--range") + 1] == "1001-1003"
    bad = json.loads(batch.read_text())
    bad["shots"][1]["name"] = "sh010"
    batch.write_text(json.dumps(bad))
    with pytest.raises(BatchError, match="shot 2: the name 'sh010' is used twice"):
        load_batch(batch)
    bad["shots"][1].update(name="sh020", direction="sideways")
    batch.write_text(json.dumps(bad))
    with pytest.raises(BatchError, match=r"shot 2 \(sh020\): direction must be"):
        load_batch(batch)


def test_openjd_run_writes_the_mattes_samroto_track_writes(batch, tmp_path):
    template = tmp_path / "job.template.yaml"
    made = subprocess.run([SAMROTO, "farm", "openjd", str(batch), "--out", str(template)], env=ENV,
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    job = yaml.safe_load(template.read_text())
    assert [s["name"] for s in job["steps"]] == ["sh010", "sh020"]
    threads = job["steps"][0]["stepEnvironments"][0]["variables"]
    assert threads["OMP_NUM_THREADS"] == "{{Param.Threads}}" and job["parameterDefinitions"][1]["default"] == 4
    check = subprocess.run([shutil.which("openjd", path=str(Path(SAMROTO).parent)), "check", str(template)],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and "passes validation" in check.stdout, check.stdout + check.stderr
    for shot in load_batch(batch):
        ran = subprocess.run([shutil.which("openjd", path=str(Path(SAMROTO).parent)), "run", str(template),
                              "--step", shot.name, "-p", f"Samroto={SAMROTO}", "-p", "Threads=1"], env=ENV, capture_output=True,
                             text=True, timeout=300)
        assert ran.returncode == 0 and "Session ended successfully" in ran.stdout, ran.stdout[-3000:]
        # the same command by hand, into another folder
        argv = track_command(shot, SAMROTO)
        argv[argv.index("--out") + 1] = str(tmp_path / "by_hand" / shot.name / "m.%04d.exr")
        by_hand = subprocess.run(argv, env=ENV, capture_output=True, text=True, timeout=300)
        assert by_hand.returncode == 0, by_hand.stderr
        farm_files = sorted(os.listdir(tmp_path / "farm" / shot.name))
        assert farm_files == sorted(os.listdir(tmp_path / "by_hand" / shot.name))
        assert farm_files == {"sh010": [f"m.{f}.exr" for f in (1001, 1002, 1003, 1004)],
                              "sh020": [f"m.{f}.exr" for f in (1001, 1002)]}[shot.name]
        for name in farm_files:
            assert np.array_equal(read_exr(tmp_path / "farm" / shot.name / name),
                                  read_exr(tmp_path / "by_hand" / shot.name / name)), f"{shot.name} {name}"
    # a retried task (the farm runs the step again) keeps what is whole and rewrites nothing
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "farm").rglob("*.exr")}
    again = subprocess.run([shutil.which("openjd", path=str(Path(SAMROTO).parent)), "run", str(template),
                            "--step", "sh010", "-p", f"Samroto={SAMROTO}", "-p", "Threads=1"], env=ENV, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stdout[-3000:]
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "farm").rglob("*.exr")} == stamps


def test_opencue_spec_has_a_layer_per_shot_running_samroto_track(batch, tmp_path):
    from samroto.farm.opencue import job_spec  # opencue-pyoutline: a test dependency (pyproject [test])

    shots = load_batch(batch)
    spec = ET.fromstring(job_spec(shots, user="artist", samroto="/opt/samroto/bin/samroto").split("?>", 1)[1])
    layers = spec.findall("./job/layers/layer")
    assert [layer.get("name") for layer in layers] == ["sh010", "sh020"]
    for shot, layer in zip(shots, layers):
        assert shlex.split(layer.findtext("cmd")) == track_command(shot, "/opt/samroto/bin/samroto")
        assert layer.findtext("range") == "1-1"  # a shot is one task: frames of a shot are never split
    assert spec.findtext("./job/maxretries") == "3" and spec.findtext("user") == "artist"
