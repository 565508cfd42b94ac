"""A shared GPU host (issue 22, item 4): the bridge on TLS with per-user tokens, a path map,
fair turns between users and a cap on sessions per user.

In-process bridges on loopback TCP with a self-signed CA and certificate made here by the
`openssl` command (nothing reaches the network) and a fake engine that counts its steps:
seconds, no model.
"""

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from samroto.bridge import client as bridge_client
from samroto.bridge import discovery, protocol, users
from samroto.bridge.client import (BadRequest, Busy, Client, ConnectionLost, RemoteConfigError, ShmError,
                                   Unauthorized, UnknownSession, Untrusted)
from samroto.bridge.paths import PathMap
from samroto.bridge.server import BridgeServer, ConfigError, ServerConfig
from samroto.bridge.workqueue import Job, WorkQueue
from test_bridge_limits import wait_for

REPO = Path(__file__).resolve().parent.parent
OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="the test certificates are made with the openssl command")


# --- certificates: a CA, a server certificate it signs (127.0.0.1, localhost), another CA --------

def _openssl(*args, cwd):
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def _make_ca(folder, name):
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN=samroto test {name}",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=folder)
    return folder / f"{name}.pem"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    ca = _make_ca(d, "ca")
    other_ca = _make_ca(d, "other")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n"
                               "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
                               "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "server.key",
             "-out", "server.csr", "-subj", "/CN=localhost", cwd=d)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "4242",
             "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    os.chmod(d / "server.key", 0o600)
    return SimpleNamespace(ca=ca, other_ca=other_ca, cert=d / "server.pem", key=d / "server.key")


# --- a fake engine: enough of a VideoSession for prompts and propagation, counting its steps -------

class FakeEngine:
    def __init__(self, frames, log, gate):
        self.frames, self.log, self.gate = frames, log, gate
        self.obj_ids: list = []
        self.cancelled = False
        self.model = SimpleNamespace(image_size=16)
        self.masks = []

    def _result(self):
        return list(self.obj_ids), np.full((len(self.obj_ids), 4, 4), 5.0, np.float32)

    def add_prompt(self, position, obj_id, points=None, labels=None, box=None, clear=True, low_res=False):
        if obj_id not in self.obj_ids:
            self.obj_ids.append(obj_id)
        return self._result()

    def add_mask(self, position, obj_id, mask, low_res=False):
        self.masks.append(np.asarray(mask).shape)
        return self.add_prompt(position, obj_id)

    def remove_object(self, obj_id):
        self.obj_ids.remove(obj_id)

    def object_score(self, position, obj_id):
        return None  # no object-score head here: matte events carry no score

    def reset(self):
        self.obj_ids = []

    def propagate(self, start=0, reverse=False, max_frames=None, low_res=False, cancel=None):
        count = len(self.frames) if max_frames is None else max_frames
        for k in range(count):
            self.gate.wait(10)
            self.log.append(self.frames.first)  # whose frame: sessions are told apart by their first frame
            yield start + (-k if reverse else k), list(self.obj_ids), self._result()[1]

    def logits(self, position, low_res=False):
        return np.full((len(self.obj_ids), self.frames.height, self.frames.width), 5.0, np.float32)


PROMPT = {"version": 1, "objects": [{"id": 1, "name": "hero", "prompts": [{"frame": 0, "points": [[1, 1]],
                                                                            "labels": [1]}]}]}


def prompt_on(frame, mask=None):
    prompt = {"frame": frame, "mask": mask} if mask else {"frame": frame, "points": [[1, 1]], "labels": [1]}
    return {"version": 1, "objects": [{"id": 1, "name": "hero", "prompts": [prompt]}]}


@pytest.fixture
def shared(tmp_path, certs):
    """shared(**ServerConfig fields) -> a running shared bridge on 127.0.0.1 with TLS and the
    users alice and bob (``bridge.tokens``); ``bridge.steps``: the fake engines' step log."""
    running = []

    def make(**config):
        users_file = tmp_path / "users.json"
        tokens = {name: users.issue(users_file, name) for name in ("alice", "bob")}
        log, gate = [], threading.Event()
        gate.set()
        config = {"host": "127.0.0.1", "idle_timeout": 0, "tls_cert": str(certs.cert), "tls_key": str(certs.key),
                  "users_file": str(users_file), **config}
        server = BridgeServer(ServerConfig(config_dir=str(tmp_path / f"cfg{len(running)}"), **config),
                              lambda frames, options: FakeEngine(frames, log, gate), {"name": "stub"})
        server.bind()
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        running.append((server, thread))
        server.tokens, server.steps, server.gate, server.users_file = tokens, log, gate, users_file
        server.ca = certs.ca
        return server

    yield make
    for server, thread in running:
        server.stop()
        thread.join(10)


