"""The bridge under hostile or careless clients (issue 21): deadlines, caps, what it may
unlink, read and write, the size of what it answers, and the codes of odd requests.

In-process bridges with a stub engine (no model: seconds, not minutes), on the local socket
or TCP; the deadlines are shortened by patching the connection module's constants. The
end-to-end fuzz against a real `samroto serve` is in test_bridge_server.py.
"""

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from samroto.bridge import connection, discovery, protocol

REPO = Path(__file__).resolve().parent.parent
HAS_SHM = os.path.isdir("/dev/shm")


class _StubEngine:
    """Enough of a VideoSession for requests that are refused before the engine works."""

    obj_ids: list = []


@pytest.fixture
def make_bridge(tmp_path):
    """make_bridge(**ServerConfig fields) -> a running in-process BridgeServer."""
    from samroto.bridge.server import BridgeServer, ServerConfig

    running = []

    def make(finisher=None, **config):
        config = {"unix": True, "idle_timeout": 0, **config}
        cfg_dir = tmp_path / f"cfg{len(running)}"
        server = BridgeServer(ServerConfig(config_dir=str(cfg_dir), **config), lambda frames, options: _StubEngine(),
                              {"name": "stub"}, finisher_factory=finisher)
        server.bind()
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        running.append((server, thread))
        deadline = time.monotonic() + 10
        while discovery.live(cfg_dir) is None:
            assert time.monotonic() < deadline, "the bridge did not come up"
            time.sleep(0.01)
        server.config_dir = cfg_dir
        return server

    yield make
    for server, thread in running:
        server.stop()
        thread.join(10)


def connect(server, hello=True, timeout=10.0):
    address = server.address
    if address["family"] == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(address["path"])
    else:
        sock = socket.create_connection((address["host"], address["port"]))
    sock.settimeout(timeout)
    if hello:
        protocol.send_message(sock, {"id": 0, "op": "hello", "version": 1, "token": server.token})
        reply, _ = protocol.recv_message(sock)
        assert reply["ok"], reply
    return sock


def call(sock, header, payload=b""):
    """Send a request and return its final reply (events on the way are skipped)."""
    protocol.send_message(sock, header, payload)
    while True:
        reply, _ = protocol.recv_message(sock)
        if "ok" in reply and reply.get("id") == header.get("id"):
            return reply


def hung_up(sock, within):
    """Whether the bridge closes ``sock`` within ``within`` seconds (messages on the way are read)."""
    sock.settimeout(within)
    try:
        while True:
            protocol.recv_message(sock)
    except protocol.ConnectionClosed:
        return True
    except ConnectionResetError:
        return True
    except (socket.timeout, OSError):
        return False


