"""One client connection: its socket, a reader and a writer thread, and the hello that
authenticates it (the token from the discovery file, the protocol version).

The reader hands every message to a handler (the dispatcher) and stops when it returns
False; replies and events go through a bounded outbox to the writer, so a slow client
pauses its own jobs (``ready``) instead of filling the bridge's memory.
"""

from __future__ import annotations

import hmac
import itertools
import logging
import queue
import socket
import threading
from typing import Any, Callable

from . import protocol
from .protocol import ProtocolError
from .shm import SegmentRegistry

log = logging.getLogger("samroto.bridge")

OUTBOX_LIMIT = 16  # queued outgoing messages per connection before its jobs pause (backpressure)
HELLO_TIMEOUT_S = 10.0  # a connection must say hello this soon
MESSAGE_TIMEOUT_S = 60.0  # once a message has started, the rest must arrive this soon

# handler(conn, header, payload) -> False when the connection must end (after the queued reply)
Handler = Callable[["Connection", dict, bytearray], bool]


class Connection:
    _ids = itertools.count(1)

    def __init__(self, sock: socket.socket, peer: str, on_close: Callable[[Connection], None]):
        self.id = next(Connection._ids)
        self.sock = sock
        self.peer = peer
        self.authed = False
        self.outbox: queue.Queue[tuple[dict, Any] | None] = queue.Queue()
        self.segments = SegmentRegistry()
        self.sessions: set[str] = set()  # ids of the sessions it opened (the registry's to change)
        self.closed = threading.Event()
        self._close_lock = threading.Lock()
        self._on_close = on_close

    def start(self, handle: Handler, max_payload: int) -> None:
        """Start the writer and the reader threads."""
        self.sock.settimeout(None)
        threading.Thread(target=self.writer, name=f"bridge-write-{self.id}", daemon=True).start()
        threading.Thread(target=self.reader, args=(handle, max_payload), name=f"bridge-read-{self.id}",
                         daemon=True).start()

    # -- output -----------------------------------------------------------------------------
    def post(self, header: dict, payload: Any = None) -> None:
        if not self.closed.is_set():
            self.outbox.put((header, payload))

    def ready(self) -> bool:
        return self.closed.is_set() or self.outbox.qsize() < OUTBOX_LIMIT

    def writer(self) -> None:
        while True:
            item = self.outbox.get()
            if item is None:
                return
            header, payload = item
            try:
                try:
                    parts = protocol.encode(header, payload)
                except (ValueError, TypeError, ProtocolError) as exc:  # a reply that is not JSON: a bug
                    log.exception("bridge: cannot encode a reply")
                    parts = protocol.encode(protocol.error_reply(header.get("id"), "internal", f"bad reply: {exc}"))
                for part in parts:
                    self.sock.sendall(part)
            except OSError as exc:
                log.info("connection %s: send failed (%s)", self.id, exc)
                self.close()
                return
            if header.get("close"):
                self.close()
                return

    # -- input --------------------------------------------------------------------------------
    def reader(self, handle: Handler, max_payload: int) -> None:
        sock = self.sock
        hang_up = True  # close at once (EOF, timeout) unless a final error is queued for the writer
        try:
            sock.settimeout(HELLO_TIMEOUT_S)
            while not self.closed.is_set():
                if self.authed:
                    sock.settimeout(None)
                try:
                    header, payload = protocol.recv_message(
                        sock, max_payload=max_payload if self.authed else 0,
                        on_started=lambda: sock.settimeout(MESSAGE_TIMEOUT_S))
                except protocol.ConnectionClosed:
                    break
                except ProtocolError as exc:
                    # out of step with the stream: say why, then hang up
                    self.post({**protocol.error_reply(None, exc.code, exc.message), "close": True})
                    hang_up = False
                    break
                except (socket.timeout, OSError):
                    break
                if not handle(self, header, payload):
                    hang_up = False
                    break
        finally:
            if hang_up:
                self.close()

    def authenticate(self, rid: Any, op: Any, header: dict, token: str, info: Callable[[], dict]) -> bool:
        """The first message must be a hello with the token and our protocol version; anything
        else is refused and the connection closed. ``info()``: the hello reply's fields."""
        if op != "hello":
            return self._refuse(rid, "unauthorized", "say hello (with the token) first")
        given = header.get("token")
        if not isinstance(given, str) or not hmac.compare_digest(given.encode("utf-8", "replace"), token.encode()):
            log.warning("connection %s: refused (%s token)", self.id, "missing" if given is None else "wrong")
            return self._refuse(rid, "unauthorized", "missing or wrong token: read it from the bridge's "
                                "discovery file")
        version = header.get("version")
        if version != protocol.PROTOCOL_VERSION:
            return self._refuse(rid, "version_mismatch", f"this bridge speaks protocol {protocol.PROTOCOL_VERSION}, "
                                f"the client {version!r}: update the plugin or the samroto install so they match")
        self.authed = True
        self.post({"id": rid, "ok": True, **info()})
        return True

    def _refuse(self, rid: Any, code: str, message: str) -> bool:
        self.post(protocol.error_reply(rid, code, message) | {"close": True})
        return False

    # -- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        with self._close_lock:
            if self.closed.is_set():
                return
            self.closed.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.outbox.put(None)
        self._on_close(self)
