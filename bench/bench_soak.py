"""Soak: N clients for M minutes against one `samroto serve`, with valid and invalid requests,
cancels, abrupt disconnects and killed client processes (issue 21).

    .venv/bin/python bench/bench_soak.py [--clients 8] [--minutes 10] [--seed 21]
        [--model CONFIG.yaml --checkpoint CKPT.pt] [--device cpu]

Starts a bridge (default: the test fixture model, tests/data/sam2_parity, on the CPU) in a
config dir of its own, warms it up (one full track per transport, then --warmup seconds of
the soak itself, not counted), and records the bridge process's
resident memory, open file descriptors and threads, and the shared-memory segments in
/dev/shm. Then each client (a process of its own) loops over random work until the time is
up: full tracks (file, pushed inline or shared-memory frames; file, shared-memory or inline
mattes; forward or both directions), propagations cancelled or abandoned midway, requests
pipelined after close_session, and a fuzz of invalid ones (malformed fields, nested JSON,
non-finite prompts, other programs' shared-memory names, huge spans and sizes, names too
long, garbage before hello, half messages then a hang-up). Every few seconds the parent
SIGKILLs one client mid-work and starts another. When the clients are gone it waits for the
bridge to settle and measures again.

Prints: requests answered (ok and errors by code), events, kills and cancels; the bridge's
figures at start, at the peak and at the end; the segments the soak saw that are still
there; and FAIL lines for a crash, an ``internal`` or ``engine_error`` reply, or a figure
not back within 5% of where it started (exit status 1; the work dir with the bridge's and
the clients' logs is kept then).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "data" / "sam2_parity"
PLATE = REPO / "tests" / "data" / "bridge"
W, H, N = 112, 80, 8
VICTIM_PREFIX = "soakvictim_"  # segments standing for other programs' (the bridge must leave them)
PROMPTS = {"version": 1, "objects": [
    {"id": 1, "name": "hero", "prompts": [{"frame": 1001, "points": [[66.9, 25.2]], "labels": [1]}]},
    {"id": 2, "name": "prop", "prompts": [{"frame": 1001, "box": [24.0, 34.0, 53.0, 67.0]}]},
]}


# --- the bridge process's figures ----------------------------------------------------------------

def figures(pid: int) -> dict:
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
    shm = [n for n in os.listdir("/dev/shm") if n.startswith("srb_")] if os.path.isdir("/dev/shm") else []
    return {"rss_mib": rss, "fds": len(os.listdir(f"/proc/{pid}/fd")), "threads": len(os.listdir(f"/proc/{pid}/task")),
            "shm": len(shm)}


# --- one client process ----------------------------------------------------------------------------

class Stats:
    def __init__(self, out):
        self.out = out

    def emit(self, kind, code="ok"):
        self.out.write(json.dumps([kind, code]) + "\n")
        self.out.flush()


def client_main(args) -> None:
    import numpy as np

    from samroto.bridge import client as bc
    from samroto.bridge import protocol

    rng = random.Random(args.seed)
    stats = Stats(sys.stdout)
    info = protocol.read_discovery(protocol.discovery_path(args.config_dir))
    out_dir = Path(args.out) / f"c{args.seed}"
    frames = []
    try:
        import cv2
        frames = [np.ascontiguousarray(cv2.imread(str(PLATE / f"plate.{1001 + i}.png"))[:, :, ::-1]) for i in range(N)]
    except Exception:  # noqa: BLE001 - any pixels will do
        frames = [np.random.default_rng(i).integers(0, 255, (H, W, 3), dtype=np.uint8) for i in range(N)]
    stop_at = time.monotonic() + args.seconds
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))

    def connect():
        c = bc.Client(info["address"], info["token"], timeout=30, name="soak")
        stats.emit("hello")
        return c

    def counted(fn, kind):
        try:
            result = fn()
            stats.emit(kind)
            return result
        except bc.BridgeError as exc:
            stats.emit(kind, exc.code)
            return None

    def raw(hello=True):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(info["address"]["path"])
        if hello:
            protocol.send_message(s, {"id": 0, "op": "hello", "version": 1, "token": info["token"]})
            reply, _ = protocol.recv_message(s)
            stats.emit("hello", "ok" if reply.get("ok") else reply["error"]["code"])
        return s

    def raw_call(s, header, payload=b"", text=None):
        if text is not None:
            s.sendall(protocol.PREFIX.pack(protocol.MAGIC, len(text)) + text)
        else:
            protocol.send_message(s, header, payload)
        while True:
            reply, _ = protocol.recv_message(s)
            if "ok" in reply and (text is not None or reply.get("id") == header.get("id")):
                stats.emit("raw", "ok" if reply["ok"] else reply["error"]["code"])
                return reply

    def open_shot(c, kind):
        if kind == "path":
            return c.open_session(source=str(PLATE / "plate.%04d.png"))
        session = c.open_session(first=1001, last=1000 + N, width=W, height=H)
        for i, pixels in enumerate(frames):
            counted(lambda: session.put_frame(1001 + i, pixels, transport=kind), "put_frame")
        return session

    def mattes_spec():
        transport = rng.choice(["file", "shm", "inline", "none"])
        if transport == "file":
            return {"transport": "file", "pattern": str(out_dir / "{name}.%04d.png"), "finish": {"grow": 1}}
        return {"transport": transport, "dtype": rng.choice(["uint8", "float32"])}

    def track(c):
        session = counted(lambda: open_shot(c, rng.choice(["path", "inline", "shm"])), "open_session")
        if session is None:
            return
        counted(lambda: session.add_prompts(PROMPTS, mattes=mattes_spec()), "add_prompts")
        how = rng.random()
        try:
            n = 0
            for event in session.propagate(direction=rng.choice(["forward", "both"]), mattes=mattes_spec()):
                stats.emit("event")
                n += 1
                if how < 0.2 and n == 3:
                    session.cancel()
                    stats.emit("cancel")
                if 0.2 <= how < 0.3 and n == 3:
                    stats.emit("abandon")
                    break  # leaving the loop cancels
            stats.emit("propagate")
        except bc.BridgeError as exc:
            stats.emit("propagate", exc.code)
        if rng.random() < 0.8:
            counted(session.close, "close_session")

    def invalid(c):
        s = raw()
        sid = raw_call(s, {"id": 1, "op": "open_session", "source": {"push": True, "first": 1, "last": 3, "width": 8,
                                                                     "height": 4}}).get("session", "s0")
        victim = protocol.shm_create(8 * 4 * 3, prefix=VICTIM_PREFIX)  # another program's segment
        try:
            cases = [
                ({"op": "put_frame", "session": sid, "frame": 1, "shape": [4, 8, 3], "dtype": "uint8", "shm": victim.name}, b""),
                ({"op": "put_frame", "session": sid, "frame": 9, "shape": [4, 8, 3], "dtype": "uint8"}, bytes(96)),
                ({"op": "put_frame", "session": sid, "frame": 1, "shape": [4, 8, 3], "dtype": "float64"}, bytes(96)),
                ({"op": "add_prompts", "session": sid, "prompts": {"version": 1, "objects": [
                    {"id": 1, "prompts": [{"frame": 1, "points": [[1, 1]], "labels": [1]}]}]}}, b""),
                ({"op": "propagate", "session": sid, "direction": "sideways"}, b""),
                ({"op": "propagate", "session": sid, "mattes": {"transport": "inline", "finish": {"grow": [1]}}}, b""),
                ({"op": "open_session", "source": {"path": str(PLATE / "plate.%04d.png"), "first": 1, "last": 10 ** 9}}, b""),
                ({"op": "open_session", "source": {"push": True, "first": 1, "last": 2, "width": 32768, "height": 32768}}, b""),
                ({"op": "open_session", "source": {"path": "/" + "n" * 300 + "/p.%04d.exr"}}, b""),
                ({"op": "open_session", "source": {"path": "/nonexistent/plate.%04d.exr"}}, b""),
                ({"op": "clear_prompts", "session": sid, "object": 5}, b""),
                ({"op": "nope"}, b""),
                ({"op": "put_frame", "session": [[[[1]]]]}, b""),
                ({"op": "frame_numbers", "session": sid, "offset": -1}, b""),
            ]
            for i, (header, payload) in enumerate(rng.sample(cases, k=rng.randrange(3, len(cases)))):
                raw_call(s, {"id": 100 + i, **header}, payload)
            nan = ('{"id": 7, "op": "add_prompts", "session": "%s", "prompts": {"version": 1, "objects": [{"id": NaN, '
                   '"prompts": [{"frame": 1e400, "points": [[1, 1]], "labels": [1]}]}]}}' % sid).encode()
            raw_call(s, {}, text=nan)
            # after close_session, pipelined
            protocol.send_message(s, {"id": "c", "op": "close_session", "session": sid})
            protocol.send_message(s, {"id": "a", "op": "propagate", "session": sid})
            for _ in range(2):
                reply, _ = protocol.recv_message(s)
                stats.emit("raw", "ok" if reply.get("ok") else reply["error"]["code"])
            if rng.random() < 0.5:  # nested JSON: bad_message, then the bridge hangs up
                text = b'{"id": 1, "op": "ping", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"
                raw_call(s, {}, text=text)
        finally:
            s.close()
            protocol.shm_unlink(victim)

    def hostile():
        kind = rng.choice(["garbage", "bad-id", "half-message", "pre-hello-big"])
        s = raw(hello=kind == "half-message")
        try:
            if kind == "garbage":
                s.sendall(os.urandom(rng.randrange(1, 200)))
            elif kind == "bad-id":
                protocol.send_message(s, {"id": rng.choice([1.5, [1], "x" * 201]), "op": "hello", "version": 1,
                                          "token": info["token"]})
            elif kind == "half-message":
                s.sendall(protocol.encode({"id": 1, "op": "ping", "pad": "x" * 100})[0][:30])
            else:
                s.sendall(protocol.PREFIX.pack(protocol.MAGIC, 1 << 20) + b"{")
            s.settimeout(3)
            reply, _ = protocol.recv_message(s)
            stats.emit("hostile", reply["error"]["code"] if not reply.get("ok") else "ok")
        except (protocol.ConnectionClosed, OSError):
            stats.emit("hostile", "closed")
        finally:
            s.close()

    def crash(c):
        """Die mid-propagation without cleaning up: the frame segment stays for the bridge."""
        session = counted(lambda: open_shot(c, "shm"), "open_session")
        if session is None:
            return
        counted(lambda: session.add_prompts(PROMPTS), "add_prompts")
        events = c.stream("propagate", session=session.id, mattes={"transport": "shm"})
        next(events, None)  # sent, and under way
        time.sleep(rng.uniform(0, 0.3))
        c._frame_shms.clear()  # as if the process died: nothing unlinked by us
        c._sock.close()
        stats.emit("crash")

    c = connect()
    while time.monotonic() < stop_at:
        action = rng.random()
        try:
            if action < 0.45:
                track(c)
            elif action < 0.65:
                invalid(c)
            elif action < 0.8:
                hostile()
            elif action < 0.85:
                crash(c)
                c = connect()
            else:
                counted(c.ping if rng.random() < 0.5 else c.status, "ping")
        except bc.ConnectionLost:
            stats.emit("reconnect")
            c = connect()
        except bc.BridgeError as exc:
            stats.emit("unexpected", exc.code)
        except (OSError, protocol.ConnectionClosed, protocol.ProtocolError) as exc:
            stats.emit("unexpected", type(exc).__name__)
            c.close()
            c = connect()
    c.close()


# --- the parent ------------------------------------------------------------------------------------

def start_bridge(args, config_dir: str):
    env = {**os.environ, "SAMROTO_CONFIG_DIR": config_dir, "OMP_NUM_THREADS": "1", "SAMROTO_DEVICE": args.device,
           "SAMROTO_BRIDGE_MAX_PAYLOAD_MB": "64"}
    log = open(os.path.join(config_dir, "serve.log"), "ab")
    proc = subprocess.Popen([sys.executable, "-m", "samroto", "serve", "--model", args.model, "--checkpoint",
                             args.checkpoint, "--idle-timeout", "0"], env=env, stdout=log, stderr=subprocess.STDOUT,
                            cwd=REPO)
    from samroto.bridge import discovery
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        info = discovery.live(config_dir)
        if info is not None and info["pid"] == proc.pid:
            return proc, info
        if proc.poll() is not None:
            raise SystemExit(f"the bridge exited at start; see {config_dir}/serve.log")
        time.sleep(0.1)
    raise SystemExit("the bridge did not come up")


def warm_up(info, out: str) -> None:
    from samroto.bridge.client import Client
    with Client(info["address"], info["token"], timeout=60) as c:
        for transport in ("inline", "shm", "file"):
            mattes = {"transport": transport}
            if transport == "file":
                mattes["pattern"] = os.path.join(out, "warm", "{name}.%04d.png")
            s = c.open_session(source=str(PLATE / "plate.%04d.png"))
            s.add_prompts(PROMPTS)
            for _ in s.propagate(direction="both", mattes=mattes):
                pass
            s.close()


def settle(pid: int, seconds: float) -> dict:
    """Figures once they stop falling (sessions freed, threads gone), at most ``seconds``."""
    last = figures(pid)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(2.0)
        now = figures(pid)
        if now["fds"] == last["fds"] and now["threads"] == last["threads"] and abs(now["rss_mib"] - last["rss_mib"]) < 1:
            return now
        last = now
    return last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--model", default=str(FIXTURE / "config.yaml"))
    parser.add_argument("--checkpoint", default=str(FIXTURE / "checkpoint.pt"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--kill-every", type=float, default=5.0, help="seconds between client SIGKILLs (0: none)")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds of uncounted soak before the start figures")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--config-dir", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args)
        return 0

    work = tempfile.mkdtemp(prefix="samroto-soak-")
    config_dir = os.path.join(work, "cfg")
    os.makedirs(config_dir)
    shm_before = set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
    proc, info = start_bridge(args, config_dir)
    print(f"soak: {args.clients} clients x {args.minutes:g} min against bridge pid {proc.pid} "
          f"({Path(args.model).name} on {args.device}), seed {args.seed}; work dir {work}", flush=True)
    warm_up(info, work)
    counts: collections.Counter = collections.Counter()
    lock = threading.Lock()
    rng = random.Random(args.seed)
    next_seed = [args.seed * 1000]

    def spawn(t_end, tally):
        next_seed[0] += 1
        child = subprocess.Popen([sys.executable, __file__, "--client", "--config-dir", config_dir, "--out", work,
                                  "--seed", str(next_seed[0]), "--seconds", str(max(1.0, t_end - time.monotonic()))],
                                 stdout=subprocess.PIPE, stderr=open(os.path.join(work, f"client{next_seed[0]}.log"), "wb"),
                                 text=True, cwd=REPO)

        def read():
            for line in child.stdout:
                try:
                    kind, code = json.loads(line)
                except ValueError:
                    continue
                with lock:
                    tally[(kind, code)] += 1
        threading.Thread(target=read, daemon=True).start()
        return child

    def phase(seconds, tally, peak):
        """The clients for ``seconds``, one SIGKILLed every --kill-every; returns (kills, crashed)."""
        t_end = time.monotonic() + seconds
        children = [spawn(t_end, tally) for _ in range(args.clients)]
        kills = 0
        next_kill = time.monotonic() + args.kill_every if args.kill_every > 0 else float("inf")
        crashed = False
        while time.monotonic() < t_end:
            time.sleep(0.5)
            if proc.poll() is not None:
                crashed = True
                break
            now = figures(proc.pid)
            peak.update({k: max(peak.get(k, 0), now[k]) for k in now})
            if time.monotonic() > next_kill and t_end - time.monotonic() > 5:
                victim = rng.randrange(len(children))
                children[victim].kill()
                children[victim].wait()
                kills += 1
                children[victim] = spawn(t_end, tally)
                next_kill = time.monotonic() + args.kill_every
        for child in children:
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        return kills, crashed

    # warm-up: the same clients for a while, not counted, so that the starting figures are
    # those of a bridge that has run every code path (lazily built kernels, allocator pools)
    warm_counts: collections.Counter = collections.Counter()
    _, crashed = phase(args.warmup, warm_counts, {}) if args.warmup > 0 else (0, False)
    if crashed:
        raise SystemExit(f"the bridge exited during the warm-up; see {config_dir}/serve.log")
    start = settle(proc.pid, 60)
    peak = dict(start)
    kills, crashed = phase(args.minutes * 60, counts, peak)
    crashed = crashed or proc.poll() is not None
    end = settle(proc.pid, 60) if not crashed else None

    # what is new in /dev/shm: the bridge's own segments (srb_ + 16 hex digits) and its sessions'
    # client segments (srb_s...) must be gone; the stand-ins for other programs' segments are the
    # soak's to remove (a client killed before it did leaves one), anything else is not ours
    shm_after = set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
    new = sorted(shm_after - shm_before)
    shm_left = [n for n in new if n.startswith("srb_")]
    victims = [n for n in new if n.startswith(VICTIM_PREFIX)]
    for name in victims:
        os.unlink(os.path.join("/dev/shm", name))

    ok = sum(v for (k, c), v in counts.items() if c == "ok" and k not in ("event", "cancel", "abandon", "crash"))
    errors = collections.Counter()
    for (kind, code), v in counts.items():
        if code not in ("ok", "closed") and kind not in ("event", "unexpected"):
            errors[code] += v
    print(f"\nrequests answered: {ok + sum(errors.values())} ({ok} ok, {sum(errors.values())} errors); "
          f"events {counts[('event', 'ok')]}; cancels {counts[('cancel', 'ok')]}, abandoned propagations "
          f"{counts[('abandon', 'ok')]}, clients dying mid-propagation {counts[('crash', 'ok')]}, SIGKILLed "
          f"clients {kills}; hostile connections the bridge hung up on without a reply {counts[('hostile', 'closed')]}")
    print("errors by code: " + ", ".join(f"{c} {v}" for c, v in sorted(errors.items(), key=lambda kv: -kv[1])))
    by_kind = collections.Counter()
    for (kind, code), v in counts.items():
        by_kind[kind] += v
    print("by request kind: " + ", ".join(f"{k} {v}" for k, v in sorted(by_kind.items())))
    failures = []
    if crashed:
        failures.append(f"the bridge exited (status {proc.returncode}); see {config_dir}/serve.log")
    else:
        print(f"\n{'':16} {'start':>9} {'peak':>9} {'end':>9} {'change':>8}")
        for key, label in (("rss_mib", "RSS MiB"), ("fds", "fds"), ("threads", "threads"), ("shm", "/dev/shm srb_*")):
            change = (end[key] - start[key]) / start[key] * 100 if start[key] else 0.0
            print(f"{label:16} {start[key]:9.0f} {peak[key]:9.0f} {end[key]:9.0f} {change:+7.1f}%")
            if end[key] > start[key] * 1.05:
                failures.append(f"{label} did not come back within 5% ({start[key]:.0f} -> {end[key]:.0f})")
    print(f"bridge and session segments left in /dev/shm: {len(shm_left)}"
          + (f" ({', '.join(shm_left[:8])}{', ...' if len(shm_left) > 8 else ''})" if shm_left else "")
          + f"; other programs' stand-ins left by killed clients (removed now): {len(victims)}"
          + f"; other new entries (not the soak's): {len(new) - len(shm_left) - len(victims)}")
    for code in ("internal", "engine_error"):
        if errors.get(code):
            failures.append(f"{errors[code]} '{code}' replies (see {config_dir}/serve.log)")
    unexpected = {c: v for (k, c), v in counts.items() if k == "unexpected"}
    if unexpected:
        failures.append(f"client-side surprises: {unexpected}")
    if shm_left:
        failures.append(f"{len(shm_left)} shared-memory entries left")

    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    for failure in failures:
        print("FAIL:", failure)
    print("PASS" if not failures else f"{len(failures)} failure(s); logs in {work}")
    if not failures:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