def wait_for(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def push_session(sock, first=1, last=3, width=8, height=4, rid="open"):
    reply = call(sock, {"id": rid, "op": "open_session", "source": {"push": True, "first": first, "last": last,
                                                                    "width": width, "height": height}})
    assert reply["ok"], reply
    return reply


# --- item 1: failures before hello close the connection; accept() failures never stop the bridge ------

@pytest.mark.parametrize("rid", [1.5, [1], "x" * 201, {"a": 1}, True])
def test_a_failed_hello_closes_the_connection(make_bridge, rid):
    server = make_bridge()
    socks = []
    for _ in range(10):
        sock = connect(server, hello=False)
        protocol.send_message(sock, {"id": rid, "op": "hello", "version": 1, "token": server.token})
        socks.append(sock)
    for sock in socks:
        reply, _ = protocol.recv_message(sock)
        assert reply["ok"] is False and reply["error"]["code"] == "bad_request"
        assert hung_up(sock, 3.0), "a connection that failed its hello must be closed"
        sock.close()
    assert wait_for(lambda: not server.connections), f"{len(server.connections)} connections left"


class _FailingListener:
    """A listening socket whose next accept() calls fail as at the file-descriptor limit."""

    def __init__(self, real, failures):
        self.real, self.failures = real, failures

    def accept(self):
        if self.failures:
            self.failures -= 1
            raise OSError(24, "Too many open files")
        return self.real.accept()

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_accept_failures_back_off_and_serve_on(make_bridge, caplog):
    server = make_bridge()
    with caplog.at_level(logging.WARNING, logger="samroto.bridge"):
        server._listener = _FailingListener(server._listener, 4)
        with connect(server) as sock:  # waits in the backlog while accept() fails
            assert call(sock, {"id": 1, "op": "ping"})["ok"]
    assert server._listener.failures == 0
    assert "Too many open files" in caplog.text and "retrying" in caplog.text


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_NOFILE")
def test_running_out_of_file_descriptors_does_not_stop_the_bridge(tmp_path):
    """A real bridge process limited to 64 descriptors, given more connections than that."""
    script = (
        "import resource, sys, threading\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))\n"
        "from samroto.bridge.server import BridgeServer, ServerConfig\n"
        "caps = dict(max_connections=500, max_connections_per_peer=500, max_unauthenticated=500)\n"
        "caps = {k: v for k, v in caps.items() if k in ServerConfig.__dataclass_fields__}\n"
        "server = BridgeServer(ServerConfig(config_dir=sys.argv[1], unix=True, idle_timeout=0, **caps),\n"
        "                      lambda f, o: None, {'name': 'stub'})\n"
        "server.bind()\n"
        "server.serve_forever()\n")
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stderr=subprocess.PIPE, text=True)
    socks = []
    try:
        assert wait_for(lambda: discovery.live(tmp_path) is not None, 30), "the bridge did not come up"
        info = discovery.live(tmp_path)
        for _ in range(100):  # each costs the bridge a descriptor (and two threads) once accepted
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            deadline = time.monotonic() + 2
            while True:
                try:
                    sock.connect(info["address"]["path"])
                    break
                except BlockingIOError:  # the backlog is full: wait for the bridge to accept
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.02)
            else:
                continue
            if time.monotonic() > deadline:  # it accepts no more: out of descriptors
                sock.close()
                break
            socks.append(sock)
        assert len(socks) > 64
        time.sleep(1.0)
        assert proc.poll() is None, proc.stderr.read()
        for sock in socks:
            sock.close()
        socks.clear()
        deadline = time.monotonic() + 15
        while True:  # served again once descriptors are free
            try:
                from samroto.bridge.client import Client
                with Client(info["address"], info["token"], timeout=5) as client:
                    assert client.ping()["ok"]
                break
            except Exception:  # noqa: BLE001
                assert time.monotonic() < deadline and proc.poll() is None, "the bridge stopped serving"
                time.sleep(0.2)
    finally:
        for sock in socks:
            sock.close()
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert "Too many open files" in err, err  # it did hit the limit, and said so


def test_connection_caps(make_bridge):
    server = make_bridge(unix=False, max_connections=6, max_connections_per_peer=3, max_unauthenticated=2)
    held = [connect(server) for _ in range(3)]  # one peer (127.0.0.1), at its cap
    extra = connect(server, hello=False)
    reply, _ = protocol.recv_message(extra)
    assert reply["error"]["code"] == "busy" and "127.0.0.1" in reply["error"]["message"]
    assert hung_up(extra, 2.0)
    held.pop().close()
    assert wait_for(lambda: len(server.connections) == 2)
    # before hello at most two at once
    server.config.max_connections_per_peer = 10
    waiting = [connect(server, hello=False) for _ in range(2)]
    assert wait_for(lambda: len(server.connections) == 4)
    extra = connect(server, hello=False)
    reply, _ = protocol.recv_message(extra)
    assert reply["error"]["code"] == "busy" and "hello" in reply["error"]["message"]
    for sock in waiting + held:
        sock.close()


# --- item 2: small buffers and deadlines before (and after) hello ----------------------------------------

def test_before_hello_a_header_is_small(make_bridge):
    server = make_bridge()
    sock = connect(server, hello=False)
    sock.sendall(protocol.PREFIX.pack(protocol.MAGIC, 4 << 20))  # announces 4 MiB, sends nothing more
    reply, _ = protocol.recv_message(sock)
    assert reply["error"]["code"] == "too_large"
    assert hung_up(sock, 2.0)
    # a payload before hello: refused too
    sock = connect(server, hello=False)
    protocol.send_message(sock, {"id": 1, "op": "hello", "version": 1, "token": server.token}, b"x" * 100)
    reply, _ = protocol.recv_message(sock)
    assert reply["error"]["code"] == "too_large" and hung_up(sock, 2.0)


