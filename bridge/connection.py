"""One client connection: its socket, a reader and a writer thread, and the hello that
authenticates it (the token from the discovery file, or a shared host's user and token;
the protocol version).

The reader hands every message to a handler (the dispatcher) and stops when it returns
False; replies and events go through a bounded outbox to the writer, so a slow client
pauses its own jobs (``ready``) instead of filling the bridge's memory.

Deadlines, checked by the server's sweep (``check_deadlines``), which hangs up on a
connection past one: the hello must be complete ``HELLO_TIMEOUT_S`` after the connection
was accepted; once a message has started, its bytes must keep coming: ``MESSAGE_TIMEOUT_S``
after its first byte, and one more second for every ``MIN_RATE`` bytes received (so a
message arriving at ``MIN_RATE`` or faster is never cut off, and a drip-fed one is, however
large it says it is); a message out must be taken by the client as fast. Before hello a connection may send one header of at most
``protocol.MAX_HELLO_HEADER_BYTES`` and no payload; buffers grow with what arrives, never
with what a header announces.

The socket is shut down by ``close()`` (from any thread) and released by the reader thread
once the writer is done with it, so neither thread ever uses a closed socket.

On a shared host (docs/bridge.md, "Shared GPU host") the socket is TLS
(``protocol.SecureSocket``; the reader does the handshake, within the hello deadline), the
hello names a user of the users file, every path a request names is mapped to the bridge's
mount points (``PathMap``) and the paths it reports mapped back, and shared memory is
refused to users (it only works on the bridge's own machine).
"""

from __future__ import annotations

import hmac
import itertools
import logging
import queue
import socket
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

from . import protocol
from .paths import PathMap, PathRule
from .protocol import ProtocolError
from .shm import SegmentRegistry

if TYPE_CHECKING:
    from .users import Users

log = logging.getLogger("samroto.bridge")

OUTBOX_LIMIT = 16  # queued outgoing messages per connection before its jobs pause (backpressure)
READ_PAUSE = 256  # queued outgoing messages before the reader stops taking requests
HELLO_TIMEOUT_S = 10.0  # a connection must have said hello this soon after it was accepted
MESSAGE_TIMEOUT_S = 30.0  # once a message has started, the rest must arrive this soon ...
MIN_RATE = 1 << 20  # ... plus one second per MiB received (bytes per second)
READ_CHUNK = 1 << 20  # receive buffers start at this and grow as the bytes arrive
OUTPUT_FIELDS = ("mattes", "candidates")  # a request's matte outputs ({"transport", "pattern"...})
HANG_UP_S = 2.0  # hang_up(): the client's time to take the last message

# handler(conn, header, payload) -> False when the connection must end (after the queued reply)
Handler = Callable[["Connection", dict, bytearray], bool]

_FLUSH_AND_CLOSE = object()  # outbox marker: send what is queued before it, then close


