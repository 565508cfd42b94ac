"""One GPU work queue for every session: round-robin, one step (one frame) at a time.

A job is a generator that does one unit of engine work per ``next()`` (one frame of a
propagation, one prompt) and returns its final reply. Jobs of one session run in order;
sessions take turns, so a long propagation in one shot never starves another. Cancel is
checked between steps, so it takes effect within one frame. All engine calls happen on the
worker thread: the engine needs no locks.

On a shared host the turns are taken first between users, then between each user's
sessions: a user with ten shots queued gets the same share of the GPU as one with a single
shot (a job's ``group``: its connection's ``user``; the bridge's own clients are one group).
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import OrderedDict, deque
from typing import Any, Callable, Generator

log = logging.getLogger("samroto.bridge")


class Job:
    """A unit of session work. ``steps``: a generator (see module doc). ``on_done(reply)`` gets
    the generator's return value; ``on_error(exc)`` any exception (or a cancel)."""

    _ids = itertools.count(1)

    def __init__(self, key: Any, steps: Generator, on_done: Callable, on_error: Callable,
                 ready: Callable[[], bool] | None = None, owner: Any = None, cancellable: bool = True,
                 group: Any = None):
        self.id = next(Job._ids)
        self.key = key
        # whose turn it is: the user (None: the owner connection's user, if any)
        self.group = group if group is not None else getattr(owner, "user", None)
        self.steps = steps
        self.on_done = on_done
        self.on_error = on_error
        self.ready = ready or (lambda: True)
        self.owner = owner
        self.cancellable = cancellable
        self.cancelled = threading.Event()

    def cancel(self) -> None:
        if self.cancellable:
            self.cancelled.set()


class Cancelled(Exception):
    pass


class WorkQueue:
    def __init__(self, name: str = "samroto-gpu"):
        # group (user) -> key (session) -> its jobs, in order; both levels rotate
        self._groups: "OrderedDict[Any, OrderedDict[Any, deque[Job]]]" = OrderedDict()
        self._group_of: dict[Any, Any] = {}  # key -> its group, while it has jobs
        self._cond = threading.Condition()
        self._stop = False
        self.busy = False  # a step is running
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # -- public ---------------------------------------------------------------------------
    def submit(self, job: Job) -> Job:
        with self._cond:
            if self._stop:
                raise RuntimeError("the work queue is stopped")
            # a key's jobs stay in one group (a session's close, owned by nobody, runs after its work)
            group = self._group_of.setdefault(job.key, job.group)
            self._groups.setdefault(group, OrderedDict()).setdefault(job.key, deque()).append(job)
            self._cond.notify_all()
        return job

    def jobs(self, key: Any = None, owner: Any = None) -> list[Job]:
        with self._cond:
            return [j for queues in self._groups.values() for k, q in queues.items() for j in q
                    if (key is None or k == key) and (owner is None or j.owner is owner)]

    def cancel(self, key: Any = None, owner: Any = None) -> int:
        jobs = self.jobs(key, owner)
        for job in jobs:
            job.cancel()
        self.wake()
        return len(jobs)

    def pending(self) -> int:
        with self._cond:
            return sum(len(q) for queues in self._groups.values() for q in queues.values()) + (1 if self.busy else 0)

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def stop(self, timeout: float = 30.0) -> None:
        with self._cond:
            self._stop = True
            for queues in self._groups.values():
                for q in queues.values():
                    for job in q:
                        job.cancel()
            self._cond.notify_all()
        self._thread.join(timeout)

    # -- worker -----------------------------------------------------------------------------
    def _next_job(self) -> Job | None:
        """The head job of the first session (in rotation) of the first group (in rotation)
        that can run. Cancelled jobs are always 'ready' so they finish promptly."""
        for queues in self._groups.values():
            for q in queues.values():
                job = q[0]
                if job.cancelled.is_set() or self._stop or _safe_ready(job):
                    return job
        return None

    def _rotate(self, job: Job) -> None:
        """After a step: its session, and its group, go behind every other that waits (those
        that arrived during the step too)."""
        group = self._group_of.get(job.key)
        queues = self._groups.get(group)
        if queues is not None:
            self._groups.move_to_end(group)
            if job.key in queues:
                queues.move_to_end(job.key)

    def _run(self) -> None:
        while True:
            with self._cond:
                job = self._next_job()
                while job is None:
                    if self._stop and not self._groups:
                        return
                    self._cond.wait(0.05)
                    job = self._next_job()
                self.busy = True
            try:
                self._step(job)
            finally:
                with self._cond:
                    self._rotate(job)
                    self.busy = False

    def _finish(self, job: Job) -> None:
        with self._cond:
            group = self._group_of.get(job.key)
            queues = self._groups.get(group)
            q = queues.get(job.key) if queues is not None else None
            if queues is not None and q and q[0] is job:
                q.popleft()
                if not q:
                    del queues[job.key]
                    del self._group_of[job.key]
                    if not queues:
                        del self._groups[group]

    def _step(self, job: Job) -> None:
        try:
            if job.cancelled.is_set() or (self._stop and job.cancellable):
                job.steps.close()
                raise Cancelled()
            next(job.steps)
            return  # more steps to come; the job stays at the head of its session's queue
        except StopIteration as done:
            self._finish(job)
            _call(job.on_done, done.value)
        except BaseException as exc:  # noqa: BLE001 - every failure becomes an error reply
            self._finish(job)
            try:
                job.steps.close()
            except Exception:  # noqa: BLE001
                pass
            _call(job.on_error, exc)


def _safe_ready(job: Job) -> bool:
    try:
        return bool(job.ready())
    except Exception:  # noqa: BLE001
        return True


def _call(fn: Callable, arg: Any) -> None:
    try:
        fn(arg)
    except Exception:  # noqa: BLE001 - a reply that cannot be sent must not kill the worker
        log.exception("bridge: job callback failed")
