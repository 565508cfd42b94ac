"""`samroto models ...` as a user runs it: real subprocesses, a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "core" / "configs" / "sam2.1_hiera_t.yaml"


@pytest.fixture
def env(tmp_path):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SAMROTO_")}
    environ.update(SAMROTO_CONFIG_DIR=str(tmp_path / "config"), SAMROTO_MODELS_CACHE_DIR=str(tmp_path / "cache"),
                   HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "home" / ".config"))
    return environ


def samroto(env, *args, check_rc=None):
    result = subprocess.run([sys.executable, "-m", "samroto", *args], env=env, capture_output=True,
                            text=True, timeout=120)
    if check_rc is not None:
        assert result.returncode == check_rc, result.stdout + result.stderr
    return result


def test_list_shows_all_official_models(env, tmp_path):
    out = samroto(env, "models", "list", check_rc=0).stdout
    assert f"# cache: {tmp_path / 'cache'}" in out
    lines = [line.split() for line in out.splitlines()[2:]]
    assert [cols[0] for cols in lines] == [
        "sam2.1_hiera_tiny", "sam2.1_hiera_small", "sam2.1_hiera_base_plus", "sam2.1_hiera_large",
        "sam2_hiera_tiny", "sam2_hiera_small", "sam2_hiera_base_plus", "sam2_hiera_large"]
    large = next(cols for cols in lines if cols[0] == "sam2.1_hiera_large")
    assert large[1:5] == ["898", "MB", "no", "-"]
    assert large[5] == "https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_large.pt"
    data = json.loads(samroto(env, "models", "list", "--json", check_rc=0).stdout)
    assert {m["name"]: m["size"] for m in data["models"]}["sam2.1_hiera_tiny"] == 156_008_466


def test_path_of_missing_model_says_how_to_get_it(env):
    result = samroto(env, "models", "path", "sam2.1_hiera_large", check_rc=2)
    assert "samroto models download sam2.1_hiera_large" in result.stderr


def test_add_list_path_verify_round_trip(env, tmp_path):
    ckpt = tmp_path / "shots_ft.pt"
    ckpt.write_bytes(b"fine-tuned weights" * 1000)
    samroto(env, "models", "add", "shots_ft", "--checkpoint", str(ckpt), "--config", str(CONFIG), check_rc=0)
    listing = samroto(env, "models", "list", check_rc=0).stdout
    row = next(line.split() for line in listing.splitlines() if line.startswith("shots_ft"))
    assert row[3:6] == ["yes", "yes", f"local:"] and row[6] == str(CONFIG)
    assert samroto(env, "models", "path", "shots_ft", check_rc=0).stdout.strip() == str(ckpt)
    assert "shots_ft: ok" in samroto(env, "models", "verify", "shots_ft", check_rc=0).stdout
    ckpt.write_bytes(b"FINE-TUNED WEIGHTS" * 1000)  # same size, different bytes
    result = samroto(env, "models", "verify", check_rc=1)
    assert "shots_ft: CORRUPTED" in result.stdout


def test_add_with_missing_config_is_a_clear_error(env, tmp_path):
    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(b"w")
    result = samroto(env, "models", "add", "m", "--checkpoint", str(ckpt), "--config",
                     str(tmp_path / "nope.yaml"), check_rc=2)
    assert "nope.yaml does not exist" in result.stderr


def test_download_from_a_mirror_end_to_end(env, tmp_path):
    # sam2_hiera_small has no confirmed size, so any payload is accepted: a real CLI download.
    mirror = tmp_path / "mirror"
    (mirror / "072824").mkdir(parents=True)
    payload = os.urandom(200_000)
    (mirror / "072824" / "sam2_hiera_small.pt").write_bytes(payload)
    handler = functools.partial(_QuietHandler, directory=str(mirror))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        out = samroto(env, "--set", f"models.url_base={base}", "models", "download", "sam2_hiera_small",
                      check_rc=0).stdout
    finally:
        server.shutdown()
        server.server_close()
    path = tmp_path / "cache" / "sam2_hiera_small.pt"
    assert out.strip() == str(path)
    assert path.read_bytes() == payload
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    assert manifest["models"]["sam2_hiera_small"]["sha256"] == hashlib.sha256(payload).hexdigest()
    assert samroto(env, "models", "path", "sam2_hiera_small", check_rc=0).stdout.strip() == str(path)


def test_download_offline_names_the_url_and_the_way_out(env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env["SAMROTO_MODELS_URL_BASE"] = f"http://127.0.0.1:{port}/sam"
    result = samroto(env, "models", "download", "sam2.1_hiera_tiny", check_rc=2)
    assert f"http://127.0.0.1:{port}/sam/092824/sam2.1_hiera_tiny.pt" in result.stderr
    assert "models.url_base" in result.stderr and "samroto models add" in result.stderr


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
