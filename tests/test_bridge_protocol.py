"""Bridge pieces without a server: wire format, caps, discovery, shared memory, the work queue,
and the client's Python 3.7 / stdlib-only promise."""

import ast
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from samroto.bridge import discovery, protocol
from samroto.bridge.workqueue import Cancelled, Job, WorkQueue

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    a.settimeout(5)
    b.settimeout(5)
    yield a, b
    a.close()
    b.close()


def test_round_trip_with_payload(pair):
    a, b = pair
    payload = bytes(range(256)) * 1000

    def send():
        protocol.send_message(a, {"id": 7, "op": "put_frame", "frame": 1001}, payload)
        protocol.send_message(a, {"id": 8, "op": "ping"})

    sender = threading.Thread(target=send)
    sender.start()
    header, data = protocol.recv_message(b)
    assert header == {"id": 7, "op": "put_frame", "frame": 1001, "payload": len(payload)}
    assert bytes(data) == payload
    header, data = protocol.recv_message(b)
    assert header == {"id": 8, "op": "ping"} and data == b""
    sender.join()


def test_framing_errors(pair):
    a, b = pair
    a.sendall(b"HTTP/1.1")
    with pytest.raises(protocol.ProtocolError) as err:
        protocol.recv_message(b)
    assert err.value.code == "bad_message"

    a.sendall(protocol.PREFIX.pack(protocol.MAGIC, protocol.MAX_HEADER_BYTES + 1))
    with pytest.raises(protocol.ProtocolError) as err:
        protocol.recv_message(b)
    assert err.value.code == "too_large"

    a.sendall(protocol.encode({"op": "x"}, b"12345")[0])
    with pytest.raises(protocol.ProtocolError) as err:
        protocol.recv_message(b, max_payload=4)
    assert err.value.code == "too_large" and "bridge.max_payload_mb" in err.value.message

    for bad in (b"[1, 2]", b"\xff\xfe", b"{", b'{"payload": -1}', b'{"payload": "9"}'):
        a.sendall(protocol.PREFIX.pack(protocol.MAGIC, len(bad)) + bad)
        with pytest.raises(protocol.ProtocolError) as err:
            protocol.recv_message(b)
        assert err.value.code == "bad_message"


def test_truncated_message_and_clean_close(pair):
    a, b = pair
    a.sendall(protocol.PREFIX.pack(protocol.MAGIC, 50) + b'{"op":')
    a.shutdown(socket.SHUT_WR)
    with pytest.raises(protocol.ConnectionClosed, match="middle of a message"):
        protocol.recv_message(b)
    c, d = socket.socketpair()
    c.close()
    with pytest.raises(protocol.ConnectionClosed, match="^connection closed$"):
        protocol.recv_message(d)
    d.close()


def test_array_sizes():
    assert protocol.array_nbytes([2160, 4096, 3], "float32") == 2160 * 4096 * 3 * 4
    for shape, dtype in [([1, 2], "float64"), ([], "uint8"), ([0, 2], "uint8"), ([True, 2], "uint8"),
                         ("12", "uint8"), ([1 << 21, 2], "uint8"), ([1, 2, 3, 4, 5], "uint8")]:
        with pytest.raises(protocol.ProtocolError):
            protocol.array_nbytes(shape, dtype)


def test_error_codes_have_client_exceptions():
    from samroto.bridge import client

    for code in protocol.ERROR_CODES:
        exc = client.error_from({"code": code, "message": "m"})
        assert exc.code == code and type(exc) is not client.BridgeError and isinstance(exc, client.BridgeError)
    assert type(client.error_from({"code": "future_code", "message": "m"})) is client.BridgeError


def test_client_config_dir_matches_settings(monkeypatch, tmp_path):
    from samroto.core.settings import config_dir

    monkeypatch.delenv("SAMROTO_CONFIG_DIR", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert Path(protocol.config_dir()) == config_dir()
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert Path(protocol.config_dir()) == config_dir()
    monkeypatch.setenv("SAMROTO_CONFIG_DIR", str(tmp_path / "studio"))
    assert Path(protocol.config_dir()) == config_dir() == tmp_path / "studio"


@pytest.mark.parametrize("name", ["client.py", "protocol.py"])
def test_client_files_are_python37_stdlib_only(name):
    source = (REPO / "bridge" / name).read_text()
    ast.parse(source, feature_version=(3, 7))  # no walrus, no positional-only, no match...
    allowed = set(sys.stdlib_module_names) | {"protocol"}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module]
        else:
            continue
        for n in names:
            assert n.split(".")[0] in allowed | {"numpy"}, f"{name} imports {n}"
    assert "from __future__ import annotations" not in source  # 3.7 has it, but keep hints runtime-free


