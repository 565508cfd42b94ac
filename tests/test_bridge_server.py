"""End to end: a real `samroto serve` on the micro fixture model, driven by the stdlib client
in a bare `python -I -S` (no torch, no numpy, no samroto) through every frame transport."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from samroto.bridge import discovery, protocol

HERE = Path(__file__).parent
FIXTURE = HERE / "data" / "sam2_parity"
PLATE = HERE / "data" / "bridge"
REPO = HERE.parent
PROMPTS = {"version": 1, "objects": [
    {"id": 1, "name": "hero", "prompts": [{"frame": 1001, "points": [[66.9, 25.2]], "labels": [1]}]},
    {"id": 2, "name": "prop", "prompts": [{"frame": 1001, "box": [24.0, 34.0, 53.0, 67.0]}]},
]}
W, H, N = 112, 80, 8


def shm_names():
    return {n for n in os.listdir("/dev/shm") if n.startswith("srb_")} if os.path.isdir("/dev/shm") else set()


class Bridge:
    """A `samroto serve` subprocess with its own config dir."""

    def __init__(self, config_dir: Path):
        self.config_dir = config_dir
        self.env = {**os.environ, "SAMROTO_CONFIG_DIR": str(config_dir), "OMP_NUM_THREADS": "1",
                    "SAMROTO_BRIDGE_MAX_PAYLOAD_MB": "4", "SAMROTO_DEVICE": "cpu"}
        self.proc = None

    def start(self):
        self.log = open(self.config_dir / "serve.log", "ab")  # a file: an unread pipe would fill and block it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "samroto", "serve", "--model", str(FIXTURE / "config.yaml"),
             "--checkpoint", str(FIXTURE / "checkpoint.pt")],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            info = discovery.live(self.config_dir)
            if info is not None and info["pid"] == self.proc.pid:
                self.info = info
                return self
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited: {(self.config_dir / 'serve.log').read_text()}")
            time.sleep(0.05)
        raise AssertionError("serve did not come up")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # leave nothing running, then fail
                self.proc.wait()
                raise AssertionError("serve did not stop on SIGTERM within 20 s")


@pytest.fixture(scope="module")
def bridge(tmp_path_factory):
    shm_before = shm_names()
    b = Bridge(tmp_path_factory.mktemp("cfg")).start()
    yield b
    b.stop()
    assert b.proc.returncode == 0, (b.config_dir / "serve.log").read_text()
    assert not (b.config_dir / "bridge.json").exists(), "discovery file must be removed on exit"
    assert not os.path.exists(os.path.dirname(b.info["address"]["path"])), "socket left behind"
    assert shm_names() - shm_before == set(), "shared-memory segments left behind"


@pytest.fixture(scope="module")
def client_dir(tmp_path_factory):
    """Only the client files, as a host plugin ships them."""
    d = tmp_path_factory.mktemp("hostpy")
    for name in ("client.py", "protocol.py"):
        shutil.copy(REPO / "bridge" / name, d / name)
    shutil.copy(PLATE / "driver.py", d / "driver.py")
    return d


@pytest.fixture(scope="module")
def raw_frames(tmp_path_factory):
    """The plate's pixels as raw uint8 files (what a host holding pixels would send)."""
    import cv2

    d = tmp_path_factory.mktemp("raw")
    paths = []
    for i in range(N):
        rgb = cv2.imread(str(PLATE / f"plate.{1001 + i}.png"))[:, :, ::-1]
        p = d / f"{i}.raw"
        p.write_bytes(np.ascontiguousarray(rgb).tobytes())
        paths.append(str(p))
    return paths


