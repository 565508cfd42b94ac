"""`samroto doctor` as a user runs it: a real subprocess with its own config, cache and home."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from samroto.bridge import discovery
from samroto.core.precision import cpu_has_native_bf16

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def env(tmp_path):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SAMROTO_")}
    environ.update(SAMROTO_CONFIG_DIR=str(tmp_path / "config"), SAMROTO_MODELS_CACHE_DIR=str(tmp_path / "cache"),
                   HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "home" / ".config"),
                   APPDATA=str(tmp_path / "home" / "AppData"))
    (tmp_path / "home").mkdir()
    return environ


def samroto(env, *args):
    return subprocess.run([sys.executable, "-m", "samroto", *args], env=env, capture_output=True,
                          text=True, timeout=180)


def add_model(env, tmp_path, name="ft"):
    ckpt = tmp_path / f"{name}.pt"
    ckpt.write_bytes(b"w" * 2048)
    config = ROOT / "core" / "configs" / "sam2.1_hiera_s.yaml"
    added = samroto(env, "models", "add", name, "--checkpoint", str(ckpt), "--config", str(config))
    assert added.returncode == 0, added.stderr


def test_doctor_reports_and_fails_without_the_default_model(env, tmp_path):
    result = samroto(env, "doctor")
    assert result.returncode == 1, result.stdout + result.stderr  # `samroto track` could not run as it is
    out = result.stdout
    assert f"python        {sys.version.split()[0]}" in out
    assert "torch         " in out and "tensor test ok" in out
    assert "numpy" in out and "OpenImageIO" in out
    assert f"checkpoints (cache {tmp_path / 'cache'})" in out
    assert str(tmp_path / "config" / "settings.yaml") in out
    assert "default model sam2.1_hiera_base_plus not present" in out
    for host in ("nuke", "blender", "resolve"):
        assert f"samroto install {host}" in out  # nothing installed in this fresh home
    assert out.rstrip().splitlines()[-1].startswith(
        "result: FAIL - the default model sam2.1_hiera_base_plus is not downloaded: run `samroto models download")
    add_model(env, tmp_path)
    result = samroto(env, "doctor", "--set", "model=ft")  # --set after the command, too
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().splitlines()[-1].startswith("result: OK - the engine can run on ")


def test_doctor_json_sees_models_and_installed_plugins(env, tmp_path):
    add_model(env, tmp_path)
    (tmp_path / "cache" / "sam2.1_hiera_large.pt.part").write_bytes(b"half")
    # The Blender add-on as `samroto install blender` lays it out (Blender's per-user add-ons dir).
    addon = tmp_path / "home" / ".config" / "blender" / "4.2" / "scripts" / "addons" / "samroto_blender"
    addon.mkdir(parents=True)
    (addon / "__init__.py").write_text("bl_info = {'name': 'samroto'}\n")

    result = samroto(env, "--set", "model=ft", "doctor", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["problems"] == []
    assert report["torch"]["tensor_test"] == "ok"
    # auto: bfloat16 only where this CPU multiplies bfloat16 in hardware (docs/speed.md)
    want = "bfloat16" if report["torch"]["device"] == "cuda" or cpu_has_native_bf16() else "float32"
    assert (report["torch"]["precision_setting"], report["torch"]["precision"]) == ("auto", want)
    assert report["torch"]["cpu_native_bf16"] is cpu_has_native_bf16()
    assert report["torch"]["build"] in ("CPU only",) or report["torch"]["build"].startswith(("CUDA", "ROCm"))
    assert {lib["module"]: bool(lib["version"]) for lib in report["libraries"]}["numpy"] is True
    assert [m["name"] for m in report["checkpoints"]["models"]] == ["ft"]
    assert report["checkpoints"]["partial"] == ["sam2.1_hiera_large.pt.part"]
    assert report["settings_file"] == {"path": str(tmp_path / "config" / "settings.yaml"), "exists": False}
    assert report["plugins"]["blender"]["installed"] is True
    assert report["plugins"]["blender"]["path"] == str(addon)
    assert report["plugins"]["nuke"]["installed"] is False
    assert report["bridge"]["state"] in ("unknown", "not running")


def test_doctor_fails_with_a_reason_when_the_device_cannot_run(env):
    result = samroto(env, "--set", "device=cuda:99", "doctor")
    assert result.returncode == 1
    assert "result: FAIL - torch cannot compute on device 'cuda:99'" in result.stdout
    assert "--set device=cpu" in result.stdout


def test_doctor_reads_bridge_discovery_without_showing_the_token(env, tmp_path, monkeypatch):
    monkeypatch.setenv("SAMROTO_CONFIG_DIR", env["SAMROTO_CONFIG_DIR"])
    path = discovery.path()
    assert path.parent == tmp_path / "config"
    path.parent.mkdir(parents=True, exist_ok=True)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        path.write_text(json.dumps({"address": {"family": "tcp", "host": "127.0.0.1", "port": port},
                                    "pid": os.getpid(), "token": "SECRET-TOKEN-123"}))
        result = samroto(env, "doctor")
    assert result.returncode == 1, result.stderr  # no default model in this fresh cache
    assert "SECRET-TOKEN-123" not in result.stdout
    assert f"bridge        listening 127.0.0.1:{port} (pid {os.getpid()})" in result.stdout
    # The bridge went away but left its file behind.
    result = samroto(env, "doctor", "--json")
    bridge = json.loads(result.stdout)["bridge"]
    assert bridge["state"].startswith("stale") and "SECRET-TOKEN-123" not in result.stdout
