"""The bridge server: one process near the GPU, one model, many clients and sessions.

Threads: the accept loop (main thread; also evicts idle sessions and handles idle shutdown),
one reader and one writer per connection, and the work queue's worker (all engine calls).
See docs/protocol.md for the messages and docs/bridge.md for running it.
"""

from __future__ import annotations

import hmac
import itertools
import logging
import os
import queue
import secrets
import signal
import socket
import sys
import tempfile
import threading
import time
from typing import Any, Callable

from . import discovery, protocol
from .protocol import ProtocolError
from .shm import SegmentRegistry
from .workqueue import Cancelled, Job, WorkQueue

log = logging.getLogger("samroto.bridge")

OUTBOX_LIMIT = 16  # queued outgoing messages per connection before its jobs pause (backpressure)
HELLO_TIMEOUT_S = 10.0  # a connection must say hello this soon
MESSAGE_TIMEOUT_S = 60.0  # once a message has started, the rest must arrive this soon
MAX_SESSIONS_PER_CONNECTION = 64


class ServerConfig:
    def __init__(self, host: str = "", port: int = 0, idle_timeout: float = 1800.0,
                 session_timeout: float = 3600.0, max_payload: int = protocol.DEFAULT_MAX_PAYLOAD_BYTES,
                 config_dir: str | None = None, feature_cache_bytes: int = 1 << 30,
                 color: dict | None = None, model_name: str = "", unix: bool | None = None):
        self.host = host
        self.port = port
        self.idle_timeout = idle_timeout
        self.session_timeout = session_timeout
        self.max_payload = max_payload
        self.config_dir = config_dir
        self.feature_cache_bytes = feature_cache_bytes
        self.color = color or {}
        self.model_name = model_name
        self.unix = unix


class Connection:
    _ids = itertools.count(1)

    def __init__(self, server: "BridgeServer", sock: socket.socket, peer: str):
        self.id = next(Connection._ids)
        self.server = server
        self.sock = sock
        self.peer = peer
        self.authed = False
        self.outbox: "queue.Queue[Any]" = queue.Queue()
        self.segments = SegmentRegistry()
        self.sessions: set[str] = set()
        self.closed = threading.Event()
        self._close_lock = threading.Lock()

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
        self.server.connection_closed(self)