def remote(server, user="alice", token=None, **more):
    info = {"host": "127.0.0.1", "port": server.address["port"], "user": user,
            "token": server.tokens[user] if token is None else token, "ca": str(server.ca), **more}
    return {k: v for k, v in info.items() if v is not None}


def connect(server, user="alice", **more):
    return Client.connect_remote(remote(server, user, **more), name=f"test-{user}")


# --- who may connect ---------------------------------------------------------------------------------

def test_users_connect_over_tls_and_their_sessions_are_isolated(shared):
    server = shared()
    alice, bob = connect(server, "alice"), connect(server, "bob")
    try:
        assert alice.server["user"] == "alice" and alice.server["shm"] is False
        assert alice._sock.version() in ("TLSv1.2", "TLSv1.3")
        mine = alice.open_session(first=1, last=3, width=8, height=4)
        theirs = bob.open_session(first=1, last=3, width=8, height=4)
        mine.put_frame(1, bytes(8 * 4 * 3), shape=[4, 8, 3], dtype="uint8")
        # bob names alice's session: as unknown as one never opened, whatever the op
        for op, fields in [("put_frame", {"frame": 1, "shape": [4, 8, 3], "dtype": "uint8"}),
                           ("add_prompts", {"prompts": prompt_on(1)}), ("propagate", {}), ("cancel", {}),
                           ("frame_numbers", {}), ("close_session", {})]:
            payload = bytes(8 * 4 * 3) if op == "put_frame" else None
            with pytest.raises(UnknownSession, match="never opened on this connection") as err:
                bob.request(op, payload, session=mine.id, **fields)
            assert "alice" not in err.value.message
        mine.close()
        with pytest.raises(UnknownSession, match="never opened on this connection"):  # why: told its owner only
            bob.request("frame_numbers", session=mine.id)
        theirs.put_frame(2, bytes(8 * 4 * 3), shape=[4, 8, 3], dtype="uint8")
        with pytest.raises(Unauthorized, match="own user"):
            bob.shutdown()  # a user may not stop the shared bridge
        assert alice.ping()["ok"] and bob.status()["sessions"] == 1
    finally:
        alice.close()
        bob.close()


def test_status_shows_every_users_share_to_the_bridges_own_user_only(shared):
    """`samroto serve --status` (the discovery token) sees each user's connections and
    sessions; a shared host's user sees only its own."""
    import getpass

    server = shared()
    cfg = Path(server.config.config_dir)
    assert wait_for(lambda: discovery.live(cfg) is not None)
    alice, bob = connect(server, "alice"), connect(server, "bob")
    try:
        for _ in range(2):
            alice.open_session(first=1, last=3, width=8, height=4)
        bob.open_session(first=1, last=3, width=8, height=4)
        with Client.connect(config_dir=str(cfg)) as own:
            assert own.status()["users"] == [
                {"user": getpass.getuser(), "own": True, "connections": 1, "sessions": 0},
                {"user": "alice", "own": False, "connections": 1, "sessions": 2},
                {"user": "bob", "own": False, "connections": 1, "sessions": 1}]
        assert alice.status()["users"] == [{"user": "alice", "own": False, "connections": 1, "sessions": 2}]
        assert bob.status()["users"] == [{"user": "bob", "own": False, "connections": 1, "sessions": 1}]
    finally:
        alice.close()
        bob.close()


