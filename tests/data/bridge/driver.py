"""A bridge client program for tests/test_bridge_server.py, run as a host would run it.

The test copies this file next to bridge/client.py and bridge/protocol.py in an empty folder
and starts it with ``python -I -S``: no site-packages, so no samroto, torch or numpy. It
reads one JSON job (argv[1]), drives the bridge, and writes what it got to argv[2]/ (raw
matte bytes per frame plus result.json). Python 3.7 syntax, standard library only.
"""

import json
import os
import sys
import time

# as a host plugin does: put its own folder (holding only the client files) on sys.path
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import client  # noqa: E402  the copied bridge client, a top-level module


def main():
    job = json.loads(sys.argv[1])
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    result = {"sys_path": sys.path, "modules": sorted(m for m in ("numpy", "torch", "samroto") if m in sys.modules)}
    for name in ("numpy", "torch", "samroto"):
        try:
            __import__(name)
            result.setdefault("importable", []).append(name)
        except ImportError:
            pass
    try:
        run(job, out, result)
    except client.BridgeError as exc:
        result["error"] = {"class": type(exc).__name__, "code": exc.code, "message": exc.message}
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump(result, f)


def connect(job):
    if job.get("token") is not None or job.get("no_token"):
        info = client.protocol.read_discovery()
        return client.Client(info["address"], None if job.get("no_token") else job["token"])
    return client.Client.connect(python=job.get("python"), timeout=60)


def open_session(bridge, job, frames):
    mode = job["frames"]
    if mode == "path":
        return bridge.open_session(source=job["pattern"])
    first = job["first"]
    session = bridge.open_session(first=first, last=first + len(frames) - 1, width=job["width"],
                                  height=job["height"])
    for i, path in enumerate(frames):
        with open(path, "rb") as f:
            data = f.read()
        session.put_frame(first + i, data, shape=[job["height"], job["width"], 3], dtype="uint8", transport=mode)
    return session


def run(job, out, result):
    bridge = connect(job)
    result["hello"] = bridge.server
    if job.get("only_hello"):
        result["ping"] = bridge.ping()
        return
    session = open_session(bridge, job, job.get("raw_frames", []))
    result["session"] = session.info
    prompted = session.add_prompts(job["prompts"], mattes=job.get("mattes"))
    save(prompted, out, "prompt")
    events = []
    received = []
    try:
        for event in session.propagate(direction=job.get("direction", "forward"), mattes=job.get("mattes")):
            events.append([event.kind, event.frame, event.done, event.total])
            if event.matte is not None:
                received.append(event.matte)
                if job.get("hang_after") and len(received) >= job["hang_after"]:
                    print("HANGING", flush=True)
                    time.sleep(3600)
                if job.get("cancel_after") and len(received) == job["cancel_after"]:
                    session.cancel()
                if job.get("break_after") and len(received) == job["break_after"]:
                    break  # leaving the loop cancels the work on the bridge
    except client.Cancelled as exc:
        result["cancelled"] = exc.message
    result["events"] = events
    save(received, out, "track")
    result["mattes"] = [{"frame": m.frame, "objects": m.objects, "paths": m.paths, "shape": m.shape,
                         "dtype": m.dtype} for m in received]
    if job.get("after_cancel_prompts"):  # the session still works after a cancel
        result["after_cancel"] = sum(1 for e in session.propagate() if e.kind == "progress")
    session.close()
    try:
        session.close()
    except client.UnknownSession as exc:
        result["closed_twice"] = exc.code
    bridge.close()


def save(mattes, out, what):
    for m in mattes:
        if m.data is not None:
            with open(os.path.join(out, "{}_{}.bin".format(what, m.frame)), "wb") as f:
                f.write(m.data)


if __name__ == "__main__":
    main()