def drive(bridge, client_dir, out, wait=True, **job):
    """Run the driver in a bare Python holding only the client files."""
    job = {"prompts": PROMPTS, "pattern": str(PLATE / "plate.%04d.png"), "first": 1001, "width": W,
           "height": H, **job}
    cmd = [sys.executable, "-I", "-S", str(client_dir / "driver.py"), json.dumps(job), str(out)]
    env = {"SAMROTO_CONFIG_DIR": str(bridge.config_dir), "PATH": os.environ.get("PATH", "")}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=client_dir)
    if not wait:
        return proc
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr.decode()
    return json.loads((Path(out) / "result.json").read_text())


def read_mattes(out, result, what="track"):
    arrays = {}
    for m in result["mattes"] if what == "track" else []:
        data = (Path(out) / f"{what}_{m['frame']}.bin").read_bytes()
        arrays[m["frame"]] = np.frombuffer(data, "<f4" if m["dtype"] == "float32" else "u1").reshape(m["shape"])
    return arrays


def in_process_logits(low_res=False):
    """Logits from VideoSession in-process for the same prompts and frames."""
    from samroto.core.io import open_frames
    from samroto.core.model.build import build_model
    from samroto.core.video import VideoSession

    model = build_model(str(FIXTURE / "config.yaml"), str(FIXTURE / "checkpoint.pt"), device="cpu")
    session = VideoSession(model, open_frames(str(PLATE / "plate.%04d.png")))
    session.add_prompt(0, 1, points=[[66.9, 25.2]], labels=[1])
    session.add_prompt(0, 2, box=[24.0, 34.0, 53.0, 67.0])
    out = {}
    for pos, obj_ids, logits in session.propagate(low_res=low_res):
        assert list(obj_ids) == [1, 2]
        out[1001 + pos] = np.asarray(logits.float().numpy() if hasattr(logits, "numpy") else logits)
    return out


@pytest.fixture(scope="module")
def expected(one_torch_thread_module):
    """Video-resolution logits, in-process."""
    return in_process_logits()


@pytest.fixture(scope="module")
def expected_low_res(one_torch_thread_module):
    """The model's low-res logits, in-process: what finishing starts from (core.shot.track)."""
    return in_process_logits(low_res=True)


@pytest.fixture(scope="module")
def one_torch_thread_module():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def check_logits(got, expected):
    assert sorted(got) == sorted(expected) == list(range(1001, 1001 + N))
    for frame, logits in expected.items():
        np.testing.assert_allclose(got[frame], logits, atol=1e-3, rtol=1e-4, err_msg=f"frame {frame}")
        # the mattes themselves (SAM 2's decision) are identical where the model is not undecided
        decided = np.abs(logits) > 1e-2
        assert ((got[frame] > 0) == (logits > 0))[decided].all()
    assert any((e > 0).sum() > 20 for e in expected.values()), "the fixture should give non-empty mattes"


# --- the client in a bare Python, three transports ----------------------------------------

def test_client_runs_without_torch_numpy_or_samroto(bridge, client_dir, tmp_path):
    result = drive(bridge, client_dir, tmp_path, frames="path", only_hello=True)
    assert result["modules"] == [] and "importable" not in result, result
    assert all(not p or Path(p) == client_dir or "python3" in p for p in result["sys_path"]), result["sys_path"]
    assert result["hello"]["protocol"] == protocol.PROTOCOL_VERSION and result["ping"]["ok"]


@pytest.mark.parametrize("frames", ["path", "shm", "inline"])
def test_transports_match_in_process_video_session(bridge, client_dir, raw_frames, expected, tmp_path, frames):
    matte_transport = {"path": "inline", "shm": "shm", "inline": "inline"}[frames]
    result = drive(bridge, client_dir, tmp_path, frames=frames, raw_frames=raw_frames,
                   mattes={"transport": matte_transport, "values": "logits"})
    assert "error" not in result, result
    assert result["session"]["frame_numbers"] == list(range(1001, 1009))
    assert [o["name"] for o in result["mattes"][0]["objects"]] == ["hero", "prop"]
    progress = [e for e in result["events"] if e[0] == "progress"]
    assert progress[-1][2:] == [N, N]
    check_logits(read_mattes(tmp_path, result), expected)
    assert result["closed_twice"] == "unknown_session"