def test_a_client_without_the_ca_or_with_a_wrong_token_is_refused(shared, certs):
    server = shared()
    with pytest.raises(Untrusted, match="not the one to trust"):
        connect(server, ca=None)  # this machine's trusted CAs: not the studio's
    with pytest.raises(Untrusted):
        connect(server, ca=str(certs.other_ca))
    with pytest.raises(Untrusted):  # the right CA, but the certificate names another host
        connect(server, server_name="gpu01.studio.lan")
    with pytest.raises(Unauthorized, match="unknown user or wrong token"):
        connect(server, "bob", token=server.tokens["alice"])  # another user's token
    with pytest.raises(Unauthorized, match="unknown user or wrong token"):
        connect(server, "carol", token=server.tokens["alice"])
    with pytest.raises(Unauthorized):
        connect(server, "alice", token="x")
    # the discovery token is the bridge's own user's; it is no user's password
    with pytest.raises(Unauthorized):
        connect(server, "alice", token=server.token)
    # plain TCP to a TLS bridge: no hello gets through, and the bridge serves on
    with pytest.raises(bridge_client.BridgeError) as err:
        Client({"family": "tcp", "host": "127.0.0.1", "port": server.address["port"]}, server.token, timeout=3)
    assert err.value.code in ("connection_lost", "bad_message")
    with connect(server) as alice:
        assert alice.ping()["ok"]


def test_a_revoked_or_replaced_token_is_refused_and_its_connections_closed(shared):
    server = shared()
    alice, bob = connect(server, "alice"), connect(server, "bob")
    try:
        alice.open_session(first=1, last=2, width=8, height=4)
        assert users.revoke(server.users_file, "alice")
        # the running bridge re-reads the file: alice is hung up on within a second or two
        with pytest.raises((Unauthorized, ConnectionLost)):
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                alice.ping()
                time.sleep(0.1)
        assert wait_for(lambda: server.registry.sessions == {} or all(
            s.owner.user != "alice" for s in server.registry.sessions.values()))
        with pytest.raises(Unauthorized, match="revoked"):
            connect(server, "alice")
        assert bob.ping()["ok"]  # nobody else is touched
        # a new token works at once; the one it replaced does not
        old = server.tokens["bob"]
        server.tokens["alice"] = users.issue(server.users_file, "alice")
        with connect(server, "alice") as again:
            assert again.ping()["ok"]
        server.tokens["bob"] = users.issue(server.users_file, "bob")
        with pytest.raises(Unauthorized):
            connect(server, "bob", token=old)
        with pytest.raises((Unauthorized, ConnectionLost)):
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                bob.ping()
                time.sleep(0.1)
    finally:
        alice.close()
        bob.close()


def test_the_users_file_is_private_and_keeps_no_token(tmp_path):
    path = tmp_path / "users.json"
    token = users.issue(path, "alice")
    text = path.read_text()
    assert token not in text and users.hash_token(token) in text
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert [u["user"] for u in users.listing(path)] == ["alice"]
    with pytest.raises(users.UsersError):
        users.issue(path, "../root")
    os.chmod(path, 0o644)
    with pytest.raises(users.UsersError, match="chmod 600"):
        users.Users(path)
    os.chmod(path, 0o600)
    loaded = users.Users(path)
    assert loaded.check("alice", token) is None and loaded.check("alice", token + "x")
    # a file that breaks later refuses everyone (fail closed) until it is fixed
    path.write_text("not json")
    os.chmod(path, 0o600)
    assert loaded.refresh() and "users file" in loaded.check("alice", token)


def test_users_command_issues_revokes_and_lists(tmp_path, certs):
    env = {**os.environ, "SAMROTO_CONFIG_DIR": str(tmp_path / "cfg")}
    path, conn_file = tmp_path / "users.json", tmp_path / "alice.json"

    def samroto(*args):
        return subprocess.run([sys.executable, "-m", "samroto", "users", *args, "--file", str(path)], env=env,
                              capture_output=True, text=True, timeout=60, cwd=REPO)

    made = samroto("issue", "bob")
    assert made.returncode == 0, made.stderr
    assert users.Users(path).check("bob", made.stdout.strip()) is None
    made = samroto("issue", "alice", "--connection-file", str(conn_file), "--address", "gpu01.studio.lan:7443",
                   "--ca", str(certs.ca))
    assert made.returncode == 0, made.stderr
    info = json.loads(conn_file.read_text())
    assert info["host"] == "gpu01.studio.lan" and info["port"] == 7443 and info["user"] == "alice"
    assert info["ca_pem"] == certs.ca.read_text() and users.Users(path).check("alice", info["token"]) is None
    assert os.stat(conn_file).st_mode & 0o777 == 0o600
    assert samroto("revoke", "alice").returncode == 0
    assert samroto("revoke", "alice").returncode == 2  # nothing left to revoke
    listed = json.loads(samroto("list", "--json").stdout)
    assert [(u["user"], bool(u["revoked"])) for u in listed] == [("alice", True), ("bob", False)]


