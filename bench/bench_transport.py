"""Per-frame overhead of the bridge's frame transports vs an in-process memcpy.

    .venv/bin/python bench/bench_transport.py [--repeat 10] [--sizes 1920x1080,4096x2160]

Starts a bridge server in a separate process (no model: the engine is a stub, so only the
transport is timed) and, for float32 RGB frames of each size, times one ``put_frame``
round trip (client -> bridge, pixels checked and stored) through:

- inline: the pixels in the message payload over the socket;
- shm: the client copies into its shared-memory segment, the bridge copies out;
- path: the bridge decodes the frame from an EXR file (timed as core.io's read of that file,
  which is what a path-referenced session does per frame), plus one message round trip;

against ``np.copyto`` of the same frame in one process (the floor any transport pays once).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np


def serve(config_dir: str) -> None:
    from samroto.bridge.server import BridgeServer, ServerConfig, install_signal_handlers

    class StubEngine:
        obj_ids: list = []

    server = BridgeServer(ServerConfig(config_dir=config_dir, idle_timeout=0, max_payload=1 << 30),
                          lambda frames, options: StubEngine(), {"name": "stub"})
    server.bind()
    install_signal_handlers(server)  # terminate() -> clean shutdown (socket, discovery file)
    server.serve_forever()


def timed(fn, repeat: int) -> float:
    fn()  # warm up (segment creation, page faults)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--sizes", default="1920x1080,4096x2160")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve)

    from samroto.bridge import discovery
    from samroto.bridge.client import Client

    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen([sys.executable, __file__, "--serve", tmp])
        try:
            deadline = time.monotonic() + 60
            while discovery.live(tmp) is None:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("bench bridge did not start")
                time.sleep(0.05)
            info = discovery.live(tmp)
            client = Client(info["address"], info["token"])
            print(f"# {os.cpu_count()} CPUs, median of {args.repeat}, float32 RGB frames, ms per frame")
            print(f"{'size':>10} {'MB':>6} {'memcpy':>8} {'inline':>8} {'shm':>8} {'path(exr)':>10} "
                  f"{'inline-x':>8} {'shm-x':>7}")
            for size in args.sizes.split(","):
                w, h = (int(v) for v in size.split("x"))
                frame = np.random.default_rng(0).random((h, w, 3), dtype=np.float32)
                dst = np.empty_like(frame)
                memcpy = timed(lambda: np.copyto(dst, frame), args.repeat)
                session = client.open_session(first=1, last=1, width=w, height=h)
                inline = timed(lambda: session.put_frame(1, frame, transport="inline"), args.repeat)
                shm = timed(lambda: session.put_frame(1, frame, transport="shm"), args.repeat)
                path = path_cost(frame, tmp, args.repeat) + timed(client.ping, args.repeat)
                session.close()
                print(f"{size:>10} {frame.nbytes / 1e6:6.1f} {memcpy:8.2f} {inline:8.2f} {shm:8.2f} {path:10.2f} "
                      f"{inline / memcpy:7.1f}x {shm / memcpy:6.1f}x")
            client.close()
        finally:
            proc.terminate()
            proc.wait(30)


def path_cost(frame: np.ndarray, tmp: str, repeat: int) -> float:
    """core.io's decode of the frame as a half-float EXR (what a path-referenced session pays)."""
    from samroto.core.io import open_frames

    import OpenImageIO as oiio

    path = os.path.join(tmp, "plate.0001.exr")
    out = oiio.ImageOutput.create(path)
    spec = oiio.ImageSpec(frame.shape[1], frame.shape[0], 3, "half")
    spec.attribute("compression", "zip")
    out.open(path, spec)
    out.write_image(frame)
    out.close()
    source = open_frames(os.path.join(tmp, "plate.%04d.exr"), color="srgb")

    def read():
        source._forget()  # time a decode, not the recent-frames cache
        source.read(1)

    return timed(read, repeat)


if __name__ == "__main__":
    main()