class BridgeServer:
    """Serve ``engine_factory`` sessions. ``engine_factory(frames, options)`` builds a
    VideoSession on the loaded model; ``model_info`` is reported by hello/status."""

    def __init__(self, config: ServerConfig, engine_factory: Callable, model_info: dict | None = None,
                 finisher_factory: Callable | None = None):
        self.config = config
        self.engine_factory = engine_factory
        # finisher_factory(**overrides) -> core.finishing.Finisher; None: SAM 2's own 0/1 decision
        self.finisher_factory = finisher_factory
        self.model_info = model_info or {}
        self.token = secrets.token_hex(32)
        self.pid = os.getpid()
        self.queue = WorkQueue()
        self.connections: dict[int, Connection] = {}
        self.sessions: dict[str, Any] = {}
        self.evicted: dict[str, str] = {}  # session id -> why it is gone
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._last_activity = time.monotonic()
        self._listener: socket.socket | None = None
        self._socket_dir: str | None = None
        self.address: dict | None = None
        self.started = time.time()
        self._shut_down = False

    # -- listening ----------------------------------------------------------------------------
    def bind(self) -> dict:
        cfg = self.config
        # a Unix socket unless TCP was asked for (a host or a port) or the platform has none
        use_unix = cfg.unix if cfg.unix is not None else (
            not cfg.host and not cfg.port and hasattr(socket, "AF_UNIX"))
        if use_unix:
            self._socket_dir = tempfile.mkdtemp(prefix="samroto-")  # 0700, short path
            path = os.path.join(self._socket_dir, "bridge.sock")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(path)
            os.chmod(path, 0o600)
            self.address = {"family": "unix", "path": path}
        else:
            host = cfg.host or "127.0.0.1"
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, cfg.port))
            self.address = {"family": "tcp", "host": host, "port": sock.getsockname()[1]}
            if host not in ("127.0.0.1", "localhost", "::1"):
                print(f"samroto serve: WARNING: listening on {host}:{self.address['port']}, reachable from other "
                      "machines. Anyone with the token from the discovery file can use this bridge and read "
                      "or write files as you; prefer the default (local only).", file=sys.stderr, flush=True)
        sock.listen(64)
        sock.settimeout(0.5)
        self._listener = sock
        return self.address

    def discovery_info(self) -> dict:
        return {"protocol": protocol.PROTOCOL_VERSION, "address": self.address, "pid": self.pid,
                "token": self.token, "started": self.started, "model": self.model_info.get("name"),
                "python": sys.executable}

    def serve_forever(self) -> None:
        """Accept connections until stopped, idle too long, or asked to shut down."""
        assert self._listener is not None, "bind() first"
        discovery.write(self.discovery_info(), self.config.config_dir)
        last_sweep = time.monotonic()
        try:
            while not self._stop.is_set():
                try:
                    sock, peer = self._listener.accept()
                except socket.timeout:
                    sock = None
                except OSError:
                    if self._stop.is_set():
                        break
                    raise
                if sock is not None:
                    self._accept(sock, peer)
                now = time.monotonic()
                if now - last_sweep > 1.0:
                    last_sweep = now
                    self.evict_idle_sessions()
                    if self._idle_for() > self.config.idle_timeout > 0:
                        log.info("no clients for %.0f s: shutting down", self.config.idle_timeout)
                        break
        finally:
            self.shutdown()

    def stop(self) -> None:
        self._stop.set()

    def _idle_for(self) -> float:
        with self._lock:
            if self.connections or self.queue.pending():
                self._last_activity = time.monotonic()
                return 0.0
        return time.monotonic() - self._last_activity

    def shutdown(self) -> None:
        """Stop: discovery file first (no new clients), then work, connections, sessions, socket.
        Every step runs even if an earlier one fails."""
        if self._shut_down:
            return
        self._shut_down = True
        self._stop.set()
        steps = [
            lambda: discovery.remove(self.pid, self.config.config_dir),
            lambda: self._listener is not None and self._listener.close(),
            self._say_goodbye,
            lambda: self.queue.stop(timeout=10.0),
            self._drain_and_close,
            lambda: [self._drop_session(sid, "the bridge stopped", free=False) for sid in list(self.sessions)],
            self._remove_socket,
        ]
        for step in steps:
            try:
                step()
            except Exception:  # noqa: BLE001
                log.exception("bridge: shutdown step failed")

    def _say_goodbye(self) -> None:
        for conn in list(self.connections.values()):
            conn.post({**protocol.error_reply(None, "shutting_down", "the bridge is stopping"), "close": True})

    def _drain_and_close(self) -> None:
        deadline = time.monotonic() + 2.0  # let final replies reach their clients
        while time.monotonic() < deadline and any(not c.outbox.empty() for c in list(self.connections.values())):
            time.sleep(0.02)
        for conn in list(self.connections.values()):
            conn.close()

    def _remove_socket(self) -> None:
        if self._socket_dir:
            for remove in (lambda: os.unlink(os.path.join(self._socket_dir, "bridge.sock")),
                           lambda: os.rmdir(self._socket_dir)):
                try:
                    remove()
                except OSError:
                    pass

    # -- connections ----------------------------------------------------------------------------
    def _accept(self, sock: socket.socket, peer: Any) -> None:
        sock.settimeout(None)
        conn = Connection(self, sock, str(peer))
        with self._lock:
            self.connections[conn.id] = conn
            self._last_activity = time.monotonic()
        threading.Thread(target=conn.writer, name=f"bridge-write-{conn.id}", daemon=True).start()
        threading.Thread(target=self._reader, args=(conn,), name=f"bridge-read-{conn.id}", daemon=True).start()

    def connection_closed(self, conn: Connection) -> None:
        """Cancel the connection's work and free its sessions and segments."""
        with self._lock:
            self.connections.pop(conn.id, None)
            self._last_activity = time.monotonic()
            owned = list(conn.sessions)
        self.queue.cancel(owner=conn)
        for sid in owned:
            self._submit_close(sid, "its client disconnected")
        conn.segments.close()

    def _reader(self, conn: Connection) -> None:
        sock = conn.sock
        hang_up = True  # close at once (EOF, timeout) unless a final error is queued for the writer
        try:
            sock.settimeout(HELLO_TIMEOUT_S)
            while not conn.closed.is_set():
                if conn.authed:
                    sock.settimeout(None)
                try:
                    header, payload = protocol.recv_message(
                        sock, max_payload=self.config.max_payload if conn.authed else 0,
                        on_started=lambda: sock.settimeout(MESSAGE_TIMEOUT_S))
                except protocol.ConnectionClosed:
                    break
                except ProtocolError as exc:
                    # out of step with the stream: say why, then hang up
                    conn.post({**protocol.error_reply(None, exc.code, exc.message), "close": True})
                    hang_up = False
                    break
                except (socket.timeout, OSError):
                    break
                if not self._handle(conn, header, payload):
                    hang_up = False
                    break
        finally:
            if hang_up:
                conn.close()

    def _handle(self, conn: Connection, header: dict, payload: bytearray) -> bool:
        """Answer one message; False when the connection must end (after the queued reply)."""
        rid = header.get("id")
        if rid is not None and (isinstance(rid, bool) or not isinstance(rid, (int, str)) or
                                (isinstance(rid, str) and len(rid) > 200)):
            conn.post(protocol.error_reply(None, "bad_request", f"request id must be an integer or a short "
                                           f"string, got {rid!r}"))
            return conn.authed
        op = header.get("op")
        try:
            if not conn.authed:
                return self._hello(conn, rid, op, header)
            if op == "release":  # notification: no reply
                names = header.get("shm")
                for name in names if isinstance(names, list) else []:
                    if isinstance(name, str):
                        conn.segments.release(name)
                return True
            if rid is None:
                return True  # other notifications are ignored
            handler = getattr(self, f"_op_{op}", None) if isinstance(op, str) and op.isidentifier() else None
            if handler is None:
                raise ProtocolError("unknown_op", f"unknown op {op!r}; ops: {', '.join(self.ops())}")
            reply = handler(conn, rid, header, payload)
            if reply is not None:
                conn.post({"id": rid, "ok": True, **reply})
        except ProtocolError as exc:
            conn.post(protocol.error_reply(rid, exc.code, exc.message))
        except Exception as exc:  # noqa: BLE001 - a bug answers as an error, the server stays up
            log.exception("bridge: request %r failed", op)
            conn.post(protocol.error_reply(rid, "internal", f"{type(exc).__name__}: {exc}"))
        return True

    @classmethod
    def ops(cls) -> list[str]:
        return sorted(name[4:] for name in dir(cls) if name.startswith("_op_"))

    def _hello(self, conn: Connection, rid: Any, op: Any, header: dict) -> bool:
        if op != "hello":
            conn.post(protocol.error_reply(rid, "unauthorized", "say hello (with the token) first") | {"close": True})
            return False
        token = header.get("token")
        if not isinstance(token, str) or not hmac.compare_digest(token.encode("utf-8", "replace"),
                                                                  self.token.encode()):
            log.warning("connection %s: refused (%s token)", conn.id, "missing" if token is None else "wrong")
            conn.post(protocol.error_reply(rid, "unauthorized", "missing or wrong token: read it from the "
                                           "bridge's discovery file") | {"close": True})
            return False
        version = header.get("version")
        if version != protocol.PROTOCOL_VERSION:
            conn.post(protocol.error_reply(rid, "version_mismatch", f"this bridge speaks protocol "
                                           f"{protocol.PROTOCOL_VERSION}, the client {version!r}: update the "
                                           "plugin or the samroto install so they match") | {"close": True})
            return False
        conn.authed = True
        conn.post({"id": rid, "ok": True, **self._info()})
        return True

    def _info(self) -> dict:
        import samroto
        return {"protocol": protocol.PROTOCOL_VERSION, "server": f"samroto {samroto.__version__}",
                "pid": self.pid, "model": self.model_info, "max_payload": self.config.max_payload,
                "shm": protocol.shm_supported()}

    # -- sessions ---------------------------------------------------------------------------------
    def _session(self, conn: Connection, header: dict):
        sid = header.get("session")
        if not isinstance(sid, str):
            raise ProtocolError("bad_request", f"'session' must be a session id string, got {sid!r}")
        with self._lock:
            session = self.sessions.get(sid)
            if session is None or session.owner is not conn:
                why = self.evicted.get(sid, "it was never opened on this connection, or was closed")
                raise ProtocolError("unknown_session", f"no session {sid!r}: {why}. Open a new session and "
                                    "send the prompts again (the same prompts give the same mattes)")
        session.touch()
        return session

    def _submit(self, conn: Connection, rid: Any, key: Any, steps, cancellable: bool = True) -> None:
        def done(reply):
            conn.post({"id": rid, "ok": True, **(reply or {})})

        def failed(exc):
            if isinstance(exc, Cancelled):
                conn.post(protocol.error_reply(rid, "cancelled", "cancelled"))
            elif isinstance(exc, ProtocolError):
                conn.post(protocol.error_reply(rid, exc.code, exc.message))
            else:
                log.exception("bridge: engine failure", exc_info=exc)
                conn.post(protocol.error_reply(rid, _engine_code(exc), f"{type(exc).__name__}: {exc}"))

        self.queue.submit(Job(key, steps, done, failed, ready=conn.ready, owner=conn, cancellable=cancellable))

    def _submit_close(self, sid: str, why: str) -> None:
        def steps():
            self._drop_session(sid, why)
            return {}
            yield  # noqa: unreachable - makes this a generator

        self.queue.cancel(key=sid)
        try:
            self.queue.submit(Job(sid, steps(), lambda r: None, lambda e: None, cancellable=False))
        except RuntimeError:  # the queue has stopped (shutting down): nothing runs, drop it now
            self._drop_session(sid, why)

    def _drop_session(self, sid: str, why: str, free: bool = True) -> None:
        with self._lock:
            session = self.sessions.pop(sid, None)
            self.evicted[sid] = why
            if len(self.evicted) > 1000:
                self.evicted.pop(next(iter(self.evicted)))
        if session is None:
            return
        session.closed = True
        session.owner.sessions.discard(sid)
        session.engine = None  # frees features, memory bank and results
        if free:
            _free_device_memory()

    def evict_idle_sessions(self) -> None:
        limit = self.config.session_timeout
        if limit <= 0:
            return
        now = time.monotonic()
        with self._lock:
            stale = [s.id for s in self.sessions.values() if now - s.last_used > limit and not self.queue.jobs(key=s.id)]
        for sid in stale:
            log.info("session %s idle for more than %.0f s: evicted", sid, limit)
            self._submit_close(sid, f"it was evicted after {limit:.0f} s without use")

    # -- ops ------------------------------------------------------------------------------------
    def _op_ping(self, conn, rid, header, payload):
        return {}

    def _op_hello(self, conn, rid, header, payload):
        raise ProtocolError("bad_request", "already said hello on this connection")

    def _op_status(self, conn, rid, header, payload):
        with self._lock:
            return {**self._info(), "connections": len(self.connections), "sessions": len(self.sessions),
                    "queue": self.queue.pending(), "uptime": time.time() - self.started,
                    "address": self.address}

    def _op_shutdown(self, conn, rid, header, payload):
        self._stop.set()
        return {"stopping": True}

    def _op_open_session(self, conn, rid, header, payload):
        from samroto.core.io import ColorError

        from .sessions import BridgeSession, open_source

        model = header.get("model")
        loaded = self.model_info.get("name")
        if model not in (None, "", loaded):
            raise ProtocolError("bad_request", f"this bridge runs model {loaded!r}, not {model!r}: restart it "
                                f"with `samroto serve --model {model}` (or leave 'model' out)")
        options = header.get("options") or {}
        if not isinstance(options, dict):
            raise ProtocolError("bad_request", "options must be an object of engine option names to values")
        color = header.get("color")
        color = {**self.config.color, **color} if isinstance(color, dict) else (color or dict(self.config.color))
        if len(conn.sessions) >= MAX_SESSIONS_PER_CONNECTION:
            raise ProtocolError("busy", f"{len(conn.sessions)} sessions are open on this connection; close "
                                "the ones you no longer need")
        sid = "s" + secrets.token_hex(6)

        def steps():
            try:
                frames = open_source(header.get("source"), color)
            except ColorError as exc:
                raise ProtocolError("bad_request", f"color: {exc}") from None
            try:
                engine = self.engine_factory(frames, options)
            except TypeError as exc:
                raise ProtocolError("bad_request", f"options: {exc}") from None
            session = BridgeSession(sid, conn, frames, engine, options)
            with self._lock:
                if conn.closed.is_set():
                    raise Cancelled()
                self.sessions[sid] = session
                conn.sessions.add(sid)
            return session.describe()
            yield  # noqa

        self._submit(conn, rid, sid, steps())
        return None

    def _op_close_session(self, conn, rid, header, payload):
        session = self._session(conn, header)
        self.queue.cancel(key=session.id)

        def steps():
            self._drop_session(session.id, "it was closed")
            return {}
            yield  # noqa

        self._submit(conn, rid, session.id, steps(), cancellable=False)
        return None

    def _op_cancel(self, conn, rid, header, payload):
        session = self._session(conn, header)
        return {"cancelled": self.queue.cancel(key=session.id)}

    def _op_put_frame(self, conn, rid, header, payload):
        from .sessions import PushedFrames, frame_array

        session = self._session(conn, header)
        if not isinstance(session.frames, PushedFrames):
            raise ProtocolError("bad_request", "this session reads its frames from files; put_frame is for "
                                "sessions opened with a pushed source")
        frame = header.get("frame")
        session.position(frame)
        shape, dtype = header.get("shape"), header.get("dtype")
        name = header.get("shm")
        if name is not None:
            if payload:
                raise ProtocolError("bad_request", "give the pixels inline or in shared memory, not both")
            nbytes = protocol.array_nbytes(shape, dtype) if isinstance(shape, list) else 0
            seg, view = conn.segments.read_client(name, nbytes)
            try:
                pixels = frame_array(session.frames, frame, shape, dtype, view, exact=False)
            finally:
                view.release()
                seg.close()
        else:
            pixels = frame_array(session.frames, frame, shape, dtype, memoryview(payload))
        session.frames.put(frame, pixels)
        return {"frame": frame}

    def _op_add_prompts(self, conn, rid, header, payload):
        from samroto.core.prompts import PromptError, from_dict, validate

        session = self._session(conn, header)
        try:
            prompt_set = from_dict(header.get("prompts"))
            validate(prompt_set, session.frames.frame_numbers, session.frames.width, session.frames.height)
        except PromptError as exc:
            raise ProtocolError("bad_prompts", str(exc)) from None
        emit = self._matte_emitter(conn, rid, session, header.get("mattes"))

        def steps():
            try:
                yield from session.add_prompts(prompt_set, emit)
            finally:
                emit.close()
            return {"objects": session.objects(session.engine.obj_ids), "frames": prompt_set.frames()}

        self._submit(conn, rid, session.id, steps())
        return None

    def _op_clear_prompts(self, conn, rid, header, payload):
        session = self._session(conn, header)
        obj = header.get("object")

        def steps():
            session.clear(obj)
            return {"objects": session.objects(session.engine.obj_ids)}
            yield  # noqa

        self._submit(conn, rid, session.id, steps())
        return None

    def _op_propagate(self, conn, rid, header, payload):
        session = self._session(conn, header)
        direction = header.get("direction") or "forward"
        emit = self._matte_emitter(conn, rid, session, header.get("mattes"))

        def progress(done, total, frame):
            conn.post({"id": rid, "event": "progress", "done": done, "total": total, "frame": frame})

        def steps():
            try:
                passes = session.plan(direction, header.get("start"), header.get("first"), header.get("last"))
                return (yield from session.propagate(passes, emit, progress))
            finally:
                emit.close()

        self._submit(conn, rid, session.id, steps())
        return None

    def _matte_emitter(self, conn: Connection, rid: Any, session, spec: Any) -> "MatteEmitter":
        if spec is not None and not isinstance(spec, dict):
            raise ProtocolError("bad_request", "mattes must be an object with a 'transport' (file, shm, inline)")
        return MatteEmitter(conn, rid, session, spec)


