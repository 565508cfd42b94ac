"""The host kit's side of the interactive loop (issue 18), without a bridge: the debouncer
that turns a drag's 30 updates a second into a few requests (newest wins), on a fake clock;
the worker that runs them; the prompts document with a chosen candidate's mask."""

import threading
import time

from samroto.bridge import hostkit


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def drag(debouncer, clock, updates=30, seconds=1.0, request_s=0.0):
    """``updates`` evenly over ``seconds``; each request takes ``request_s`` (fake time).
    Returns the values sent, in order."""
    sent, busy_until = [], None
    step = seconds / updates
    for i in range(updates):
        clock.now += step
        if busy_until is not None and clock.now >= busy_until:
            debouncer.done()
            busy_until = None
        debouncer.push(i)
        value = debouncer.take()
        if value is not None:
            sent.append(value)
            busy_until = clock.now + request_s
    # the drag ended: let the last value go
    for _ in range(100):
        clock.now += step
        if busy_until is not None and clock.now >= busy_until:
            debouncer.done()
            busy_until = None
        value = debouncer.take()
        if value is not None:
            sent.append(value)
            busy_until = clock.now + request_s
    return sent


def test_a_drag_of_30_updates_a_second_costs_a_few_requests_newest_wins():
    clock = FakeClock()
    debouncer = hostkit.Debouncer(interval=0.25, clock=clock)
    sent = drag(debouncer, clock)
    assert debouncer.pushed == 30
    assert 3 <= len(sent) <= 6, sent  # about 1 / interval a second, plus the last one
    assert sent[0] == 0 and sent[-1] == 29  # the first goes at once, the newest always goes last
    assert sent == sorted(sent)  # never an older value after a newer one
    assert debouncer.sent == len(sent)


def test_slow_requests_mean_fewer_requests_not_a_queue():
    clock = FakeClock()
    debouncer = hostkit.Debouncer(interval=0.1, clock=clock)
    sent = drag(debouncer, clock, request_s=0.4)  # each request takes 0.4 s
    assert len(sent) <= 4 and sent[-1] == 29, sent
    # one in flight at a time: nothing is taken while busy
    d = hostkit.Debouncer(interval=0.0, clock=clock)
    d.push("a")
    assert d.take() == "a" and d.take() is None
    d.push("b")
    d.push("c")
    assert d.take() is None and d.wait_time() is None
    d.done()
    assert d.take() == "c"


def test_latest_wins_worker_runs_the_newest_in_a_thread():
    ran = []
    gate = threading.Event()

    def work(value):
        gate.wait(2)
        ran.append(value)
        if value == "boom":
            raise RuntimeError("bridge said no")
        return value * 2

    loop = hostkit.LatestWins(work, interval=0.0)
    try:
        loop.push(1)
        time.sleep(0.05)  # 1 is in flight; these wait, the newest wins
        for v in (2, 3, 4):
            loop.push(v)
        gate.set()
        assert loop.wait_idle(5)
        assert ran == [1, 4]
        assert loop.take() == [(1, 2), (4, 8)]
        loop.push("boom")
        assert loop.wait_idle(5)
        ((value, result),) = loop.take()
        assert value == "boom" and isinstance(result, RuntimeError)
    finally:
        loop.close()


def test_a_chosen_mask_is_the_frames_whole_prompt():
    doc = hostkit.prompts_document([{"id": 1, "name": "car",
                                     "points": [(1001, 10, 20, True), (1002, 5, 5, True)],
                                     "boxes": [(1001, 0, 0, 30, 30)],
                                     "masks": [(1001, "/m/car.1001.png")]}])
    assert doc["objects"][0]["prompts"] == [{"frame": 1001, "mask": "/m/car.1001.png"},
                                            {"frame": 1002, "points": [[5.0, 5.0]], "labels": [1]}]
    assert hostkit.frame_prompt(doc, 1, 1002) == {"points": [[5.0, 5.0]], "labels": [1]}
    assert hostkit.frame_prompt(doc, 1, 1003) is None and hostkit.frame_prompt(doc, 2, 1001) is None


class _Matte:
    def __init__(self, frame, objects, paths):
        self.frame, self.objects, self.paths = frame, objects, paths


class StubSession:
    def __init__(self, log, fail_first):
        self.log, self.fail = log, fail_first

    def prompt_frame(self, frame, object_id, prompt, name=None, mattes=None, candidates=None):
        self.log.append(("prompt_frame", frame, object_id, prompt, mattes, candidates))
        if self.fail:
            self.fail = False
            raise hostkit.client.UnknownSession("no session s1: it was evicted")
        reply = {"encoded": len(self.log) < 3, "encoder_runs": 1, "correction": False, "best": 1,
                 "candidates": [{"index": i, "iou": q} for i, q in enumerate((0.2, 0.9, 0.5))]}
        cand = _Matte(frame, [{"id": object_id, "name": "%s_candidate%d" % (name, i + 1)} for i in range(3)],
                      ["/c/%d.tif" % i for i in range(3)])
        return reply, [_Matte(frame, [{"id": object_id, "name": name}], ["/m/%s.%d.tif" % (name, frame)])], cand

    def choose_candidate(self, frame, object_id, candidate, mask=None, mattes=None):
        self.log.append(("choose_candidate", frame, object_id, candidate, mask))
        return {"mask": mask, "encoder_runs": 1}, [_Matte(frame, [{"id": object_id, "name": "x"}], ["/m/x.tif"])]


def test_live_session_reopens_a_lost_session_and_reads_the_answers():
    log, opened = [], []

    class StubClient:
        def open_session(self, **kwargs):
            opened.append(kwargs)
            return StubSession(log, fail_first=len(opened) == 1)

        def close(self):
            log.append("closed")

    live = hostkit.LiveSession(StubClient, "/p/plate.%04d.exr", 1001, 1010, "/tmp/live", color="srgb")
    got = live.prompt(1003, 7, "car", {"points": [[1, 2]], "labels": [1]})
    assert len(opened) == 2 and "closed" in log  # the evicted session was opened again
    assert opened[0] == {"source": "/p/plate.%04d.exr", "first": 1001, "last": 1010, "color": "srgb",
                         "model": None, "options": {}}
    assert got.frame == 1003 and got.object_id == 7 and got.paths == {7: "/m/car.1003.tif"} and got.best == 1
    assert [(c.index, c.iou, c.path) for c in got.candidates] == [(0, 0.2, "/c/0.tif"), (1, 0.9, "/c/1.tif"),
                                                                  (2, 0.5, "/c/2.tif")]
    mattes, cands = log[-1][4], log[-1][5]
    assert mattes["format"] == "tiff" and mattes["bit_depth"] == 8 and mattes["finish"] is False
    assert mattes["pattern"] == "/tmp/live/{name}.%04d.tif" and cands["pattern"].startswith("/tmp/live/candidates/")
    chosen = live.choose(1003, 7, 2)
    assert log[-1] == ("choose_candidate", 1003, 7, 2, "/tmp/live/masks/7.1003.candidate3.png")
    assert chosen.mask == "/tmp/live/masks/7.1003.candidate3.png" and chosen.best == 2
    live.close()
    assert log[-1] == "closed"