# --- the bridge's own user, local tools and the connection file -----------------------------------------

def test_local_tools_use_the_discovery_file_and_trust_only_its_certificate(shared, tmp_path):
    server = shared()
    cfg = Path(server.config.config_dir)
    assert wait_for(lambda: discovery.live(cfg) is not None)
    info = json.loads((cfg / "bridge.json").read_text())
    assert info["address"]["tls"]["sha256"] == server._tls_fingerprint
    with Client.connect(config_dir=str(cfg)) as own:  # the discovery token: the bridge's own user
        assert own.server.get("user") is None and own.server["shm"] == protocol.shm_supported()
    info["address"]["tls"]["sha256"] = "0" * 64
    with pytest.raises(Untrusted, match="discovery file names"):
        Client(info["address"], info["token"])


def test_a_connection_file_makes_every_host_use_the_shared_bridge(shared, tmp_path):
    server = shared()
    host_cfg = tmp_path / "artist"
    host_cfg.mkdir()
    (host_cfg / "remote.json").write_text(json.dumps({**remote(server), "ca": None, "ca_pem": server.ca.read_text()}))
    # what every plugin calls (through hostkit.connect): never starts a bridge of its own here
    with Client.connect(python="/nonexistent/python", config_dir=str(host_cfg)) as bridge:
        assert bridge.server["user"] == "alice"
    # in a host's bare Python: the client files and the standard library only
    d = tmp_path / "hostpy"
    d.mkdir()
    for name in ("client.py", "protocol.py"):
        shutil.copy(REPO / "bridge" / name, d / name)
    (d / "host.py").write_text("import json, os, sys\nsys.path.insert(0, os.path.dirname(__file__))\nimport client\n"
                               "b = client.Client.connect()\n"
                               "print(json.dumps([b.server['user'], b.ping()['ok'], sorted(m for m in sys.modules if m "
                               "in ('numpy', 'torch', 'samroto'))]))\nb.close()\n")
    out = subprocess.run([sys.executable, "-I", "-S", str(d / "host.py")], cwd=d, capture_output=True, text=True,
                         timeout=60, env={"SAMROTO_CONFIG_DIR": str(host_cfg), "PATH": os.environ.get("PATH", "")})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == ["alice", True, []]
    # a broken connection file is said to be one, and the shared bridge down is not "start one here"
    (host_cfg / "remote.json").write_text(json.dumps({"host": "127.0.0.1", "user": "alice"}))
    with pytest.raises(RemoteConfigError, match="'port'"):
        Client.connect(config_dir=str(host_cfg))
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    (host_cfg / "remote.json").write_text(json.dumps({**remote(server), "port": port}))
    with pytest.raises(ConnectionLost, match="shared samroto bridge"):
        Client.connect(python=sys.executable, config_dir=str(host_cfg))


# --- serving other machines: TLS and users or nothing ----------------------------------------------------

def test_plain_tcp_beyond_loopback_is_refused(tmp_path, certs, capsys):
    users_file = tmp_path / "users.json"
    users.issue(users_file, "alice")
    roots = {"read_roots": [str(tmp_path)], "write_roots": [str(tmp_path)]}
    tls = {"tls_cert": str(certs.cert), "tls_key": str(certs.key)}
    for config, refusal in [({}, "turn TLS on"), ({"users_file": str(users_file)}, "turn TLS on"),
                            (tls, "users_file"), ({"tls_cert": str(certs.cert), "users_file": str(users_file)},
                                                  "private key"),
                            ({**tls, "users_file": str(users_file), "path_map": [["S:\\shows", "shows"]]},
                             "absolute")]:
        server = BridgeServer(ServerConfig(config_dir=str(tmp_path), host="0.0.0.0", **roots, **config),
                              lambda f, o: None, {})
        try:
            with pytest.raises(ConfigError, match=refusal):
                server.bind()
        finally:
            server.queue.stop()
    server = BridgeServer(ServerConfig(config_dir=str(tmp_path), host="0.0.0.0", users_file=str(users_file),
                                       **roots, **tls), lambda f, o: None, {})
    try:
        assert server.bind()["port"] > 0 and server.tls is not None and server.users is not None
        err = capsys.readouterr().err
        assert "WARNING" in err and "(TLS)" in err and str(users_file) in err and str(tmp_path) in err
        assert server.discovery_info()["address"]["host"] == "127.0.0.1"  # local tools: loopback
    finally:
        server._listener.close()
        server.queue.stop()