def test_mattes_as_files_written_where_asked_and_finished(bridge, client_dir, expected_low_res, tmp_path):
    """File mattes go through the finishing stage (the bridge's finish.* settings, here the
    defaults plus a per-request grow), exactly as core.finishing does in-process."""
    import cv2

    from samroto.core.finishing.pipeline import Finisher
    from samroto.core.io import open_frames

    pattern = str(tmp_path / "mattes" / "shot_{name}.%04d.png")
    result = drive(bridge, client_dir, tmp_path / "o", frames="path",
                   mattes={"transport": "file", "pattern": pattern, "bit_depth": 16, "finish": {"grow": 1.5}})
    assert "error" not in result, result
    frames = [m["frame"] for m in result["mattes"]]
    assert frames == list(range(1001, 1009))
    plate = open_frames(str(PLATE / "plate.%04d.png"))
    finisher, plain = Finisher({}, device="cpu", grow=1.5), Finisher({}, device="cpu")
    grown = 0.0
    for m in result["mattes"]:
        assert [Path(p).name for p in m["paths"]] == [f"shot_hero.{m['frame']}.png", f"shot_prop.{m['frame']}.png"]
        logits = expected_low_res[m["frame"]]
        want = finisher.finish_frame({1: logits[0], 2: logits[1]}, plate.read(m["frame"]), m["frame"])
        without_grow = plain.finish_frame({1: logits[0], 2: logits[1]}, plate.read(m["frame"]), m["frame"])
        for k, path in enumerate(m["paths"]):
            alpha = cv2.imread(path, cv2.IMREAD_UNCHANGED) / 65535.0
            assert np.abs(alpha - want[k + 1]).mean() < 1e-3
            grown += float(np.abs(alpha - without_grow[k + 1]).sum())
    assert grown > 10, "the request's 1.5 px grow was applied"
    assert not list((tmp_path / "mattes").glob(".*")), "no temporary files left"


def test_alpha_mattes_inline_uint8(bridge, client_dir, expected, tmp_path):
    # finish: false -> SAM 2's own decision (logit > 0), nothing else
    result = drive(bridge, client_dir, tmp_path, frames="path",
                   mattes={"transport": "shm", "dtype": "uint8", "finish": False})
    got = read_mattes(tmp_path, result)
    for frame, logits in expected.items():
        assert set(np.unique(got[frame])) <= {0, 255}
        decided = np.abs(logits) > 1e-2
        assert ((got[frame] == 255) == (logits > 0))[decided].all()


# --- security --------------------------------------------------------------------------

def test_missing_or_wrong_token_refused(bridge, client_dir, tmp_path):
    wrong = drive(bridge, client_dir, tmp_path / "a", frames="path", token="0" * 64)
    assert wrong["error"]["class"] == "Unauthorized" and "token" in wrong["error"]["message"]
    missing = drive(bridge, client_dir, tmp_path / "b", frames="path", no_token=True)
    assert missing["error"]["class"] == "Unauthorized"
    # a request before hello is refused too, and the connection is closed
    sock = connect_raw(bridge, hello=False)
    protocol.send_message(sock, {"id": 1, "op": "status"})
    header, _ = protocol.recv_message(sock)
    assert header["error"]["code"] == "unauthorized"
    with pytest.raises(protocol.ConnectionClosed):
        protocol.recv_message(sock)


def test_discovery_file_private_and_unix_socket(bridge):
    path = bridge.config_dir / "bridge.json"
    assert path.stat().st_mode & 0o777 == 0o600
    info = json.loads(path.read_text())
    assert info["protocol"] == protocol.PROTOCOL_VERSION and info["pid"] == bridge.proc.pid
    assert info["address"]["family"] == "unix"
    assert os.stat(info["address"]["path"]).st_mode & 0o077 == 0