class MatteEmitter:
    """Sends one ``matte`` event per finished frame, through the transport the client chose."""

    def __init__(self, conn: Connection, rid: Any, session, spec: dict | None):
        self.conn, self.rid, self.session = conn, rid, session
        self.spec = spec or {"transport": "none"}
        self.transport = self.spec.get("transport", "none")
        if self.transport not in ("none", "file", "shm", "inline"):
            raise ProtocolError("bad_request", f"mattes.transport must be file, shm, inline or none, "
                                f"not {self.transport!r}")
        if self.transport == "shm" and not protocol.shm_supported():
            raise ProtocolError("shm_error", "this bridge has no shared memory support")
        self.dtype = self.spec.get("dtype", "float32")
        self.values = self.spec.get("values", "alpha")
        if self.values not in ("alpha", "logits") or (self.values == "logits" and (
                self.transport not in ("shm", "inline") or self.dtype != "float32")):
            raise ProtocolError("bad_request", "mattes.values must be 'alpha', or 'logits' with transport shm or "
                                "inline and dtype float32")
        if self.transport in ("shm", "inline"):
            from .sessions import encode_alpha
            import numpy as np
            encode_alpha(np.zeros((1, 1), np.float32), self.dtype)  # validates the dtype early
        self._writer = None
        self._writer_names: list[str] | None = None
        self.finisher = self._finisher(self.spec.get("finish", {}), conn.server.finisher_factory)

    def _finisher(self, finish: Any, factory: Callable | None):
        """The finishing stage for these mattes: the bridge's ``finish.*`` settings, overridden
        per request (``"finish": {"grow": 2}``), or off (``"finish": false``)."""
        if finish is False or self.values == "logits" or factory is None:
            return None
        if not isinstance(finish, dict):
            raise ProtocolError("bad_request", "mattes.finish must be false or an object of finish settings "
                                "(e.g. {\"grow\": 2, \"feather\": 1.5})")
        try:
            return factory(**finish)
        except (TypeError, ValueError) as exc:
            raise ProtocolError("bad_request", f"mattes.finish: {exc}") from None

    def _alpha(self, frame: int, obj_ids, logits):
        from .sessions import alpha_from_logits

        if self.finisher is None:
            return alpha_from_logits(logits)
        import numpy as np

        # Temporal smoothing resets itself on a frame jump or a change of direction (a new pass).
        plate = self.session.frames.read(frame)
        alphas = self.finisher.finish_frame({int(i): logits[k] for k, i in enumerate(obj_ids)}, plate, frame)
        return np.stack([np.asarray(alphas[int(i)], np.float32) for i in obj_ids])

    def __call__(self, frame: int, obj_ids, logits) -> None:
        if self.transport == "none" or self.conn.closed.is_set():
            return
        from .sessions import encode_alpha, matte_writer

        if self.values == "logits":
            alpha = logits.detach().float().cpu().numpy() if hasattr(logits, "detach") else logits
        else:
            alpha = self._alpha(frame, obj_ids, logits)
        objects = self.session.objects(obj_ids)
        event = {"id": self.rid, "event": "matte", "frame": frame, "objects": objects}
        if self.transport == "file":
            from samroto.core.io import safe_name

            names = [o["name"] for o in objects]
            if self._writer is None or self._writer_names != names:
                self.close()
                self._writer, self._writer_names = matte_writer(self.spec, names), names
            try:
                paths = self._writer.write(frame, {safe_name(n): a for n, a in zip(names, alpha)})
            except Exception as exc:  # noqa: BLE001 - disk full, permissions: the job fails cleanly
                raise ProtocolError("io_error", f"writing mattes for frame {frame}: {exc}") from None
            event["paths"] = [str(p) for p in paths]
            self.conn.post(event)
            return
        data = encode_alpha(alpha, self.dtype)
        event.update(shape=list(data.shape), dtype=self.dtype)
        if self.transport == "shm":
            event["shm"] = self.conn.segments.create(data)
            self.conn.post(event)
        else:
            self.conn.post(event, memoryview(data).cast("B"))

    def close(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            finally:
                self._writer = None


def _engine_code(exc: BaseException) -> str:
    from samroto.core.io.errors import SamrotoIOError

    if isinstance(exc, SamrotoIOError):
        return "io_error"
    if isinstance(exc, (ValueError, KeyError, IndexError)):
        return "bad_request"
    return "engine_error"


_last_collect = [0.0]


def _free_device_memory() -> None:
    """Hand a closed session's GPU memory back. Its tensors are freed by reference counting;
    a full garbage collection (slow with torch loaded) runs at most every few seconds."""
    import gc

    now = time.monotonic()
    if now - _last_collect[0] > 5.0:
        _last_collect[0] = now
        gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def install_signal_handlers(server: BridgeServer) -> None:
    def stop(signum, frame):
        server.stop()

    for sig in (signal.SIGTERM, signal.SIGINT, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, stop)
