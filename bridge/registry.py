"""The sessions of every connection: found by id for their owner only (another connection's
or user's session is an unknown one), closed on the work queue (after the work in flight),
evicted when idle, capped per connection and per user (``bridge.max_sessions_per_user``),
and remembered for a while after they are gone so that their owner asking for one learns
why."""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from .protocol import ProtocolError, _short
from .workqueue import Cancelled, Job, WorkQueue

if TYPE_CHECKING:  # the sessions module imports numpy and core; the bridge imports it on first use
    from .connection import Connection
    from .sessions import BridgeSession

log = logging.getLogger("samroto.bridge")

MAX_SESSIONS_PER_CONNECTION = 64
REMEMBER_GONE = 1000  # why a session is gone, for this many of the latest


class SessionRegistry:
    def __init__(self, work: WorkQueue, max_sessions_per_user: int = 0):
        self.queue = work
        self.max_per_user = max_sessions_per_user  # 0: no cap (the bridge's own clients never have one)
        self.sessions: dict[str, BridgeSession] = {}
        self.gone: dict[str, tuple[int, str]] = {}  # session id -> (its connection's id, why it is gone)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self.sessions)

    def check_room(self, conn: Connection) -> None:
        """busy when the connection, or its user, holds as many sessions as it may."""
        if len(conn.sessions) >= MAX_SESSIONS_PER_CONNECTION:
            raise ProtocolError("busy", f"{len(conn.sessions)} sessions are open on this connection; close "
                                "the ones you no longer need")
        with self._lock:
            self._check_user_room(conn)

    def _check_user_room(self, conn: Connection) -> None:
        user = getattr(conn, "user", None)
        if user is None or self.max_per_user <= 0:
            return
        held = sum(1 for s in self.sessions.values() if getattr(s.owner, "user", None) == user and s.closing is None)
        if held >= self.max_per_user:
            raise ProtocolError("busy", f"user {user} has {held} sessions open, the most this bridge gives one user "
                                "(bridge.max_sessions_per_user): close the ones you no longer need")

    def add(self, session: BridgeSession) -> None:
        """Register a session built for ``session.owner``; Cancelled if that connection has
        closed meanwhile (its sessions were already swept, see close_all_of); busy if its user
        reached the cap meanwhile (sessions opened at once are counted here, one at a time)."""
        conn = session.owner
        with self._lock:
            if conn.closed.is_set():
                raise Cancelled()
            self._check_user_room(conn)
            self.sessions[session.id] = session
            conn.sessions.add(session.id)

    def get(self, conn: Connection, sid: Any) -> BridgeSession:
        """The request's session, if ``conn`` opened it and it is still open."""
        if not isinstance(sid, str):
            raise ProtocolError("bad_request", f"'session' must be a session id string, got {sid!r}")
        with self._lock:
            session = self.sessions.get(sid)
            if session is None or session.owner is not conn or session.closing is not None:
                gone = self.gone.get(sid)
                why = (session.closing if session is not None and session.owner is conn else None) or \
                    (gone[1] if gone is not None and gone[0] == conn.id else None) or \
                    "it was never opened on this connection, or was closed"
                raise ProtocolError("unknown_session", f"no session {_short(sid)}: {why}. Open a new session and "
                                    "send the prompts again (the same prompts give the same mattes)")
        session.touch()
        return session

    @staticmethod
    def check_open(session: BridgeSession) -> None:
        """For work that waited in the queue: unknown_session if its session closed meanwhile."""
        if session.closed or session.engine is None:
            raise ProtocolError("unknown_session", f"no session {session.id!r}: {session.closing or 'it was closed'}. "
                                "Open a new session and send the prompts again")

    # -- closing ------------------------------------------------------------------------------
    def mark_closing(self, sid: str, why: str) -> None:
        """From now on requests naming the session are answered unknown_session (it is dropped
        on the work queue, after the work already there)."""
        with self._lock:
            session = self.sessions.get(sid)
            if session is not None and session.closing is None:
                session.closing = why

    def close(self, sid: str, why: str) -> None:
        """Cancel the session's work and drop it on the work queue, after the step in flight."""
        self.mark_closing(sid, why)

        def steps():
            self.drop(sid, why)
            return {}
            yield  # noqa: unreachable - makes this a generator

        self.queue.cancel(key=sid)
        try:
            self.queue.submit(Job(sid, steps(), lambda r: None, lambda e: None, cancellable=False))
        except RuntimeError:  # the queue has stopped (shutting down): nothing runs, drop it now
            self.drop(sid, why)

    def close_all_of(self, conn: Connection, why: str) -> None:
        """Close every session of a connection that has closed."""
        with self._lock:  # the same lock as add: a session is either seen here or refused there
            owned = list(conn.sessions)
        for sid in owned:
            self.close(sid, why)

    def drop(self, sid: str, why: str, free: bool = True) -> None:
        """Forget a session now and free its engine (features, memory bank, results)."""
        with self._lock:
            session = self.sessions.pop(sid, None)
            owner = self.gone[sid][0] if sid in self.gone else -1
            self.gone[sid] = (session.owner.id if session is not None else owner, why)
            if len(self.gone) > REMEMBER_GONE:
                self.gone.pop(next(iter(self.gone)))
        if session is None:
            return
        session.closed = True
        session.closing = session.closing or why
        session.owner.sessions.discard(sid)
        session.engine = None
        session.owner.segments.forget_session(session.shm_prefix)  # frame segments its client left
        if free:
            free_device_memory()

    def drop_all(self, why: str) -> None:
        with self._lock:
            sids = list(self.sessions)
        for sid in sids:
            self.drop(sid, why, free=False)

    def evict_idle(self, limit: float) -> None:
        """Close the sessions unused for ``limit`` seconds that have no work queued."""
        if limit <= 0:
            return
        now = time.monotonic()
        with self._lock:
            stale = [s.id for s in self.sessions.values() if now - s.last_used > limit and not self.queue.jobs(key=s.id)]
        for sid in stale:
            log.info("session %s idle for more than %.0f s: evicted", sid, limit)
            self.close(sid, f"it was evicted after {limit:.0f} s without use")


_last_collect = [0.0]
_collect_pending = [False]


def free_device_memory() -> None:
    """Hand a closed session's GPU memory back. Its tensors are freed by reference counting;
    a full garbage collection (slow with torch loaded) runs at most every few seconds, the
    one left over by the server's sweep (``collect_pending``)."""
    if time.monotonic() - _last_collect[0] > 5.0:
        _collect()
    else:
        _collect_pending[0] = True
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def collect_pending() -> None:
    """The collection a burst of closed sessions put off, once it is due."""
    if _collect_pending[0] and time.monotonic() - _last_collect[0] > 5.0:
        _collect()


def _collect() -> None:
    """Collect cycles, then give the freed heap back to the system (glibc keeps it otherwise,
    and a long-running bridge's resident memory would only ever grow)."""
    import gc

    _last_collect[0] = time.monotonic()
    _collect_pending[0] = False
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


_trim_fn: list = []


def _malloc_trim():
    if not _trim_fn:
        fn = None
        if sys.platform.startswith("linux"):
            try:
                import ctypes
                fn = ctypes.CDLL("libc.so.6").malloc_trim
            except (OSError, AttributeError):
                fn = None
        _trim_fn.append(fn)
    return _trim_fn[0]