def test_client_imports_in_a_bare_python(tmp_path):
    import shutil

    for name in ("client.py", "protocol.py"):
        shutil.copy(REPO / "bridge" / name, tmp_path / name)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import client; "
            "assert 'numpy' not in sys.modules and 'samroto' not in sys.modules; "
            "print(client.PROTOCOL_VERSION, client.Client.connect.__name__)")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(tmp_path)], capture_output=True, text=True,
                         timeout=30, env={"SAMROTO_CONFIG_DIR": str(tmp_path / "cfg")})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(protocol.PROTOCOL_VERSION), "connect"]
    # with no bridge and no python to start one: a clear NotRunning
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import client\n"
            "try:\n    client.Client.connect()\nexcept client.NotRunning as e:\n    print('NOTRUNNING', e)")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(tmp_path)], capture_output=True, text=True,
                         timeout=30, env={"SAMROTO_CONFIG_DIR": str(tmp_path / "cfg")})
    assert "NOTRUNNING" in out.stdout and "samroto serve" in out.stdout, out


# --- discovery ------------------------------------------------------------------------------

def test_discovery_private_atomic_and_stale(tmp_path):
    info = {"protocol": 1, "address": {"family": "unix", "path": str(tmp_path / "none.sock")}, "pid": os.getpid(),
            "token": "t"}
    path = discovery.write(info, tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert protocol.read_discovery(str(path)) == info
    assert [p.name for p in tmp_path.iterdir()] == ["bridge.json"]  # no temp file left
    assert discovery.live(tmp_path) is None  # our pid is alive but nothing listens: stale
    discovery.remove(pid=os.getpid() + 1, directory=tmp_path)
    assert path.exists(), "another bridge's file is not ours to remove"
    assert discovery.clean_stale(tmp_path) and not path.exists()
    path.write_text("{half a file")
    assert protocol.read_discovery(str(path)) is None


def test_dead_pid_is_not_alive():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not protocol.pid_alive(proc.pid)
    assert protocol.pid_alive(os.getpid())


# --- shared memory ----------------------------------------------------------------------------

def _shm_exists(name):
    return os.path.exists(f"/dev/shm/{name}")


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="POSIX shared memory in /dev/shm")
def test_attaching_process_exit_does_not_unlink_segment(tmp_path):
    """Python < 3.13's resource tracker unlinks segments a process merely attached to."""
    seg = protocol.shm_create(1024)
    try:
        seg.buf[:5] = b"hello"
        code = ("import sys; sys.path.insert(0, sys.argv[1]); import protocol; s = protocol.shm_attach(sys.argv[2]); "
                "assert bytes(s.buf[:5]) == b'hello'; s.close()")
        shutil_dir = tmp_path / "c"
        shutil_dir.mkdir()
        for name in ("protocol.py",):
            (shutil_dir / name).write_text((REPO / "bridge" / name).read_text())
        out = subprocess.run([sys.executable, "-I", "-c", code, str(shutil_dir), seg.name], capture_output=True,
                             text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert "leaked" not in out.stderr and "resource_tracker" not in out.stderr
        time.sleep(0.2)
        assert _shm_exists(seg.name), "the segment must survive a process that only attached to it"
    finally:
        protocol.shm_unlink(seg)
    assert not _shm_exists(seg.name)


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="POSIX shared memory in /dev/shm")
def test_tracked_segments_die_with_a_killed_creator(tmp_path):
    code = ("import sys, time; sys.path.insert(0, sys.argv[1]); import protocol; "
            "s = protocol.shm_create(4096, tracked=True); print(s.name, flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-I", "-c", code, str(REPO / "bridge")], stdout=subprocess.PIPE,
                            text=True)
    name = proc.stdout.readline().strip()
    assert _shm_exists(name)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while _shm_exists(name) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _shm_exists(name), "the resource tracker must unlink a killed server's segments"


def test_segment_registry_cleans_up():
    from samroto.bridge.shm import SegmentRegistry
    import numpy as np

    reg = SegmentRegistry(max_outstanding=2)
    a = reg.create(np.arange(10, dtype=np.float32))
    b = reg.create(np.zeros(3, dtype=np.uint8))
    with pytest.raises(protocol.ProtocolError, match="release"):
        reg.create(np.zeros(3, dtype=np.uint8))
    seg = protocol.shm_attach(a)
    assert np.frombuffer(seg.buf, np.float32, count=10)[9] == 9
    seg.close()
    assert reg.release(a) and not reg.release(a)
    # a client's frame segment under its session's prefix, which the client then "loses"
    client_seg = protocol.shm_create(16, prefix="srb_s0123456789ab_")
    other = protocol.shm_create(16)  # any other name is read, never removed
    try:
        for seg in (client_seg, other):
            s, view = reg.read_client(seg.name, 16, prefix="srb_s0123456789ab_")
            view.release()
            s.close()
            seg.close()
        reg.close()
        for name in (a, b, client_seg.name):
            with pytest.raises(protocol.ProtocolError):
                protocol.shm_attach(name)
        protocol.shm_attach(other.name).close()
    finally:
        protocol.shm_unlink(other)


