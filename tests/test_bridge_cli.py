"""`samroto serve --detach/--status/--stop`, idle shutdown, and the client starting the bridge."""

import getpass
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from samroto import __version__ as samroto_version
from samroto.bridge import discovery, protocol

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "data" / "sam2_parity"
MODEL_ARGS = ["--model", str(FIXTURE / "config.yaml"), "--checkpoint", str(FIXTURE / "checkpoint.pt")]


def samroto(cfg, *args, timeout=120):
    env = {**os.environ, "SAMROTO_CONFIG_DIR": str(cfg), "OMP_NUM_THREADS": "1", "SAMROTO_DEVICE": "cpu"}
    return subprocess.run([sys.executable, "-m", "samroto", "serve", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)


def test_detach_status_stop(tmp_path):
    out = samroto(tmp_path, "--detach", *MODEL_ARGS)
    assert out.returncode == 0, out.stderr
    info = discovery.live(tmp_path)
    assert info is not None and f"bridge pid {info['pid']}" in out.stdout
    try:
        st = samroto(tmp_path, "--status")
        assert st.returncode == 0 and f"pid {info['pid']}" in st.stdout and "config.yaml" in st.stdout, st
        report = samroto(tmp_path, "--status", "--json")   # issue 19, item 7: for scripts and monitoring
        assert report.returncode == 0, report
        got = json.loads(report.stdout)
        assert got["running"] and got["answering"] and got["pid"] == info["pid"]
        assert got["address"] == info["address"] and got["version"] == samroto_version
        assert got["protocol"] == f"{protocol.PROTOCOL_VERSION}.{protocol.PROTOCOL_MINOR}"
        assert got["model"]["name"].endswith("config.yaml") and got["device"] == "cpu"
        assert got["sessions"] == 0 and got["connections"] == 1 and got["queue"] == 0
        assert got["users"] == [{"user": getpass.getuser(), "own": True, "connections": 1, "sessions": 0}]
        again = samroto(tmp_path, *MODEL_ARGS)
        assert again.returncode == 3 and "already running" in again.stderr
        stop = samroto(tmp_path, "--stop")
        assert stop.returncode == 0 and "stopped" in stop.stdout, stop
        assert not protocol.pid_alive(info["pid"])
        assert not (tmp_path / "bridge.json").exists()
        assert not os.path.exists(info["address"]["path"])
    finally:
        if protocol.pid_alive(info["pid"]):
            os.kill(info["pid"], 9)
    none = samroto(tmp_path, "--status")
    assert none.returncode == 1 and "no bridge" in none.stdout
    none = samroto(tmp_path, "--status", "--json")
    assert none.returncode == 1 and json.loads(none.stdout) == {
        "running": False, "discovery": str(tmp_path / "bridge.json"), "discovery_state": "absent"}
    misuse = samroto(tmp_path, "--json")
    assert misuse.returncode == 2 and "--json goes with --status" in misuse.stderr


def test_client_starts_the_bridge_and_idle_shutdown(tmp_path):
    """A host plugin's only setting is the Python with samroto; the bridge exits when idle."""
    hostdir = tmp_path / "host"
    hostdir.mkdir()
    for name in ("client.py", "protocol.py"):
        shutil.copy(REPO / "bridge" / name, hostdir / name)
    cfg = tmp_path / "cfg"
    code = ("import sys, json; sys.path.insert(0, sys.argv[1]); import client\n"
            "c = client.Client.connect(python=sys.argv[2], config_dir=sys.argv[3], "
            "serve_args=json.loads(sys.argv[4]))\n"
            "print(json.dumps(c.status())); c.close()")
    serve_args = MODEL_ARGS + ["--idle-timeout", "1.5"]
    env = {"OMP_NUM_THREADS": "1", "SAMROTO_DEVICE": "cpu", "PATH": os.environ.get("PATH", "")}
    # two hosts starting it at the same moment end up on one bridge
    hosts = [subprocess.Popen([sys.executable, "-I", "-S", "-c", code, str(hostdir), sys.executable, str(cfg),
                               json.dumps(serve_args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env, cwd=REPO) for _ in range(2)]
    pids = set()
    for host in hosts:
        out, err = host.communicate(timeout=120)
        assert host.returncode == 0, err
        st = json.loads(out)
        assert st["ok"] and st["sessions"] == 0
        pids.add(st["pid"])
    assert len(pids) == 1, "one bridge per config dir"
    pid = pids.pop()
    assert (cfg / "bridge.log").exists()
    assert discovery.wait_gone(pid, 20), "the bridge must exit after bridge.idle_timeout without clients"
    assert not (cfg / "bridge.json").exists()


def test_serving_other_machines_needs_read_and_write_roots(tmp_path):
    """Beyond loopback the bridge only starts with the folders it may use (issue 21, item 4),
    and says so before it loads the model."""
    out = samroto(tmp_path, "--host", "0.0.0.0", "--read-root", str(tmp_path), *MODEL_ARGS, timeout=60)
    assert out.returncode == 2 and "--write-root" in out.stderr, out
    assert not (tmp_path / "bridge.json").exists()