def drip(sock, data, interval, stop):
    try:
        for i in range(len(data)):
            if stop.is_set():
                return
            sock.sendall(data[i:i + 1])
            time.sleep(interval)
    except OSError:
        pass


def test_a_drip_fed_hello_is_cut_at_the_deadline(make_bridge, monkeypatch):
    monkeypatch.setattr(connection, "HELLO_TIMEOUT_S", 1.0)
    server = make_bridge()
    hello = protocol.encode({"id": 1, "op": "hello", "version": 1, "token": server.token})[0]
    sock = connect(server, hello=False)
    stop = threading.Event()
    threading.Thread(target=drip, args=(sock, hello, 0.05, stop), daemon=True).start()  # 7 s in all
    t0 = time.monotonic()
    try:
        assert hung_up(sock, 4.0), "a hello drip-fed past its deadline must be cut off"
        assert time.monotonic() - t0 < 3.0
    finally:
        stop.set()
        sock.close()
    silent = connect(server, hello=False)  # and one that says nothing at all
    assert hung_up(silent, 4.0)
    assert wait_for(lambda: not server.connections)


def test_a_drip_fed_message_is_cut_after_hello_but_idling_is_fine(make_bridge, monkeypatch):
    monkeypatch.setattr(connection, "MESSAGE_TIMEOUT_S", 1.0)
    server = make_bridge()
    idle = connect(server)
    sock = connect(server)
    ping = protocol.encode({"id": 1, "op": "ping", "pad": "x" * 200})[0]
    stop = threading.Event()
    threading.Thread(target=drip, args=(sock, ping, 0.05, stop), daemon=True).start()
    try:
        assert hung_up(sock, 4.0), "a message drip-fed past its deadline must be cut off"
    finally:
        stop.set()
        sock.close()
    time.sleep(0.5)
    assert call(idle, {"id": 2, "op": "ping"})["ok"], "a connection idle between messages stays"
    idle.close()


def _rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="Linux /proc")
def test_an_announced_payload_is_not_allocated_up_front(make_bridge):
    server = make_bridge()
    socks = []
    before = _rss_mib()
    for _ in range(2):
        sock = connect(server)
        head = protocol.encode({"id": 1, "op": "ping"}, b"")[0]
        header = json.dumps({"id": 1, "op": "ping", "payload": 256 << 20}).encode()
        sock.sendall(protocol.PREFIX.pack(protocol.MAGIC, len(header)) + header + b"\0" * 4096)
        socks.append(sock)
        del head
    time.sleep(0.5)
    grown = _rss_mib() - before
    for sock in socks:
        sock.close()
    assert grown < 64, f"two announced 256 MiB payloads cost {grown:.0f} MiB before they arrived"


# --- item 3: shared memory: only the bridge's own segments and its sessions' are unlinked -----------------

def _shm_exists(name):
    return os.path.exists(f"/dev/shm/{name}")