def test_version_mismatch_is_a_clear_error(bridge):
    sock = connect_raw(bridge, hello=False)
    protocol.send_message(sock, {"id": 1, "op": "hello", "version": 99, "token": bridge.info["token"]})
    header, _ = protocol.recv_message(sock)
    assert header["error"]["code"] == "version_mismatch" and "99" in header["error"]["message"]


# --- concurrency, cancel, disconnect -----------------------------------------------------

def test_two_clients_two_sessions_concurrently(bridge, client_dir, raw_frames, expected, tmp_path):
    a = drive(bridge, client_dir, tmp_path / "a", wait=False, frames="path",
              mattes={"transport": "inline", "values": "logits"})
    b = drive(bridge, client_dir, tmp_path / "b", wait=False, frames="shm", raw_frames=raw_frames,
              mattes={"transport": "shm", "values": "logits"})
    for proc in (a, b):
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    for name in ("a", "b"):
        result = json.loads((tmp_path / name / "result.json").read_text())
        assert "error" not in result, result
        check_logits(read_mattes(tmp_path / name, result), expected)


def test_cancel_mid_propagation(bridge, client_dir, tmp_path):
    result = drive(bridge, client_dir, tmp_path, frames="path", mattes={"transport": "inline"}, cancel_after=2,
                   after_cancel_prompts=True)
    assert result.get("cancelled") == "cancelled", result
    # stops within one frame: the frame in flight may finish, no more
    assert 2 <= len(result["mattes"]) <= 3, result["mattes"]
    assert result["after_cancel"] == N  # and the session still works


def test_leaving_the_event_loop_cancels(bridge, client_dir, tmp_path):
    result = drive(bridge, client_dir, tmp_path, frames="path", mattes={"transport": "shm"}, break_after=2,
                   after_cancel_prompts=True)
    assert "error" not in result, result
    assert len(result["mattes"]) == 2
    assert result["after_cancel"] == N  # the abandoned run was cancelled; a new one runs fully


