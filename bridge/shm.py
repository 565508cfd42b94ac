"""Shared-memory bookkeeping on the server side, per connection.

Matte segments the server creates are tracked by the server's resource tracker (so even a
killed server leaves none behind) and live until the client sends ``release`` or the
connection ends. Frame segments the client creates are only attached (never adopted); their
names are remembered so that a client that dies without unlinking them is cleaned up after.
"""

from __future__ import annotations

import threading

from . import protocol


class SegmentRegistry:
    def __init__(self, max_outstanding: int = 256):
        self._lock = threading.Lock()
        self._created: dict[str, object] = {}
        self._client_names: set[str] = set()
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

    def read_client(self, name: str, nbytes: int) -> tuple[object, memoryview]:
        """Attach a client segment; returns (segment, view of its first ``nbytes``). Close the
        segment after copying (``protocol.shm_unlink`` is NOT for these: the client owns it)."""
        seg = protocol.shm_attach(name)
        with self._lock:
            if self.closed:
                seg.close()
                raise protocol.ProtocolError("cancelled", "the connection is closed")
            self._client_names.add(name)
        if seg.size < nbytes:
            seg.close()
            raise protocol.ProtocolError("shm_error", f"segment {name!r} holds {seg.size} bytes, the frame needs {nbytes}")
        return seg, seg.buf[:nbytes]

    def close(self) -> None:
        """Connection over: unlink our matte segments and any the client left behind."""
        with self._lock:
            self.closed = True
            created, self._created = self._created, {}
            names, self._client_names = self._client_names, set()
        for seg in created.values():
            protocol.shm_unlink(seg, tracked=True)
        for name in names:
            protocol.shm_unlink_name(name)