@pytest.mark.skipif(not HAS_SHM, reason="POSIX shared memory in /dev/shm")
def test_only_segments_of_the_session_prefix_are_unlinked(make_bridge):
    server = make_bridge()
    frame = 8 * 4 * 3
    victims = [protocol.shm_create(frame) for _ in range(4)]  # other programs' segments
    try:
        sock = connect(server)
        opened = push_session(sock)
        requests = [
            {"shm": victims[0].name},  # valid, read: fine, but never unlinked
            {"shm": victims[1].name, "shape": [3, 8, 3]},  # fails its check (not the session's size)
            {"shm": victims[2].name, "frame": 99},  # fails before the segment is looked at
            {"shm": victims[3].name, "session": "s000000000000"},  # another session
            {"shm": "/" + victims[0].name},
        ]
        codes = []
        for i, extra in enumerate(requests):
            header = {"id": i, "op": "put_frame", "session": opened["session"], "frame": 1, "shape": [4, 8, 3],
                      "dtype": "uint8", **extra}
            reply = call(sock, header)
            codes.append(reply["error"]["code"] if not reply["ok"] else "ok")
        assert codes == ["ok", "bad_frame", "frame_out_of_range", "unknown_session", "ok"], codes
        sock.close()
        assert wait_for(lambda: not server.connections)
        time.sleep(0.2)
        for victim in victims:
            assert _shm_exists(victim.name), f"{victim.name} was not the bridge's to remove"

        # a segment under the session's prefix is removed with the session (the client died)
        sock = connect(server)
        opened = push_session(sock)
        prefix = opened["shm_prefix"]
        ours = protocol.shm_create(frame, prefix=prefix)
        ours.close()
        for i, name in enumerate([prefix + "nothere", ours.name]):
            reply = call(sock, {"id": i, "op": "put_frame", "session": opened["session"], "frame": 1,
                                "shape": [4, 8, 3], "dtype": "uint8", "shm": name})
            assert reply["ok"] == (name == ours.name), reply
        sock.close()
        assert wait_for(lambda: not _shm_exists(ours.name)), "the session's own segment is removed with it"
        # close_session removes them too; the client need not be gone
        sock = connect(server)
        opened = push_session(sock)
        ours = protocol.shm_create(frame, prefix=opened["shm_prefix"])
        ours.close()
        assert call(sock, {"id": 1, "op": "put_frame", "session": opened["session"], "frame": 1, "shape": [4, 8, 3],
                           "dtype": "uint8", "shm": ours.name})["ok"]
        assert call(sock, {"id": 2, "op": "close_session", "session": opened["session"]})["ok"]
        assert wait_for(lambda: not _shm_exists(ours.name))
        sock.close()
        for victim in victims:
            assert _shm_exists(victim.name)
    finally:
        for victim in victims:
            protocol.shm_unlink(victim)


@pytest.mark.skipif(not HAS_SHM, reason="POSIX shared memory in /dev/shm")
def test_client_frame_segments_use_the_session_prefix(make_bridge):
    from samroto.bridge.client import Client

    server = make_bridge()
    info = discovery.live(server.config_dir)
    with Client(info["address"], info["token"]) as client:
        session = client.open_session(first=1, last=2, width=8, height=4)
        session.put_frame(1, bytes(8 * 4 * 3), shape=[4, 8, 3], dtype="uint8", transport="shm")
        names = [s.name for s in client._frame_shms.values()]
        assert names and all(n.startswith(session.shm_prefix) for n in names)
        assert len(names[0]) <= 30  # macOS: 31 characters with the leading slash
        session.close()
        assert not client._frame_shms and not _shm_exists(names[0])


# --- item 4: read and write roots ---------------------------------------------------------------------

def _plate(folder, frames=(1, 2)):
    import cv2
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"plate.{n:04d}.png" for n in frames]
    for path in paths:
        assert cv2.imwrite(str(path), np.zeros((4, 8, 3), np.uint8))
    return paths


def test_read_and_write_roots(make_bridge, tmp_path):
    inside, outside, out = tmp_path / "in", tmp_path / "secret", tmp_path / "out"
    _plate(inside / "a")
    secret = _plate(outside)
    (inside / "link").symlink_to(outside)  # a link inside a root that leads out
    server = make_bridge(read_roots=[str(inside)], write_roots=[str(out)])
    sock = connect(server)

    def open_path(path, rid):
        return call(sock, {"id": rid, "op": "open_session", "source": {"path": path}})

    ok = open_path(str(inside / "a" / "plate.%04d.png"), 1)
    assert ok["ok"] and ok["count"] == 2, ok
    refused = []
    for i, path in enumerate([str(outside / "plate.%04d.png"), str(secret[0]), str(outside / "nothere.%04d.png"),
                              str(inside / "link" / "plate.%04d.png"), str(inside / ".." / "secret" / "plate.0001.png"),
                              "plate.%04d.png", [str(inside / "a" / "plate.0001.png"), str(secret[1])]]):
        reply = open_path(path, 10 + i)
        assert reply["ok"] is False and reply["error"]["code"] == "bad_request", (path, reply)
        refused.append(reply["error"]["message"])
    # the refusal says nothing about whether the file is there
    assert refused[0].replace("plate.%04d", "X") == refused[2].replace("nothere.%04d", "X")
    assert all("outside" in m or "absolute" in m for m in refused), refused
    sid = ok["session"]
    mask = {"version": 1, "objects": [{"id": 1, "prompts": [{"frame": 1, "mask": str(secret[0])}]}]}
    reply = call(sock, {"id": 30, "op": "add_prompts", "session": sid, "prompts": mask})
    assert reply["error"]["code"] == "bad_request" and "outside" in reply["error"]["message"], reply
    for i, pattern in enumerate([str(tmp_path / "elsewhere" / "m.%04d.png"), str(out / ".." / "m.%04d.png"),
                                 "m.%04d.png", str(out / "%04d" / "m.png")]):
        reply = call(sock, {"id": 40 + i, "op": "propagate", "session": sid,
                            "mattes": {"transport": "file", "pattern": pattern}})
        assert reply["error"]["code"] == "bad_request" and "mattes.pattern" in reply["error"]["message"], reply
    # inside the write root the request gets as far as the engine (here: nothing to track)
    reply = call(sock, {"id": 50, "op": "propagate", "session": sid,
                        "mattes": {"transport": "file", "pattern": str(out / "shot" / "m.%04d.png")}})
    assert reply["error"]["code"] == "bad_request" and "add prompts" in reply["error"]["message"], reply
    sock.close()


