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
