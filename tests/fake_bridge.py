"""A stand-in for a connected bridge client (``samroto.bridge.client.Client``) in the plugin
and host-kit tests, where a real `samroto serve` would be slow; tests/test_*_bridge.py run the
same paths against the real bridge.

``FakeBridge.track_shot`` keeps the client's contract (bridge/client.py): it walks the frames
the way the bridge plans them (forward from ``start`` to ``last``, then backward to ``first``;
``start`` defaults to the first prompted frame in range, the last one for backward), writes
each object's matte file where the bridge would (``{name}`` -> the file-safe name, the frame
token filled in, as samroto.core does it), hands ``on_event`` the client's own Event/Matte
objects (a matte event, then a progress event, per frame), checks ``cancelled`` before each
frame and returns "done" or "cancelled". Errors are the client's BridgeErrors with ``step``.
"""

import os
import threading
import time

from samroto.bridge import client
from samroto.core.io.mattes import safe_name
from samroto.core.io.patterns import format_frame_path


def write_marker(path, frame, index):
    """The default matte writer: a small file (tests that read pixels pass their own)."""
    with open(path, "wb") as fh:
        fh.write(b"matte %d %d" % (frame, index))


class FakeBridge(object):
    def __init__(self, write=write_marker, delay=0.0, fail=None, hold_after=None):
        """``write(path, frame, i)`` writes the i-th frame's matte; ``fail``: (frame, BridgeError)
        raised when that frame comes up; ``hold_after``: after that many frames, wait until
        cancelled (the artist presses Cancel then)."""
        self.write, self.delay, self.fail, self.hold_after = write, delay, fail, hold_after
        self.calls = []
        self.frames = []  # every frame tracked, in order
        self.closed = False
        self.reached = threading.Event()  # set when hold_after frames are done

    def order(self, prompts, direction, start, first, last):
        if start is None:
            prompted = sorted({p["frame"] for o in prompts["objects"] for p in o["prompts"]})
            inside = [f for f in prompted if first <= f <= last] or prompted or [first]
            start = inside[-1] if direction == "backward" else inside[0]
        if direction == "backward":
            return list(range(start, first - 1, -1))
        forward = list(range(start, last + 1))
        return forward + (list(range(start - 1, first - 1, -1)) if direction == "both" else [])

    def track_shot(self, source, prompts, direction="both", start=None, first=None, last=None,
                   source_first=None, source_last=None, color=None, model=None, options=None,
                   mattes=None, on_event=None, cancelled=None):
        call = dict(source=source, prompts=prompts, direction=direction, start=start, first=first,
                    last=last, source_first=source_first, source_last=source_last, color=color,
                    model=model, options=options, mattes=mattes)
        self.calls.append(call)
        is_cancelled = client.cancel_check(cancelled)
        objects = [{"id": o["id"], "name": o["name"]} for o in prompts["objects"]]
        frames = self.order(prompts, direction, start, first, last)
        for i, frame in enumerate(frames):
            if is_cancelled():
                return "cancelled"
            if self.fail is not None and frame == self.fail[0]:
                self.fail[1].step = "propagate"
                raise self.fail[1]
            self.frames.append(frame)
            paths = []
            if mattes is not None and mattes.get("transport") == "file":
                for o in objects:
                    path = str(format_frame_path(mattes["pattern"], frame, safe_name(o["name"])))
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    self.write(path, frame, i)
                    paths.append(path)
                header = {"event": "matte", "frame": frame, "objects": objects, "paths": paths}
                on_event(client.Event(header, client.Matte(frame, objects, paths=paths)))
            on_event(client.Event({"event": "progress", "done": i + 1, "total": len(frames), "frame": frame}))
            if self.hold_after is not None and i + 1 == self.hold_after:
                self.reached.set()
                while not is_cancelled():
                    time.sleep(0.01)
            time.sleep(self.delay)
        return "cancelled" if is_cancelled() else "done"

    def close(self):
        self.closed = True