# --- items 8-10: spans, frame sizes, reply sizes ----------------------------------------------------------

def test_a_path_source_spans_at_most_a_million_frames(make_bridge, tmp_path):
    _plate(tmp_path / "p", frames=(1, 2))
    _plate(tmp_path / "q", frames=(1, 100_000_000))  # files far apart: no first/last needed
    server = make_bridge()
    sock = connect(server)
    t0 = time.monotonic()
    for rid, source in enumerate([{"path": str(tmp_path / "p" / "plate.%04d.png"), "first": 1, "last": 10 ** 7},
                                  {"path": str(tmp_path / "q" / "plate.%04d.png")},
                                  {"path": str(tmp_path / "q" / "plate.0001.png")},
                                  {"path": [str(tmp_path / "q" / "plate.0001.png"),
                                            str(tmp_path / "q" / "plate.100000000.png")]}]):
        reply = call(sock, {"id": rid, "op": "open_session", "source": source})
        assert reply["ok"] is False and reply["error"]["code"] == "bad_request", reply
        assert "at most 1000000" in reply["error"]["message"], reply
    assert time.monotonic() - t0 < 2.0
    sock.close()


def test_pushed_sessions_and_shm_frames_obey_max_payload(make_bridge):
    server = make_bridge(max_payload=1 << 20)
    sock = connect(server)
    for size in (32768, 1024):  # 3 GiB and 3 MiB even as 8-bit RGB
        reply = call(sock, {"id": 1, "op": "open_session", "source": {"push": True, "first": 1, "last": 2,
                                                                       "width": size, "height": size}})
        assert reply["error"]["code"] == "too_large" and "max_payload" in reply["error"]["message"], reply
    opened = push_session(sock, width=512, height=512)  # 768 KiB as uint8; float32 RGBA is 4 MiB
    if HAS_SHM:
        seg = protocol.shm_create(512 * 512 * 16)
        try:
            reply = call(sock, {"id": 2, "op": "put_frame", "session": opened["session"], "frame": 1,
                                "shape": [512, 512, 4], "dtype": "float32", "shm": seg.name})
            assert reply["error"]["code"] == "too_large", reply
        finally:
            protocol.shm_unlink(seg)
    sock.close()


def test_open_session_replies_stay_small(make_bridge):
    from samroto.bridge.client import Client

    server = make_bridge()
    sock = connect(server)
    first = 10 ** 15  # 16-digit frame numbers
    t0 = time.monotonic()
    big = push_session(sock, first=first, last=first + 999_999)
    assert time.monotonic() - t0 < 10
    assert "frame_numbers" not in big and big["count"] == 1_000_000 and big["contiguous"]
    assert (big["first"], big["last"]) == (first, first + 999_999)
    page = call(sock, {"id": 2, "op": "frame_numbers", "session": big["session"], "offset": 999_998})
    assert page["frame_numbers"] == [first + 999_998, first + 999_999] and page["count"] == 1_000_000
    page = call(sock, {"id": 3, "op": "frame_numbers", "session": big["session"]})
    assert len(page["frame_numbers"]) == protocol.MAX_LISTED_FRAMES
    small = push_session(sock, first=1001, last=1008)
    assert small["frame_numbers"] == list(range(1001, 1009)) and small["count"] == 8  # as before
    sock.close()
    info = discovery.live(server.config_dir)
    with Client(info["address"], info["token"]) as client:  # the client fills the list in
        session = client.open_session(first=first, last=first + 20_000, width=8, height=4)
        assert session.frame_numbers[-1] == first + 20_000 and len(session.frame_numbers) == 20_001
        assert client.server["minor"] == protocol.PROTOCOL_MINOR