def test_killed_client_frees_its_session(bridge, client_dir, tmp_path):
    raw = tmp_path / "f.raw"
    raw.write_bytes(bytes(W * H * 3))
    proc = drive(bridge, client_dir, tmp_path, wait=False, frames="shm", raw_frames=[str(raw)] * N,
                 mattes={"transport": "shm"}, hang_after=1)
    assert proc.stdout.readline().strip() == b"HANGING"
    with connect_raw(bridge) as sock:
        assert status(sock)["sessions"] >= 1
        ours = shm_names()  # the client's frame segment and unreleased matte segments
        assert ours, "the hung client should hold shared memory"
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 20
        while status(sock)["sessions"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert status(sock)["sessions"] == 0
    # its frame segment and any unreleased matte segments are gone
    deadline = time.monotonic() + 5
    while shm_names() & ours and time.monotonic() < deadline:
        time.sleep(0.05)
    assert shm_names() & ours == set()


# --- bad input -----------------------------------------------------------------------------

def connect_raw(bridge, hello=True):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(20)
    sock.connect(bridge.info["address"]["path"])
    if hello:
        protocol.send_message(sock, {"id": 0, "op": "hello", "version": 1, "token": bridge.info["token"]})
        header, _ = protocol.recv_message(sock)
        assert header["ok"], header
    return sock


def call(sock, header, payload=b"", seen=None):
    """Send a request and return its reply; other replies on the way go to ``seen``."""
    protocol.send_message(sock, header, payload)
    while True:
        reply, data = protocol.recv_message(sock)
        if "ok" in reply and reply.get("id") == header.get("id"):
            return reply
        if seen is not None and reply.get("ok") is False:
            seen.append(reply["error"]["code"])


def status(sock):
    return call(sock, {"id": 777, "op": "status"})


def test_bad_requests_get_clear_errors(bridge):
    sock = connect_raw(bridge)
    sid = call(sock, {"id": 1, "op": "open_session", "source": {"push": True, "first": 1, "last": 4,
                                                                 "width": W, "height": H}})["session"]
    frame = bytes(W * H * 3)
    cases = [
        ({"op": "nope"}, b"", "unknown_op"),
        ({"op": "put_frame", "session": "s0", "frame": 1, "shape": [H, W, 3], "dtype": "uint8"}, frame, "unknown_session"),
        ({"op": "put_frame", "session": sid, "frame": 9, "shape": [H, W, 3], "dtype": "uint8"}, frame, "frame_out_of_range"),
        ({"op": "put_frame", "session": sid, "frame": 1, "shape": [H, W + 1, 3], "dtype": "uint8"}, frame, "bad_frame"),
        ({"op": "put_frame", "session": sid, "frame": 1, "shape": [H, W, 3], "dtype": "float64"}, frame, "bad_frame"),
        ({"op": "put_frame", "session": sid, "frame": 1, "shape": [H, W, 3], "dtype": "uint8"}, frame[:-1], "bad_frame"),
        ({"op": "put_frame", "session": sid, "frame": 1, "shape": [H, W, 3], "dtype": "uint8", "shm": "srb_nothere"},
         b"", "shm_error"),
        ({"op": "add_prompts", "session": sid, "prompts": {"version": 1, "objects": [
            {"id": 1, "prompts": [{"frame": 7, "points": [[1, 1]], "labels": [1]}]}]}}, b"", "bad_prompts"),
        ({"op": "propagate", "session": sid}, b"", "bad_request"),
        ({"op": "clear_prompts", "session": sid, "object": 5}, b"", "unknown_object"),
        ({"op": "open_session", "source": {"path": "/nonexistent/plate.%04d.exr"}}, b"", "io_error"),
        ({"op": "open_session", "source": {"push": True, "first": 1, "last": 2, "width": -3, "height": 2}}, b"", "bad_request"),
    ]
    for i, (header, payload, code) in enumerate(cases, start=10):
        reply = call(sock, {"id": i, **header}, payload)
        assert reply["ok"] is False and reply["error"]["code"] == code, (header, reply)
        assert reply["error"]["message"]
    # a prompt on a frame that was never sent
    reply = call(sock, {"id": 50, "op": "add_prompts", "session": sid, "prompts": {"version": 1, "objects": [
        {"id": 1, "prompts": [{"frame": 2, "points": [[1, 1]], "labels": [1]}]}]}})
    assert reply["error"]["code"] == "bad_frame" and "put_frame" in reply["error"]["message"]
    # an oversized payload: error, then the connection is closed (it cannot be skipped cheaply)
    sock.sendall(protocol.encode({"id": 60, "op": "put_frame", "session": sid, "frame": 1}, b"\0" * (5 << 20))[0])
    header, _ = protocol.recv_message(sock)
    assert header["error"]["code"] == "too_large"
    sock.close()


# --- fuzz -----------------------------------------------------------------------------------

def hung_up(sock, within):
    """Whether the bridge closes ``sock`` within ``within`` seconds (messages on the way are read)."""
    sock.settimeout(within)
    try:
        while True:
            protocol.recv_message(sock)
    except (protocol.ConnectionClosed, ConnectionResetError):
        return True
    except (socket.timeout, OSError):
        return False


def test_fuzz_malformed_messages_then_valid_request(bridge):
    import threading

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    # Slow clients, held open through the whole fuzz: silent, half a hello, a hello drip-fed
    # a byte every 0.3 s, a header that announces more than it sends. They slow nobody down
    # and are dropped at the hello deadline (10 s after they connected), at the end.
    hello = protocol.encode({"id": 1, "op": "hello", "version": 1, "token": bridge.info["token"]})[0]
    slow = [connect_raw(bridge, hello=False) for _ in range(4)]
    slow_since = time.monotonic()
    slow[1].sendall(hello[:10])
    slow[3].sendall(protocol.PREFIX.pack(protocol.MAGIC, 3000) + b'{"id": 1, "op": "hello"')
    stop_drip = threading.Event()

    def drip():
        for i in range(len(hello)):
            if stop_drip.wait(0.3):
                return
            try:
                slow[2].sendall(hello[i:i + 1])
            except OSError:
                return

    threading.Thread(target=drip, daemon=True).start()

    sock = connect_raw(bridge)
    ops = ["ping", "status", "open_session", "close_session", "put_frame", "add_prompts", "clear_prompts",
           "propagate", "cancel", "release", "frame_numbers", "bogus", None, 3]
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=12)
    fields = st.dictionaries(
        st.sampled_from(["session", "frame", "shape", "dtype", "shm", "source", "prompts", "mattes", "direction",
                         "start", "first", "last", "object", "options", "color", "model", "id"]),
        json_values, max_size=6)

    sent, codes = [], []
    message = st.tuples(st.sampled_from(ops), fields, st.binary(max_size=64))

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(batch=st.lists(message, min_size=1, max_size=4))
    def arbitrary(batch):
        for op, extra, payload in batch:
            protocol.send_message(sock, {**extra, "op": op}, payload)
            sent.append(op)
        assert call(sock, {"id": "sync", "op": "ping"}, seen=codes)["ok"]  # the stream stays in step and alive

    arbitrary()

    # Deeper: valid requests on a real session, each with one field broken (cheap to make in
    # bulk, so hypothesis draws the seeds and a seeded generator expands each into 40).
    sid = call(sock, {"id": "o", "op": "open_session", "source": {"push": True, "first": 1, "last": 3,
                                                                  "width": 8, "height": 4}})["session"]
    pixels = bytes(8 * 4 * 3)
    templates = [
        ({"op": "put_frame", "session": sid, "frame": 1, "shape": [4, 8, 3], "dtype": "uint8"}, pixels),
        ({"op": "add_prompts", "session": sid, "prompts": {"version": 1, "objects": [
            {"id": 1, "name": "a", "prompts": [{"frame": 1, "points": [[1, 1]], "labels": [1]}]}]},
          "mattes": {"transport": "inline"}}, b""),
        ({"op": "propagate", "session": sid, "direction": "forward", "start": 1, "first": 1, "last": 3,
          "mattes": {"transport": "shm", "dtype": "uint8"}}, b""),
        ({"op": "clear_prompts", "session": sid, "object": 1}, b""),
        ({"op": "open_session", "source": {"push": True, "first": 1, "last": 2, "width": 8, "height": 4},
          "color": {"input": "srgb"}, "options": {}}, b""),
        ({"op": "cancel", "session": sid}, b""),
    ]
    junk = [None, -1, 0, 2**63, 1.5, True, "", "x" * 300, [], {}, [1, "a"], {"a": {}}, "nan", sid + "x"]

    def mutate(rng, value):
        if isinstance(value, dict) and value and rng.random() < 0.7:
            value = dict(value)
            key = rng.choice(sorted(value))
            if rng.random() < 0.2:
                del value[key]
            else:
                value[key] = mutate(rng, value[key])
            return value
        if isinstance(value, list) and value and rng.random() < 0.7:
            value = list(value)
            i = rng.randrange(len(value))
            value[i] = mutate(rng, value[i])
            return value
        return rng.choice(junk)

    @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(seed=st.integers(0, 2**32))
    def broken_fields(seed):
        import random

        rng = random.Random(seed)
        for _ in range(40):
            template, payload = rng.choice(templates)
            fields = {k: v for k, v in template.items() if k != "op"}
            key = rng.choice(sorted(fields))  # break exactly one field (maybe deep inside)
            if rng.random() < 0.2:
                del fields[key]
            else:
                fields[key] = mutate(rng, fields[key])
            # sometimes a valid-looking request under the wrong op
            header = {**fields, "op": rng.choice(templates)[0]["op"] if rng.random() < 0.1 else template["op"]}
            if payload and rng.random() < 0.3:
                payload = payload[: rng.randrange(len(payload))]
            protocol.send_message(sock, {**header, "id": rng.randrange(10**6)}, payload)
            sent.append(header["op"])
        assert call(sock, {"id": "sync", "op": "ping"}, seen=codes)["ok"]

    broken_fields()
    assert len(sent) >= 2000
    # every malformed request got a specific error, none fell through to a bug
    assert codes and "internal" not in codes and "engine_error" not in codes, sorted(set(codes))

    # garbage and truncated messages on fresh connections: error or hang-up, never a crash
    garbage_cases = [b"", b"GET / HTTP/1.1\r\n\r\n", b"SAMR\xff\xff\xff\xff", b"SAMR\x00\x00\x00\x05{\"a\"",
                     b"SAMR\x00\x00\x00\x02[]", b"\x00" * 100, os.urandom(2000)]

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(data=st.one_of(st.sampled_from(garbage_cases), st.binary(max_size=300)), auth=st.booleans())
    def garbage(data, auth):
        s = connect_raw(bridge, hello=auth)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        try:
            while s.recv(65536):
                pass
        except OSError:
            pass
        s.close()

    garbage()
    assert status(sock)["ok"]

    # Before hello: any first message but a good hello gets an error and a closed connection
    # (a bad id too), and only a small header is read
    weird_ids = st.sampled_from([1.5, [1], "x" * 201, {"a": 1}, True, None, -1, "ok"])

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(rid=st.one_of(weird_ids, json_values), op=st.sampled_from(["hello", "ping", "status", None, 7, "x" * 300]),
           token=st.sampled_from([bridge.info["token"], "0" * 64, None, 5, ""]), version=st.sampled_from([1, 2, "1", None]),
           extra=fields)
    def pre_hello(rid, op, token, version, extra):
        s = connect_raw(bridge, hello=False)
        try:
            protocol.send_message(s, {**extra, "id": rid, "op": op, "token": token, "version": version})
            reply, _ = protocol.recv_message(s)
            if reply.get("ok"):  # a good hello after all
                assert op == "hello" and token == bridge.info["token"] and version == 1
                return
            assert reply["error"]["code"] in ("unauthorized", "version_mismatch", "bad_request"), reply
            assert hung_up(s, 5.0), "a connection refused before hello must be closed"
        finally:
            s.close()

    pre_hello()
    big = connect_raw(bridge, hello=False)
    big.sendall(protocol.PREFIX.pack(protocol.MAGIC, 1 << 20))  # a 1 MiB header before hello: no
    assert protocol.recv_message(big)[0]["error"]["code"] == "too_large" and hung_up(big, 5.0)

    # Nested JSON, before and after hello: bad_message, never a RecursionError
    for authed, depth in [(False, 4000), (True, 100_000), (True, 33), (False, 33)]:
        s = connect_raw(bridge, hello=authed)
        text = (b'{"id": 1, "op": "ping", "x": ' + b"[" * depth + b"]" * depth + b"}")[:4000 if not authed else None]
        s.sendall(protocol.PREFIX.pack(protocol.MAGIC, len(text)) + text)
        assert protocol.recv_message(s)[0]["error"]["code"] == "bad_message" and hung_up(s, 5.0)
        s.close()

    # Shared-memory names: whatever a request names, the bridge removes no segment but the
    # ones of its own sessions (here: another program's segment and a POSIX semaphore)
    from _multiprocessing import SemLock, sem_unlink

    victim = protocol.shm_create(8 * 4 * 3)
    sem_name = f"samroto-fuzz-{os.getpid()}"
    semaphore = SemLock(1, 1, 1, "/" + sem_name, False)
    names = st.one_of(st.sampled_from([victim.name, "/" + victim.name, "sem." + sem_name, "../" + victim.name,
                                       victim.name + "x", "", "x" * 300, "srb_s000000000000_0000"]),
                      st.text(max_size=40))
    shm_sock = connect_raw(bridge)
    shm_sid = call(shm_sock, {"id": "o", "op": "open_session", "source": {"push": True, "first": 1, "last": 2,
                                                                            "width": 8, "height": 4}})["session"]

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(name=names, shape=st.sampled_from([[4, 8, 3], [3, 8, 3], [4, 8, 4], [4, 8]]),
           frame=st.sampled_from([1, 2, 3]))
    def shm_names_fuzz(name, shape, frame):
        reply = call(shm_sock, {"id": "f", "op": "put_frame", "session": shm_sid, "frame": frame, "shape": shape,
                                "dtype": "uint8", "shm": name})
        assert reply["ok"] or reply["error"]["code"] in ("shm_error", "bad_frame", "frame_out_of_range",
                                                         "bad_request", "too_large"), reply

    try:
        shm_names_fuzz()
        shm_sock.close()
        time.sleep(0.5)  # the connection's cleanup has run
        assert os.path.exists(f"/dev/shm/{victim.name}"), "another program's segment was removed"
        assert os.path.exists(f"/dev/shm/sem.{sem_name}"), "a semaphore was removed"
    finally:
        protocol.shm_unlink(victim)
        del semaphore
        try:
            sem_unlink("/" + sem_name)
        except OSError:
            pass

    # After close_session, pipelined requests naming the session are unknown_session
    session_ops = ["put_frame", "add_prompts", "clear_prompts", "propagate", "cancel", "close_session", "frame_numbers"]
    ac_sock = connect_raw(bridge)  # (the fuzz above left the first connection at its 64 sessions)

    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(batch=st.lists(st.tuples(st.sampled_from(session_ops), fields), min_size=1, max_size=5))
    def after_close(batch):
        sid = call(ac_sock, {"id": "o", "op": "open_session", "source": {"push": True, "first": 1, "last": 2,
                                                                        "width": 8, "height": 4}})["session"]
        protocol.send_message(ac_sock, {"id": "c", "op": "close_session", "session": sid})
        for i, (op, extra) in enumerate(batch):
            protocol.send_message(ac_sock, {**extra, "id": i, "op": op, "session": sid})
        replies = {}
        while len(replies) < len(batch) + 1:
            reply, _ = protocol.recv_message(ac_sock)
            if "ok" in reply:
                replies[reply["id"]] = reply
        assert replies["c"]["ok"]
        for i in range(len(batch)):
            assert replies[i]["error"]["code"] == "unknown_session", (batch[i], replies[i])

    after_close()
    ac_sock.close()
    assert status(sock)["ok"]
    sock.close()
    with connect_raw(bridge) as fresh:
        assert call(fresh, {"id": 1, "op": "ping"})["ok"]

    # the slow clients: dropped at the hello deadline
    stop_drip.set()
    for s in slow:
        assert hung_up(s, max(0.5, 12.0 - (time.monotonic() - slow_since))), "a slow client was not dropped"
        s.close()


# --- restart: last, it replaces the module's bridge --------------------------------------------

def test_bridge_killed_and_restarted_rebuilds_identical_mattes(bridge, client_dir, tmp_path):
    before = drive(bridge, client_dir, tmp_path / "a", frames="path", mattes={"transport": "inline", "values": "logits"})
    bridge.proc.kill()
    bridge.proc.wait()
    assert (bridge.config_dir / "bridge.json").exists() and discovery.live(bridge.config_dir) is None  # stale
    bridge.start()  # detects the stale file and replaces it
    after = drive(bridge, client_dir, tmp_path / "b", frames="path", mattes={"transport": "inline", "values": "logits"})
    assert "error" not in after, after
    a, b = read_mattes(tmp_path / "a", before), read_mattes(tmp_path / "b", after)
    assert sorted(a) == sorted(b)
    for frame in a:
        np.testing.assert_array_equal(a[frame], b[frame])