class Connection:
    _ids = itertools.count(1)

    def __init__(self, sock: socket.socket | protocol.SecureSocket, peer: str, on_close: Callable[[Connection], None],
                 peer_key: str | None = None, handshake: bool = False, users: Users | None = None,
                 path_map: PathMap | None = None):
        self.id = next(Connection._ids)
        self.sock = sock
        self.peer = peer
        self.peer_key = peer_key if peer_key is not None else peer  # what the per-peer cap counts
        self.authed = False
        self.ending = False  # hang_up(): requests are no longer served
        self.handshake = handshake  # TLS: the reader completes the handshake first
        self.users = users  # a shared host's users file (None: the discovery token only)
        self.user: str | None = None  # after hello: the user, or None for the bridge's own (discovery token)
        self.token_hash: str | None = None  # the user's token (a new one issued closes this connection)
        self.path_map = path_map or PathMap()
        self.path_rules: dict[str, PathRule] = {}  # server prefix -> the rule this client's paths came by
        self.outbox: queue.Queue[Any] = queue.Queue()
        self.segments = SegmentRegistry()
        self.sessions: set[str] = set()  # ids of the sessions it opened (the registry's to change)
        self.closed = threading.Event()
        self.accepted = time.monotonic()
        self._close_lock = threading.Lock()
        self._on_close = on_close
        self._read_deadline: float | None = None  # monotonic; None: no message under way
        self._send_deadline: float | None = None
        self._hang_up_by: float | None = None  # hang_up(): closed by then, told or not
        self._writer_thread: threading.Thread | None = None

    def start(self, handle: Handler, max_payload: int) -> None:
        """Start the writer and the reader threads."""
        self.sock.settimeout(None)  # blocking: the deadlines are the server sweep's to enforce
        self._read_deadline = self.accepted + HELLO_TIMEOUT_S
        self._writer_thread = threading.Thread(target=self.writer, name=f"bridge-write-{self.id}", daemon=True)
        self._writer_thread.start()
        threading.Thread(target=self.reader, args=(handle, max_payload), name=f"bridge-read-{self.id}",
                         daemon=True).start()

    def check_deadlines(self, now: float) -> bool:
        """Hang up if a deadline passed (a hello, a message in or out too slow); True if so."""
        for what, deadline in (("hello or message in", self._read_deadline), ("message out", self._send_deadline),
                               ("hang up", self._hang_up_by)):
            if deadline is not None and now > deadline and not self.closed.is_set():
                log.info("connection %s (%s): %s too slow: closed", self.id, self.peer,
                         "hello" if not self.authed else what.split(" or ")[-1])
                self.close()
                return True
        return False

    # -- output -----------------------------------------------------------------------------
    def post(self, header: dict, payload: Any = None) -> None:
        if not self.closed.is_set():
            self.outbox.put((header, payload))

    def hang_up(self, code: str, message: str) -> None:
        """End the connection from the bridge's side: one error (``id`` null), then close;
        what it sends meanwhile is not served. Closed within HANG_UP_S however slow the client."""
        self.ending = True
        self.post({**protocol.error_reply(None, code, message), "close": True})
        self._hang_up_by = time.monotonic() + HANG_UP_S

    def ready(self) -> bool:
        return self.closed.is_set() or self.outbox.qsize() < OUTBOX_LIMIT

    def writer(self) -> None:
        while True:
            item = self.outbox.get()
            if item is None:
                return
            if item is _FLUSH_AND_CLOSE:
                self.close()
                return
            header, payload = item
            try:
                if self.path_rules:
                    header = self.outbound(header)
                parts = protocol.encode(header, payload)
            except (ValueError, TypeError, ProtocolError) as exc:  # a reply that is not JSON or too big: a bug
                log.exception("bridge: cannot encode a reply")
                parts = protocol.encode(protocol.error_reply(header.get("id"), "internal", f"bad reply: {exc}"))
            size = sum(len(p) if not isinstance(p, memoryview) else p.nbytes for p in parts)
            self._send_deadline = time.monotonic() + MESSAGE_TIMEOUT_S + size / MIN_RATE
            try:
                for part in parts:
                    self.sock.sendall(part)
            except OSError as exc:
                if not self.closed.is_set():
                    log.info("connection %s: send failed (%s)", self.id, exc)
                self.close()
                return
            finally:
                self._send_deadline = None
            if header.get("close"):
                self.close()
                return

    # -- input --------------------------------------------------------------------------------
    def reader(self, handle: Handler, max_payload: int) -> None:
        flush = False  # end after the writer sent what is queued (a final error), else hang up now
        try:
            if self.handshake and not self._handshake():
                return
            while not self.closed.is_set():
                self._wait_for_outbox()
                authed = self.authed
                try:
                    header, payload = protocol.recv_message(
                        self.sock, max_payload=max_payload if authed else 0,
                        max_header=protocol.MAX_HEADER_BYTES if authed else protocol.MAX_HELLO_HEADER_BYTES,
                        on_started=self._started if authed else None,
                        on_progress=self._progress if authed else None, chunk=READ_CHUNK)
                except protocol.ConnectionClosed:
                    break
                except ProtocolError as exc:
                    # out of step with the stream: say why, then hang up
                    self.post({**protocol.error_reply(None, exc.code, exc.message), "close": True})
                    flush = True
                    break
                except OSError:  # reset, or shut down by close(): nothing to say
                    break
                if self.ending:
                    continue
                if authed:
                    self._read_deadline = None  # between messages a client may idle
                    try:
                        self.inbound(header)
                    except ProtocolError as exc:
                        if header.get("id") is not None:
                            self.post(protocol.error_reply(header.get("id"), exc.code, exc.message))
                        continue
                if not handle(self, header, payload):
                    flush = True
                    break
                if self.authed and not authed:
                    self._read_deadline = None  # hello done: no deadline until a message starts
        except Exception:  # noqa: BLE001 - a bug here must not leave the connection half open
            log.exception("connection %s: reader failed", self.id)
            flush = False
        finally:
            self._finish(flush)

    def _handshake(self) -> bool:
        try:
            self.sock.handshake()  # type: ignore[union-attr]  # a SecureSocket: handshake is True only then
            return True
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError; closed by the sweep meanwhile
            if not self.closed.is_set():
                log.info("connection %s (%s): TLS handshake failed: %s", self.id, self.peer, exc)
            return False

    # -- a shared host: paths and shared memory --------------------------------------------------
    def inbound(self, header: dict) -> None:
        """Make a request's paths the bridge's (``bridge.path_map``): ``source.path``, mask
        prompts (``prompts``, ``prompt``), ``mask``, the ``pattern`` of ``mattes`` and
        ``candidates``, ``color.ocio_config``; refuse shared memory to a user (ProtocolError).
        Fields of the wrong type are left for the op to refuse."""
        if self.user is not None and header.get("op") != "release":
            if header.get("shm") is not None or any(isinstance(header.get(f), dict) and header[f].get("transport") == "shm"
                                                    for f in OUTPUT_FIELDS):
                raise ProtocolError("shm_error", "shared memory works only on the bridge's own machine: send frames "
                                    "by path on shared storage and take mattes as files (or inline)")
        if not self.path_map:
            return
        source = header.get("source")
        if isinstance(source, dict):
            path = source.get("path")
            if isinstance(path, str):
                source["path"] = self.server_path(path)
            elif isinstance(path, list):
                source["path"] = [self.server_path(p) if isinstance(p, str) else p for p in path]
        for field, key in [(f, "pattern") for f in OUTPUT_FIELDS] + [("color", "ocio_config"), ("prompt", "mask")]:
            spec = header.get(field)
            if isinstance(spec, dict) and isinstance(spec.get(key), str):
                spec[key] = self.server_path(spec[key])
        if isinstance(header.get("mask"), str):
            header["mask"] = self.server_path(header["mask"])
        prompts = header.get("prompts")
        objects = prompts.get("objects") if isinstance(prompts, dict) else None
        for obj in objects if isinstance(objects, list) else []:
            items = obj.get("prompts") if isinstance(obj, dict) else None
            for prompt in items if isinstance(items, list) else []:
                if isinstance(prompt, dict) and isinstance(prompt.get("mask"), str):
                    prompt["mask"] = self.server_path(prompt["mask"])

    def outbound(self, header: dict) -> dict:
        """A reply or event with the paths it reports (``paths``, ``mask``) as this client names them."""
        if isinstance(header.get("paths"), list):
            header = {**header, "paths": [self.client_path(p) for p in header["paths"]]}
        if isinstance(header.get("mask"), str):
            header = {**header, "mask": self.client_path(header["mask"])}
        return header

    def server_path(self, path: str) -> str:
        """A client's path as the bridge names it; the rule is remembered for the way back."""
        mapped, rule = self.path_map.to_server(path)
        if rule is not None:
            self.path_rules[rule.server] = rule
        return mapped

    def client_path(self, path: Any) -> Any:
        """A path the bridge reports, as this client named its folder (unchanged if it did not)."""
        if isinstance(path, str):
            for server in sorted(self.path_rules, key=len, reverse=True):
                mapped = self.path_rules[server].to_client(path)
                if mapped is not None:
                    return mapped
        return path

    def _started(self) -> None:
        self._read_deadline = time.monotonic() + MESSAGE_TIMEOUT_S

    def _progress(self, received: int) -> None:
        if self._read_deadline is not None:
            self._read_deadline += received / MIN_RATE

    def _wait_for_outbox(self) -> None:
        """Backpressure on requests: a client that sends without reading its replies waits."""
        while self.outbox.qsize() >= READ_PAUSE and not self.closed.is_set():
            time.sleep(0.01)

    def _finish(self, flush: bool) -> None:
        """The reader is done: close (after the queued replies if ``flush``), wait for the
        writer, then release the socket and what is still queued."""
        if flush:
            self.outbox.put(_FLUSH_AND_CLOSE)  # the writer closes once it is there
        else:
            self.close()
        if self._writer_thread is not None:
            self._writer_thread.join()
        self.close()
        try:
            self.sock.close()
        except OSError:
            pass
        while True:  # replies nobody will read: let their buffers go
            try:
                self.outbox.get_nowait()
            except queue.Empty:
                break

    def authenticate(self, rid: Any, op: Any, header: dict, token: str, info: Callable[[], dict]) -> bool:
        """The first message must be a hello with the token and our protocol version; anything
        else is refused and the connection closed. ``info()``: the hello reply's fields.
        A hello with a ``user`` is checked against the users file, one without against the
        discovery file's ``token`` (the bridge's own user)."""
        if op != "hello":
            return self._refuse(rid, "unauthorized", "say hello (with the token) first")
        given = header.get("token")
        user = header.get("user")
        if user is not None:
            why = "this bridge has no users (setting bridge.users_file)" if self.users is None else \
                self.users.check(user, given)
            if why is not None:
                log.warning("connection %s (%s): user %s refused: %s", self.id, self.peer, protocol._short(user, 80), why)
                return self._refuse(rid, "unauthorized", why)
        elif not isinstance(given, str) or not hmac.compare_digest(given.encode("utf-8", "replace"), token.encode()):
            log.warning("connection %s: refused (%s token)", self.id, "missing" if given is None else "wrong")
            return self._refuse(rid, "unauthorized", "missing or wrong token: read it from the bridge's "
                                "discovery file")
        version = header.get("version")
        if version != protocol.PROTOCOL_VERSION:
            return self._refuse(rid, "version_mismatch", f"this bridge speaks protocol {protocol.PROTOCOL_VERSION}, "
                                f"the client {protocol._short(version)}: update the plugin or the samroto install "
                                "so they match")
        if user is not None:
            self.user, self.token_hash = user, self.users.token_hash(user) if self.users is not None else None
            log.info("connection %s (%s): user %s", self.id, self.peer, user)
        self.authed = True
        reply = {"id": rid, "ok": True, **info()}
        if user is not None:
            reply.update(user=user, shm=False)
        self.post(reply)
        return True

    def _refuse(self, rid: Any, code: str, message: str) -> bool:
        self.post(protocol.error_reply(rid, code, message) | {"close": True})
        return False

    # -- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        """Hang up now (any thread): the socket is shut down, the writer stops, the server
        frees the connection's work, sessions and segments. The reader thread releases the
        socket itself."""
        with self._close_lock:
            if self.closed.is_set():
                return
            self.closed.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.outbox.put(None)
        self._read_deadline = self._send_deadline = None
        self._on_close(self)