def test_replies_never_exceed_the_header_cap(make_bridge):
    server = make_bridge()
    sock = connect(server)
    header = json.dumps({"id": 1, "op": "é" * (1 << 20)}, ensure_ascii=False).encode()  # 2 MiB as UTF-8...
    sock.sendall(protocol.PREFIX.pack(protocol.MAGIC, len(header)) + header)
    reply, _ = protocol.recv_message(sock)  # ...6 MiB quoted in a reply as JSON escapes
    assert reply["error"]["code"] == "unknown_op" and len(reply["error"]["message"]) < 3000, reply["error"]
    assert call(sock, {"id": 2, "op": "ping"})["ok"]
    sock.close()


# --- items 11-13: odd requests get the right code -------------------------------------------------------

def test_nested_json_is_a_bad_message(make_bridge, caplog):
    server = make_bridge()
    with caplog.at_level(logging.INFO, logger="samroto.bridge"):
        for hello, text in [(False, b"[" * 100_000), (True, b"[" * 100_000), (False, b'{"id":' + b"[" * 3000),
                            (True, b'{"id": 1, "op": "ping", "x": ' + b"[" * 40 + b"]" * 40 + b"}")]:
            sock = connect(server, hello=hello)
            if not hello:
                text = text[:4096]  # what may come before hello
            sock.sendall(protocol.PREFIX.pack(protocol.MAGIC, len(text)) + text)
            reply, _ = protocol.recv_message(sock)
            assert reply["error"]["code"] == "bad_message", reply
            assert hung_up(sock, 2.0)
    assert "RecursionError" not in caplog.text and "Traceback" not in caplog.text


def test_requests_after_close_session_are_unknown_session(make_bridge):
    server = make_bridge()
    sock = connect(server)
    sid = push_session(sock)["session"]
    prompts = {"version": 1, "objects": [{"id": 1, "prompts": [{"frame": 1, "points": [[1, 1]], "labels": [1]}]}]}
    pipelined = [{"op": "close_session", "session": sid},
                 {"op": "add_prompts", "session": sid, "prompts": prompts},
                 {"op": "put_frame", "session": sid, "frame": 1, "shape": [4, 8, 3], "dtype": "uint8"},
                 {"op": "propagate", "session": sid}, {"op": "clear_prompts", "session": sid},
                 {"op": "cancel", "session": sid}, {"op": "close_session", "session": sid}]
    for i, header in enumerate(pipelined):
        protocol.send_message(sock, {"id": i, **header}, bytes(96) if header["op"] == "put_frame" else b"")
    replies = {}
    while len(replies) < len(pipelined):
        reply, _ = protocol.recv_message(sock)
        if "ok" in reply:
            replies[reply["id"]] = reply
    assert replies[0]["ok"]
    codes = [replies[i]["error"]["code"] for i in range(1, len(pipelined))]
    assert codes == ["unknown_session"] * (len(pipelined) - 1), [replies[i] for i in range(1, len(pipelined))]
    assert "closed" in replies[1]["error"]["message"]
    sock.close()


def test_queued_work_of_a_session_closed_meanwhile_is_unknown_session():
    """Work already queued when its session goes (eviction, disconnect) answers unknown_session."""
    from samroto.bridge.dispatch import while_open

    class Session:
        id, closed, closing, engine = "s1", True, "it was evicted after 60 s without use", None

    steps = while_open(Session(), iter(()))
    with pytest.raises(protocol.ProtocolError) as err:
        next(steps)
    assert err.value.code == "unknown_session" and "evicted" in err.value.message