def test_serve_refuses_plain_tcp_beyond_loopback_before_loading_the_model(tmp_path):
    env = {**os.environ, "SAMROTO_CONFIG_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "samroto", "serve", "--host", "0.0.0.0", "--read-root", str(tmp_path),
                          "--write-root", str(tmp_path), "--model", "/nonexistent/model.yaml"], env=env,
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 2 and "--tls-cert" in out.stderr, out.stderr
    assert not (tmp_path / "bridge.json").exists()


# --- limits and fairness -------------------------------------------------------------------------------------

def test_sessions_per_user_are_capped(shared):
    server = shared(max_sessions_per_user=2)
    alice1, alice2, bob = connect(server, "alice"), connect(server, "alice"), connect(server, "bob")
    try:
        first = alice1.open_session(first=1, last=2, width=8, height=4)
        alice2.open_session(first=1, last=2, width=8, height=4)  # the cap is the user's, over connections
        with pytest.raises(Busy, match="max_sessions_per_user"):
            alice2.open_session(first=1, last=2, width=8, height=4)
        bob.open_session(first=1, last=2, width=8, height=4)  # another user's sessions do not count
        bob.open_session(first=1, last=2, width=8, height=4)
        with pytest.raises(Busy):
            bob.open_session(first=1, last=2, width=8, height=4)
        first.close()
        alice1.open_session(first=1, last=2, width=8, height=4)  # room again
    finally:
        for c in (alice1, alice2, bob):
            c.close()


def test_connections_per_user_are_capped(shared):
    """No artist takes every connection (docs/bridge.md, "Limits and fair turns"): past
    bridge.max_connections_per_user a user's hello is busy; other users, and a wrong token
    (told it is wrong, not that the user is busy), are not affected."""
    server = shared(max_connections_per_user=2)
    alice1, alice2, bob = connect(server, "alice"), connect(server, "alice"), connect(server, "bob")
    try:
        with pytest.raises(Busy, match="user alice holds 2 connections"):
            connect(server, "alice")
        with pytest.raises(Unauthorized, match="wrong token"):
            connect(server, "alice", token="x" * 43)
        connect(server, "bob").close()   # bob's own count
        alice1.close()
        assert wait_for(lambda: server._status()["connections_by_user"].get("alice") == 1)
        connect(server, "alice").close()   # room again
    finally:
        for c in (alice1, alice2, bob):
            c.close()


def test_a_clients_ocio_config_must_lie_in_a_read_root(shared, tmp_path):
    """color.ocio_config names a file the bridge reads: like frames, only inside the read
    roots, with the same refusal whether the file exists or not (issue 21's roots)."""
    plates = tmp_path / "plates"
    _plate(plates)
    (plates / "broken.ocio").write_text("not a config\n")
    server = shared(read_roots=[str(plates)], write_roots=[str(tmp_path / "out")])
    source = str(plates / "plate.%04d.png")
    with connect(server) as alice:
        for outside in ("/etc/passwd", str(tmp_path / "nowhere.ocio"), str(plates / ".." / "x.ocio")):
            with pytest.raises(BadRequest, match="color.ocio_config: .* is outside the folders") as err:
                alice.open_session(source=source, color={"input": "ACEScg", "ocio_config": outside})
            assert "No such file" not in err.value.message
        with pytest.raises(BadRequest, match="ocio_config must be a path"):
            alice.open_session(source=source, color={"ocio_config": 5})
        inside = alice.open_session(source=source, color={"input": "ACEScg", "ocio_config": str(plates / "broken.ocio")})
        assert inside.info["count"] == 2   # inside a root it is the colour code's to read (and judge)
        built_in = alice.open_session(source=source, color={"input": "ACEScg", "ocio_config": "ocio://default"})
        assert built_in.info["count"] == 2


