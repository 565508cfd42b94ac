"""Shared-memory bookkeeping on the server side, per connection.

Matte segments the server creates are tracked by the server's resource tracker (so even a
killed server leaves none behind) and live until the client sends ``release`` or the
connection ends. Frame segments the client creates are only attached (never adopted), and
only segments of the bridge's own user are read.

The bridge unlinks only what is its own to unlink: the segments it created, and frame
segments the client created under the name prefix the bridge gave one of its sessions
(``shm_prefix`` in the open_session reply), once they were read successfully; those go when
the session or the connection ends, so a host that dies leaks nothing. A name outside the
session's prefix is read if it is valid but never recorded, so no request can make the
bridge delete another program's segment (or another session's, or a semaphore).
"""

from __future__ import annotations

import os
import threading

from . import protocol


class SegmentRegistry:
    def __init__(self, max_outstanding: int = 256):
        self._lock = threading.Lock()
        self._created: dict[str, object] = {}
        self._client_names: dict[str, str] = {}  # name -> the session prefix it was given under
        self.max_outstanding = max_outstanding
        self.closed = False

    def create(self, data) -> str:
        """A new tracked segment holding ``data`` (a C-contiguous numpy array)."""
        with self._lock:
            if len(self._created) >= self.max_outstanding:
                raise protocol.ProtocolError(
                    "shm_error", f"{len(self._created)} matte segments not released: the client must send "
                    "'release' for each shared-memory matte it has read")
        nbytes = data.nbytes
        try:
            seg = protocol.shm_create(nbytes, tracked=True)
        except OSError as exc:
            raise protocol.ProtocolError("shm_error", f"cannot create a {nbytes}-byte segment: {exc}") from None
        seg.buf[:nbytes] = memoryview(data).cast("B")
        with self._lock:
            if not self.closed:
                self._created[seg.name] = seg
                return seg.name
        protocol.shm_unlink(seg, tracked=True)  # the connection ended meanwhile
        raise protocol.ProtocolError("cancelled", "the connection is closed")

    @property
    def outstanding(self) -> int:
        return len(self._created)

    def release(self, name: str) -> bool:
        with self._lock:
            seg = self._created.pop(name, None)
        if seg is None:
            return False
        protocol.shm_unlink(seg, tracked=True)
        return True

    def read_client(self, name: str, nbytes: int, prefix: str | None = None) -> tuple[object, memoryview]:
        """Attach a client segment; returns (segment, view of its first ``nbytes``). Close the
        segment after copying (``protocol.shm_unlink`` is NOT for these: the client owns it).
        A segment under ``prefix`` (its session's) is remembered for cleanup once it passed
        every check; any other is read only."""
        seg = protocol.shm_attach(name)
        try:
            owner = _owner(seg)
            if owner is not None and owner != os.geteuid():
                raise protocol.ProtocolError("shm_error", f"segment {name!r} belongs to another user")
            if seg.size < nbytes:
                raise protocol.ProtocolError("shm_error", f"segment {name!r} holds {seg.size} bytes, the frame "
                                             f"needs {nbytes}")
            with self._lock:
                if self.closed:
                    raise protocol.ProtocolError("cancelled", "the connection is closed")
                if prefix and name.startswith(prefix) and len(name) > len(prefix):
                    self._client_names[name] = prefix
        except BaseException:
            seg.close()
            raise
        return seg, seg.buf[:nbytes]

    def forget_session(self, prefix: str) -> None:
        """A session ended: unlink the segments its client created under its prefix."""
        with self._lock:
            names = [n for n, p in self._client_names.items() if p == prefix]
            for name in names:
                del self._client_names[name]
        for name in names:
            protocol.shm_unlink_name(name)

    def close(self) -> None:
        """Connection over: unlink our matte segments and the client's session segments left behind."""
        with self._lock:
            self.closed = True
            created, self._created = self._created, {}
            names, self._client_names = self._client_names, {}
        for seg in created.values():
            protocol.shm_unlink(seg, tracked=True)
        for name in names:
            protocol.shm_unlink_name(name)


def _owner(seg) -> int | None:
    """The user id owning a POSIX segment (None where there is no such thing)."""
    fd = getattr(seg, "_fd", -1)
    if os.name != "posix" or not isinstance(fd, int) or fd < 0:
        return None
    try:
        return os.fstat(fd).st_uid
    except OSError:
        return None
