"""The bridge server: one process near the GPU, one model, many clients and sessions.

This module listens, accepts and stops; the rest is split by job:

- ``connection.py``: one client's socket, its reader and writer threads, the hello (token);
- ``dispatch.py``: the ops, and which error code a failure gets;
- ``registry.py``: the sessions of every connection, their closing and idle eviction;
- ``emission.py``: matte events through the client's transport, finished as it asked;
- ``sessions.py``: one shot's frames, engine and prompts; ``workqueue.py``: the one GPU queue.

Threads: the accept loop (main thread; also evicts idle sessions and handles idle shutdown),
one reader and one writer per connection, and the work queue's worker (all engine calls).
See docs/protocol.md for the messages and docs/bridge.md for running it.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import sys
import tempfile
import threading
import time
from typing import Any

from . import discovery, protocol
from .config import ServerConfig
from .connection import Connection
from .dispatch import Dispatcher, EngineFactory
from .emission import FinisherFactory, MatteEmitter
from .registry import SessionRegistry
from .workqueue import WorkQueue

__all__ = ["BridgeServer", "Connection", "MatteEmitter", "ServerConfig", "install_signal_handlers"]

log = logging.getLogger("samroto.bridge")


class BridgeServer:
    """Serve ``engine_factory`` sessions. ``engine_factory(frames, options)`` builds a
    VideoSession on the loaded model; ``model_info`` is reported by hello/status;
    ``finisher_factory(**overrides)`` builds the finishing stage of alpha mattes (None: SAM 2's
    own 0/1 decision)."""

    def __init__(self, config: ServerConfig, engine_factory: EngineFactory, model_info: dict | None = None,
                 finisher_factory: FinisherFactory | None = None):
        self.config = config
        self.model_info = model_info or {}
        self.token = secrets.token_hex(32)
        self.pid = os.getpid()
        self.queue = WorkQueue()
        self.registry = SessionRegistry(self.queue)
        self.dispatcher = Dispatcher(config=config, engine_factory=engine_factory, finisher_factory=finisher_factory,
                                     model_info=self.model_info, token=self.token, work=self.queue,
                                     registry=self.registry, server_status=self._status, stop=self.stop)
        self.connections: dict[int, Connection] = {}
        self._lock = threading.Lock()
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
                    self.registry.evict_idle(self.config.session_timeout)
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

    def _status(self) -> dict:
        with self._lock:
            connections = len(self.connections)
        return {"connections": connections, "uptime": time.time() - self.started, "address": self.address}

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
            lambda: self.registry.drop_all("the bridge stopped"),
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
        conn = Connection(sock, str(peer), on_close=self.connection_closed)
        with self._lock:
            self.connections[conn.id] = conn
            self._last_activity = time.monotonic()
        conn.start(self.dispatcher.handle, self.config.max_payload)

    def connection_closed(self, conn: Connection) -> None:
        """Cancel the connection's work and free its sessions and segments."""
        with self._lock:
            self.connections.pop(conn.id, None)
            self._last_activity = time.monotonic()
        self.queue.cancel(owner=conn)
        self.registry.close_all_of(conn, "its client disconnected")
        conn.segments.close()


def install_signal_handlers(server: BridgeServer) -> None:
    def stop(signum, frame):
        server.stop()

    for sig in (signal.SIGTERM, signal.SIGINT, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, stop)