def test_the_work_queue_takes_turns_between_users():
    """Counters on the queue itself: a user with many sessions queued gets one turn in two."""
    q = WorkQueue()
    order, done = [], []
    hold = threading.Event()

    def steps(tag, n, gate=None):
        for _ in range(n):
            if gate is not None:
                gate.wait(10)
            order.append(tag)
            yield
        return {}

    alice, bob = SimpleNamespace(user="alice"), SimpleNamespace(user="bob")
    try:
        q.submit(Job("a0", steps("a", 1, hold), done.append, done.append, owner=alice))
        for k in range(1, 5):
            q.submit(Job(f"a{k}", steps("a", 10), done.append, done.append, owner=alice))
        q.submit(Job("b0", steps("b", 5), done.append, done.append, owner=bob))
        q.submit(Job("a1", steps("a", 1), done.append, done.append, owner=None))  # a key keeps its group
        hold.set()
        assert wait_for(lambda: len(done) == 7)
    finally:
        q.stop()
    assert order.count("b") == 5 and order.count("a") == 42
    assert order[:11] == ["a", "b"] * 5 + ["a"], order  # per session it would be 1 in 5


def test_two_users_share_the_gpu_fairly_whatever_they_queue(shared):
    server = shared(max_sessions_per_user=8)
    heavy = [connect(server, "alice") for _ in range(3)]
    light = connect(server, "bob")
    try:
        sessions = []
        for k, c in enumerate(heavy + [light]):
            first = 1000 if c is light else 100 * (k + 1)
            s = c.open_session(first=first, last=first + (3 if c is light else 11), width=8, height=4)
            s.add_prompts(prompt_on(first))
            sessions.append(s)
        server.gate.clear()  # the first frame waits until every request is queued
        results = {}

        def track(s):
            results[s.id] = [e.frame for e in s.propagate(direction="forward") if e.kind == "progress"]

        threads = []
        for s in sessions:
            threads.append(threading.Thread(target=track, args=(s,), daemon=True))
            threads[-1].start()
            assert wait_for(lambda: len(server.queue.jobs()) == len(threads))
        server.gate.set()
        for t in threads:
            t.join(20)
        steps = server.steps
        assert sorted(len(v) for v in results.values()) == [4, 12, 12, 12]
        bob_last = max(i for i, who in enumerate(steps) if who == 1000)
        assert bob_last <= 8, steps  # alice, bob, alice, bob...: 4 of bob's frames in the first 8 steps
        assert steps[:8].count(1000) == 4
    finally:
        for c in heavy + [light]:
            c.close()


# --- frames by path on shared storage: the path map -----------------------------------------------------

def test_path_map_rules():
    m = PathMap([["S:\\shows", "/mnt/shows"], ["/Volumes/shows", "/mnt/shows"], ["\\\\fs\\proj", "/mnt/proj"],
                 "T:\\=/mnt/t"])
    cases = {"S:\\shows\\a\\plate.%04d.exr": "/mnt/shows/a/plate.%04d.exr",
             "s:/Shows/a/b.exr": "/mnt/shows/a/b.exr",  # a Windows drive: any case, either slash
             "/Volumes/shows/a/b.exr": "/mnt/shows/a/b.exr",
             "\\\\FS\\proj\\x\\y.png": "/mnt/proj/x/y.png",
             "T:\\a\\b": "/mnt/t/a/b",
             "S:\\showsx\\a": "S:\\showsx\\a", "/Volumes/Shows/a": "/Volumes/Shows/a", "/other": "/other"}
    for client, server in cases.items():
        mapped, rule = m.to_server(client)
        assert mapped == server, client
        if rule is not None:
            assert rule.to_client(mapped).replace("/", "\\").lower() == client.replace("/", "\\").lower()
    assert PathMap({"S:\\shows": "/mnt/shows"}).to_server("S:\\shows\\x")[0] == "/mnt/shows/x"
    for bad in (["S:\\shows"], [["shows", "/mnt/shows"]], "S:\\shows=/mnt/shows"):
        with pytest.raises(ValueError, match="bridge.path_map"):
            PathMap(bad)