# --- work queue -----------------------------------------------------------------------------

def _steps(log, name, n, gate=None):
    for i in range(n):
        log.append((name, i))
        if gate is not None:
            gate.wait()
        yield
    return {"name": name}


def test_work_queue_round_robin_and_cancel():
    q = WorkQueue()
    log, done, errors = [], [], []
    try:
        hold = threading.Event()
        blocker = q.submit(Job("z", _steps(log, "z", 1, hold), done.append, errors.append))
        a = q.submit(Job("a", _steps(log, "a", 3), done.append, errors.append))
        b = q.submit(Job("b", _steps(log, "b", 3), done.append, errors.append))
        a2 = q.submit(Job("a", _steps(log, "a2", 1), done.append, errors.append))
        hold.set()
        deadline = time.monotonic() + 5
        while len(done) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        order = [n for n, _ in log]
        assert order == ["z", "a", "b", "a", "b", "a", "b", "a2"], order  # sessions take turns, per step
        assert [d["name"] for d in done] == ["z", "b", "a", "a2"] or [d["name"] for d in done][-1] == "a2"

        gate = threading.Event()
        log.clear()
        long = q.submit(Job("c", _steps(log, "c", 100, gate), done.append, errors.append))
        while not log:
            time.sleep(0.005)
        long.cancel()
        gate.set()
        deadline = time.monotonic() + 5
        while not errors and time.monotonic() < deadline:
            time.sleep(0.01)
        assert isinstance(errors[0], Cancelled) and len(log) <= 2  # stops within one step
    finally:
        q.stop()
    assert blocker and a and b and a2


# --- an in-process server on TCP with a stub engine: eviction, shutdown --------------------------

class _StubEngine:
    obj_ids: list = []


def test_tcp_server_evicts_idle_sessions_and_shuts_down(tmp_path):
    from samroto.bridge.client import Client, UnknownSession
    from samroto.bridge.server import BridgeServer, ServerConfig

    server = BridgeServer(ServerConfig(config_dir=str(tmp_path), unix=False, session_timeout=0.3, idle_timeout=0),
                          lambda frames, options: _StubEngine(), {"name": "stub"})
    address = server.bind()
    assert address["family"] == "tcp" and address["host"] == "127.0.0.1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        while discovery.live(tmp_path) is None:
            time.sleep(0.01)
        client = Client.connect(config_dir=str(tmp_path))
        session = client.open_session(first=5, last=6, width=4, height=2)
        session.put_frame(5, bytes(4 * 2 * 3), shape=[2, 4, 3], dtype="uint8")
        time.sleep(1.6)  # the sweep runs every second
        with pytest.raises(UnknownSession, match="evicted"):
            session.put_frame(6, bytes(4 * 2 * 3), shape=[2, 4, 3], dtype="uint8")
        assert client.status()["sessions"] == 0
        assert client.shutdown()["stopping"]
        thread.join(10)
        assert not thread.is_alive() and not (tmp_path / "bridge.json").exists()
    finally:
        server.stop()
        thread.join(10)


class _BuggyEngine:
    """An engine with one object whose every call fails the way ``fails`` says, from inside."""

    obj_ids = [1]

    def __init__(self, fails):
        self.fails = fails

    def add_prompt(self, *args, **kwargs):
        return self._deep_inside()

    def _deep_inside(self):
        raise self.fails


@pytest.fixture
def stub_bridge(tmp_path):
    """An in-process bridge on TCP whose engines are ``engine_factory(frames, options)``."""
    from samroto.bridge.client import Client
    from samroto.bridge.server import BridgeServer, ServerConfig

    factory = {"engine": None}
    server = BridgeServer(ServerConfig(config_dir=str(tmp_path), unix=False, idle_timeout=0),
                          lambda frames, options: factory["engine"](), {"name": "stub"})
    server.bind()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    while discovery.live(tmp_path) is None:
        time.sleep(0.01)
    client = Client.connect(config_dir=str(tmp_path))
    try:
        yield client, factory
    finally:
        client.close()
        server.stop()
        thread.join(10)


PROMPT_ON = {frame: {"version": 1, "objects": [{"id": 1, "prompts": [{"frame": frame, "points": [[1, 1]],
                                                                        "labels": [1]}]}]} for frame in (5, 9)}