def test_finish_values_are_checked_when_the_request_arrives(make_bridge):
    made = []

    def finisher(**overrides):  # the real factory checks names and ranges, not types
        made.append(overrides)
        return object()

    server = make_bridge(finisher=finisher)
    sock = connect(server)
    sid = push_session(sock)["session"]
    for i, finish in enumerate([{"grow": [1]}, {"grow": "2"}, {"feather": True}, {"refine": 1},
                                {"choke": float("nan")}, {"grow": 1e300}, {"bogus": 1}, {"grow": 10 ** 400}]):
        header = json.dumps({"id": i, "op": "propagate", "session": sid,
                             "mattes": {"transport": "inline", "finish": finish}}).encode()
        sock.sendall(protocol.PREFIX.pack(protocol.MAGIC, len(header)) + header)
        while True:
            reply, _ = protocol.recv_message(sock)
            if reply.get("id") == i and "ok" in reply:
                break
        name = next(iter(finish))
        assert reply["error"]["code"] == "bad_request" and f"finish.{name}" in reply["error"]["message"] or \
            name == "bogus" and "unknown" in reply["error"]["message"], (finish, reply)
    assert made == [], "a bad value must not reach the finishing stage"
    ok = call(sock, {"id": 20, "op": "propagate", "session": sid,
                     "mattes": {"transport": "inline", "finish": {"grow": 2, "refine": False, "feather": 1.5}}})
    assert made == [{"grow": 2, "refine": False, "feather": 1.5}] and "add prompts" in ok["error"]["message"]
    sock.close()


@pytest.mark.parametrize("text", [
    '{"id": 1, "prompts": [{"frame": 1, "points": [[NaN, 1]], "labels": [1]}]}',
    '{"id": 1, "prompts": [{"frame": 1, "box": [0, 0, Infinity, 2]}]}',
    '{"id": 1e400, "prompts": [{"frame": 1, "points": [[1, 1]], "labels": [1]}]}',
    '{"id": NaN, "prompts": [{"frame": 1, "points": [[1, 1]], "labels": [1]}]}',
    '{"id": 1, "prompts": [{"frame": 1e400, "points": [[1, 1]], "labels": [1]}]}',
    '{"id": 1, "prompts": [{"frame": -Infinity, "points": [[1, 1]], "labels": [1]}]}',
    '{"id": 1, "prompts": [{"frame": 1, "points": [[1, 1]], "labels": [1e400]}]}',
    '{"id": 100000000000000000000000000000, "prompts": [{"frame": 1, "points": [[1, 1]], "labels": [1]}]}',
])
def test_non_finite_prompt_numbers_are_bad_prompts(make_bridge, text):
    server = make_bridge()
    sock = connect(server)
    sid = push_session(sock)["session"]
    header = ('{"id": 7, "op": "add_prompts", "session": "%s", "prompts": {"version": 1, "objects": [%s]}}'
              % (sid, text)).encode()
    sock.sendall(protocol.PREFIX.pack(protocol.MAGIC, len(header)) + header)
    reply, _ = protocol.recv_message(sock)
    assert reply["id"] == 7 and reply["error"]["code"] == "bad_prompts", reply
    sock.close()


def test_too_long_file_names_are_refused(make_bridge, tmp_path):
    server = make_bridge()
    sock = connect(server)
    long_name = "n" * 300
    for rid, source in enumerate([{"path": str(tmp_path / long_name / "plate.%04d.png")},
                                  {"path": str(tmp_path / (long_name + ".%04d.png"))},
                                  {"path": str(tmp_path / (long_name + ".mov"))},
                                  {"path": "/" + "a/" * 3000 + "p.%04d.png"}]):
        reply = call(sock, {"id": rid, "op": "open_session", "source": source})
        assert reply["error"]["code"] in ("bad_request", "io_error") and "long" in reply["error"]["message"], reply
    sid = push_session(sock)["session"]
    for rid, pattern in enumerate([str(tmp_path / long_name / "m.%04d.png"), str(tmp_path / ("m" * 240 + ".%04d.exr"))]):
        reply = call(sock, {"id": 20 + rid, "op": "propagate", "session": sid,
                            "mattes": {"transport": "file", "pattern": pattern}})
        assert reply["error"]["code"] in ("bad_request", "io_error") and "long" in reply["error"]["message"], reply
    mask = {"version": 1, "objects": [{"id": 1, "prompts": [{"frame": 1, "mask": str(tmp_path / (long_name + ".png"))}]}]}
    reply = call(sock, {"id": 30, "op": "add_prompts", "session": sid, "prompts": mask})
    assert reply["error"]["code"] in ("bad_request", "bad_prompts", "io_error"), reply
    sock.close()