def _plate(folder, frames=(1, 2)):
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for n in frames:
        assert cv2.imwrite(str(folder / f"plate.{n:04d}.png"), np.zeros((4, 8, 3), np.uint8))


def test_frames_by_path_through_the_path_map(shared, tmp_path):
    import cv2

    shows = tmp_path / "mnt" / "shows"  # the bridge's mount point; the artist's is S:\shows
    _plate(shows / "a")
    (tmp_path / "secret").mkdir()
    _plate(tmp_path / "secret")
    mask = np.zeros((4, 8), np.uint8)
    mask[1:3, 2:6] = 255
    assert cv2.imwrite(str(shows / "a" / "mask.png"), mask)
    server = shared(path_map=[["S:\\shows", str(shows)]], read_roots=[str(shows)], write_roots=[str(shows)])
    with connect(server) as alice:
        session = alice.open_session(source="S:\\shows\\a\\plate.%04d.png")
        assert session.info["count"] == 2
        listed = alice.open_session(source=["s:/shows/a/plate.0001.png", "S:\\shows\\a\\plate.0002.png"])
        assert listed.info["count"] == 2
        mattes = session.add_prompts(prompt_on(1, mask="S:\\shows\\a\\mask.png"),
                                     mattes={"transport": "file", "pattern": "S:\\shows\\out\\{name}.%04d.png"})
        assert [m.paths for m in mattes] == [["S:\\shows\\out\\hero.0001.png"]]
        events = [e for e in session.propagate(mattes={"transport": "file",
                                                       "pattern": "S:\\shows\\out\\{name}.%04d.png"})
                  if e.kind == "matte"]
        assert [e.paths for e in events] == [["S:\\shows\\out\\hero.0001.png"], ["S:\\shows\\out\\hero.0002.png"]]
        assert sorted(os.listdir(shows / "out")) == ["hero.0001.png", "hero.0002.png"]  # on the shared storage
        # the map does not open a way out of the roots
        with pytest.raises(BadRequest, match="outside"):
            alice.open_session(source="S:\\shows\\..\\..\\secret\\plate.%04d.png")
        with pytest.raises(BadRequest):
            alice.open_session(source="D:\\elsewhere\\plate.%04d.png")
        with pytest.raises(BadRequest, match="mattes.pattern"):
            list(session.propagate(mattes={"transport": "file", "pattern": "S:\\shows\\..\\..\\m.%04d.png"}))
        # no pixels through shared memory: it does not reach another machine
        with pytest.raises(ShmError, match="own machine"):
            list(session.propagate(mattes={"transport": "shm"}))
        pushed = alice.open_session(first=1, last=2, width=8, height=4)
        with pytest.raises(ShmError):
            alice.request("put_frame", session=pushed.id, frame=1, shape=[4, 8, 3], dtype="uint8", shm="srb_x")
    assert server.steps  # the fake engine tracked


# --- TLS with one reader and one writer thread ------------------------------------------------------------

def test_secure_socket_carries_both_directions_at_once(certs):
    """The bridge and the client read in one thread while another writes: the TLS wrapper
    must keep the stream intact both ways at once (OpenSSL is not entered twice)."""
    listener = socket.create_server(("127.0.0.1", 0))
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(str(certs.cert), str(certs.key))
    blob_up, blob_down = os.urandom(3 << 20), os.urandom(3 << 20)
    got = {}

    def serve():
        raw, _ = listener.accept()
        s = protocol.SecureSocket(server_ctx.wrap_socket(raw, server_side=True, do_handshake_on_connect=False))
        s.handshake()
        pump(s, blob_down, len(blob_up), "server")
        s.close()

    def pump(s, outgoing, incoming, who):
        sender = threading.Thread(target=s.sendall, args=(outgoing,))
        sender.start()
        got[who] = bytes(protocol.recv_exact(s, incoming))
        sender.join(20)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    c = bridge_client._connect_socket({"family": "tcp", "host": "127.0.0.1", "port": listener.getsockname()[1],
                                       "tls": {"ca": str(certs.ca)}}, 10)
    pump(c, blob_up, len(blob_down), "client")
    t.join(20)
    c.close()
    listener.close()
    assert got["server"] == blob_up and got["client"] == blob_down
