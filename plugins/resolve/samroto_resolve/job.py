"""A tracking job: the bridge work runs in a thread, the host polls for events.

Resolve's scripting objects are only touched from the script's own thread (the UI timer or
the no-window loop); the worker only talks to the bridge.
"""

from . import link


class TrackJob(object):
    def __init__(self, request, runner=None):
        self.request = request
        first, last = request["range"]
        self.total = max(1, last - first + 1)
        self.done = 0
        self.frames = set()
        self.state = "RUNNING"  # RUNNING, FINISHED, CANCELLED, ERROR
        self.message = ""
        runner = runner or link.run_track
        self.worker = link.background(lambda emit, cancelled: runner(request, emit, cancelled))

    def start(self):
        self.worker.start()
        return self

    def cancel(self):
        self.worker.cancel()

    def poll(self):
        """Apply the events that arrived; returns them (for a log) and leaves the state."""
        seen = self.worker.take()
        for event in seen:
            kind = event[0]
            if kind == "progress":
                self.done, self.total = event[1] or self.done, event[2] or self.total
            elif kind == "matte":
                self.frames.add(event[1])
                self.done = max(self.done, len(self.frames))
            elif kind == "done":
                self.state, self.message = "FINISHED", "Tracked %d frames." % len(self.frames)
            elif kind == "cancelled":
                self.state = "CANCELLED"
                self.message = "Cancelled after %d frames (those mattes are kept)." % len(self.frames)
            elif kind == "error":
                self.state, self.message = "ERROR", event[1]
        return seen

    @property
    def fraction(self):
        return min(1.0, float(self.done) / self.total)

    def wait(self, timeout=None):
        self.worker.join(timeout)
        return self.poll()