# --- item 14 (bridge part): no reader traceback when the writer already closed the socket -------------

class _UnluckySocket:
    """A socket that makes one thread interleaving certain: the writer sends its last reply
    slowly, and a reader that touches the socket after handling a message does so only once
    the writer has hung up (what happened now and then under load)."""

    def __init__(self, sock):
        self._sock = sock
        self.handled = threading.Event()
        self.hung_up = threading.Event()

    def settimeout(self, value):
        if self.handled.is_set() and threading.current_thread().name.startswith("bridge-read"):
            self.hung_up.wait(2)
        return self._sock.settimeout(value)

    def sendall(self, data):
        time.sleep(0.2)
        return self._sock.sendall(data)

    def close(self):
        self.hung_up.set()
        return self._sock.close()

    def shutdown(self, how):
        result = self._sock.shutdown(how)
        self.hung_up.set()
        return result

    def __getattr__(self, name):
        return getattr(self._sock, name)


def test_reader_ends_quietly_when_the_writer_closed_the_socket():
    from samroto.bridge.connection import Connection

    failures = []
    previous = threading.excepthook
    threading.excepthook = lambda args: failures.append(args)
    try:
        ours, theirs = socket.socketpair()
        sock = _UnluckySocket(ours)
        closed = threading.Event()
        conn = Connection(sock, "test", on_close=lambda c: closed.set())
        conn.authed = True

        def handle(c, header, payload):
            c.post({"id": header.get("id"), "ok": False, "close": True})  # the writer hangs up after this
            sock.handled.set()
            return True

        conn.start(handle, 1 << 20)
        protocol.send_message(theirs, {"id": 1, "op": "ping"})
        assert closed.wait(5)
        time.sleep(0.5)
        theirs.close()
    finally:
        threading.excepthook = previous
    assert not failures, [f"{f.exc_type.__name__}: {f.exc_value}" for f in failures]


# --- slow clients, many at once (a fuzz of stalls and drips) ---------------------------------------

def test_fuzz_slow_and_stalled_clients_while_a_good_one_is_served(make_bridge, monkeypatch):
    import random

    monkeypatch.setattr(connection, "HELLO_TIMEOUT_S", 1.0)
    monkeypatch.setattr(connection, "MESSAGE_TIMEOUT_S", 1.0)
    server = make_bridge()
    good = connect(server)
    rng = random.Random(21)
    stop = threading.Event()
    socks = []
    for i in range(24):
        authed = rng.random() < 0.5
        sock = connect(server, hello=authed)
        kind = rng.choice(["silent", "drip", "half-header", "big-announce"])
        message = protocol.encode({"id": i, "op": "hello" if not authed else "ping", "version": 1,
                                   "token": server.token, "pad": "p" * rng.randrange(300)})[0]
        if kind == "drip":
            threading.Thread(target=drip, args=(sock, message, rng.uniform(0.02, 0.2), stop), daemon=True).start()
        elif kind == "half-header":
            sock.sendall(message[:rng.randrange(1, len(message))])
        elif kind == "big-announce":
            header = json.dumps({"id": i, "op": "ping", "payload": 100 << 20}).encode()
            sock.sendall(protocol.PREFIX.pack(protocol.MAGIC, len(header)) + header + b"x" * 10)
        socks.append((sock, kind, authed))
    try:
        latencies = []
        t_end = time.monotonic() + 2.5
        while time.monotonic() < t_end:
            t0 = time.monotonic()
            assert call(good, {"id": "g", "op": "ping"})["ok"]
            latencies.append(time.monotonic() - t0)
            time.sleep(0.05)
        assert max(latencies) < 0.5, max(latencies)
        for sock, kind, authed in socks:
            if authed and kind == "silent":
                continue  # an authenticated client may idle
            assert hung_up(sock, 2.0), (kind, authed)
    finally:
        stop.set()
        for sock, _, _ in socks:
            sock.close()
    assert wait_for(lambda: len(server.connections) == 1)
    good.close()