@pytest.mark.parametrize("fails, code", [
    (KeyError("no object 7 in the bank"), "internal"),  # an engine bug, not the request's fault
    (IndexError("frame position 3 is outside 0..1"), "internal"),  # frames are checked before the engine
    (ValueError("shapes do not match"), "internal"),
    ("frame-source", "io_error"),  # core's refusal of a file it cannot read: the file's fault
])
def test_engine_failures_answer_internal_with_the_traceback_in_the_log(stub_bridge, caplog, fails, code):
    from samroto.bridge.client import BridgeError
    from samroto.core.io.errors import FrameSourceError

    client, factory = stub_bridge
    fails = FrameSourceError("plate.0005.exr: truncated file") if fails == "frame-source" else fails
    factory["engine"] = lambda: _BuggyEngine(fails)
    session = client.open_session(first=5, last=6, width=4, height=2)
    session.put_frame(5, bytes(4 * 2 * 3), shape=[2, 4, 3], dtype="uint8")
    with caplog.at_level(logging.INFO, logger="samroto.bridge"):
        with pytest.raises(BridgeError) as err:
            session.add_prompts(PROMPT_ON[5])
    assert err.value.code == code, err.value
    assert str(fails) in err.value.message
    logged = [r for r in caplog.records if r.exc_info and r.exc_info[1] is fails]
    if code == "internal":
        assert err.value.message.startswith(type(fails).__name__)
        assert "bridge's log has the traceback" in err.value.message
        assert len(logged) == 1 and logged[0].levelno == logging.ERROR
        text = caplog.text
        assert "Traceback" in text and "_deep_inside" in text, text
    else:
        assert not logged, "the request's own fault leaves no traceback"
    assert client.ping()["ok"]  # the bridge carries on


def test_bad_frame_numbers_are_refused_before_the_engine(stub_bridge):
    from samroto.bridge.client import BadPrompts, FrameOutOfRange

    client, factory = stub_bridge
    factory["engine"] = lambda: _BuggyEngine(AssertionError("the engine must not be called"))
    session = client.open_session(first=5, last=6, width=4, height=2)
    with pytest.raises(FrameOutOfRange):
        session.put_frame(9, bytes(4 * 2 * 3), shape=[2, 4, 3], dtype="uint8")
    with pytest.raises(BadPrompts, match="9"):
        session.add_prompts(PROMPT_ON[9])
    with pytest.raises(FrameOutOfRange):
        list(session.propagate(start=9))


def test_binding_beyond_loopback_needs_roots_then_tls(tmp_path):
    from samroto.bridge.server import BridgeServer, ConfigError, ServerConfig

    # beyond loopback only with the folders it may read and write (issue 21, item 4), and only
    # with TLS and per-user tokens (issue 22, item 4: tests/test_bridge_shared.py binds one)
    for roots, refusal in [({"read_roots": [str(tmp_path)]}, "read_roots and bridge.write_roots"),
                           ({"read_roots": [str(tmp_path / "in")], "write_roots": [str(tmp_path / "out")]},
                            "turn TLS on")]:
        server = BridgeServer(ServerConfig(config_dir=str(tmp_path), host="0.0.0.0", **roots), lambda f, o: None, {})
        try:
            with pytest.raises(ConfigError, match=refusal):
                server.bind()
        finally:
            server.queue.stop()


# --- the client's host-side helpers --------------------------------------------------------

def test_background_job_reports_done_cancel_and_errors():
    import threading

    from samroto.bridge.client import BackgroundJob

    def steps(emit, cancelled):
        for k in range(3):
            emit(("progress", k))
        return "done"

    job = BackgroundJob(steps).start()
    job.join(5)
    assert job.take() == [("progress", 0), ("progress", 1), ("progress", 2), ("done",)]

    started = threading.Event()

    def until_cancelled(emit, cancelled):
        started.set()
        cancelled.wait(5)

    job = BackgroundJob(until_cancelled).start()
    started.wait(5)
    job.cancel()
    job.join(5)
    assert job.take() == [("cancelled",)]

    class Known(Exception):
        pass

    def fails(kind):
        def work(emit, cancelled):
            raise kind("disk full")
        return work

    job = BackgroundJob(fails(Known), known_errors=(Known,)).start()
    job.join(5)
    assert job.take() == [("error", "disk full")]
    job = BackgroundJob(fails(KeyError), what="Tracking").start()
    job.join(5)
    assert job.take() == [("error", "Tracking failed: KeyError: 'disk full'")]


def test_cancel_check_accepts_events_and_callables_only():
    import threading

    from samroto.bridge.client import cancel_check

    event = threading.Event()
    check = cancel_check(event)
    assert check() is False
    event.set()
    assert check() is True
    assert cancel_check(None)() is False
    assert cancel_check(lambda: True)() is True
    with pytest.raises(TypeError):
        cancel_check("yes")
