"""The bridge server: one process near the GPU, one model, many clients and sessions.

This module listens, accepts (within the connection caps; a failing accept(), e.g. out of
file descriptors, is retried, never fatal) and stops; the rest is split by job:

- ``connection.py``: one client's socket, its reader and writer threads, the hello (token);
- ``dispatch.py``: the ops, and which error code a failure gets;
- ``registry.py``: the sessions of every connection, their closing and idle eviction;
- ``emission.py``: matte events through the client's transport, finished as it asked;
- ``sessions.py``: one shot's frames, engine and prompts; ``workqueue.py``: the one GPU queue;
- ``paths.py``: which files requests may read and write, the path map; ``shm.py``: which
  segments it unlinks; ``users.py``: a shared host's per-user tokens.

A shared GPU host (docs/bridge.md, "Shared GPU host (facility admin)") adds TLS
(``bridge.tls_cert``/``tls_key``; plain TCP beyond loopback is refused), per-user tokens
(``bridge.users_file``, re-read when it changes: revoked users are hung up on), the path map
and a cap on sessions per user; the work queue takes turns between users.

Threads: the accept loop (main thread; also closes connections past a deadline, evicts idle
sessions and handles idle shutdown), one reader and one writer per connection, and the work
queue's worker (all engine calls).
See docs/protocol.md for the messages and docs/bridge.md for running it.
"""

from __future__ import annotations

import ipaddress
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
from .paths import PathMap
from .registry import SessionRegistry, collect_pending
from .users import Users, UsersError
from .workqueue import WorkQueue

__all__ = ["BridgeServer", "ConfigError", "Connection", "MatteEmitter", "ServerConfig", "check_config",
           "install_signal_handlers", "load_shared"]

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
        self.registry = SessionRegistry(self.queue, max_sessions_per_user=config.max_sessions_per_user)
        self.tls: Any = None  # ssl.SSLContext of a shared host (bind)
        self.users: Users | None = None
        self.path_map = PathMap()
        self._tls_fingerprint: str | None = None
        self._users_seen = 0  # the users file's generation the connections were last checked against
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
        self._accept_logged = self._refused_logged = -1e9

    # -- listening ----------------------------------------------------------------------------
    def bind(self) -> dict:
        cfg = self.config
        check_config(cfg)
        self.tls, self._tls_fingerprint, self.users, self.path_map = load_shared(cfg)
        # a Unix socket unless TCP was asked for (a host, a port, TLS, users) or the platform has none
        use_unix = cfg.unix if cfg.unix is not None else (
            not cfg.host and not cfg.port and self.tls is None and self.users is None and hasattr(socket, "AF_UNIX"))
        if use_unix and self.tls is not None:
            raise ConfigError("TLS (bridge.tls_cert) needs TCP: set bridge.host and bridge.port")
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
            if not loopback(host):
                print(f"samroto serve: WARNING: listening on {host}:{self.address['port']} (TLS), reachable from "
                      f"other machines. Every user with a token in {cfg.users_file} can use this bridge, read "
                      f"files in {', '.join(cfg.read_roots or [])} and write mattes in "
                      f"{', '.join(cfg.write_roots or [])} as you.", file=sys.stderr, flush=True)
        sock.listen(64)
        sock.settimeout(0.25)  # the accept loop also checks deadlines and evicts idle sessions
        self._listener = sock
        return self.address

    def discovery_info(self) -> dict:
        address = dict(self.address or {})
        if address.get("host") in ("0.0.0.0", "::", ""):  # listening everywhere: local tools use loopback
            address["host"] = "::1" if address["host"] == "::" else "127.0.0.1"
        if self._tls_fingerprint:  # local tools trust the certificate this file names, nothing else
            address["tls"] = {"sha256": self._tls_fingerprint}
        return {"protocol": protocol.PROTOCOL_VERSION, "address": address, "pid": self.pid,
                "token": self.token, "started": self.started, "model": self.model_info.get("name"),
                "python": sys.executable}

    def serve_forever(self) -> None:
        """Accept connections until stopped, idle too long, or asked to shut down."""
        assert self._listener is not None, "bind() first"
        discovery.write(self.discovery_info(), self.config.config_dir)
        last_sweep = last_deadlines = time.monotonic()
        backoff = 0.0
        try:
            while not self._stop.is_set():
                try:
                    sock, peer = self._listener.accept()
                    backoff = 0.0
                except socket.timeout:
                    sock = None
                except OSError as exc:  # EMFILE, ENFILE, ENOBUFS, ECONNABORTED...: wait, then go on
                    if self._stop.is_set():
                        break
                    backoff = min(1.0, backoff * 2 or 0.05)
                    self._accept_failed(exc, backoff)
                    sock = None
                if sock is not None:
                    try:
                        self._accept(sock, peer)
                    except Exception:  # noqa: BLE001 - e.g. no thread to be had: drop this one, serve on
                        log.exception("bridge: cannot serve a new connection")
                        _close_quietly(sock)
                now = time.monotonic()
                if now - last_deadlines > 0.2:
                    last_deadlines = now
                    self._check_deadlines(now)
                if now - last_sweep > 1.0:
                    last_sweep = now
                    try:
                        self._check_users()
                    except Exception:  # noqa: BLE001
                        log.exception("bridge: re-reading the users file failed")
                    try:
                        self.registry.evict_idle(self.config.session_timeout)
                        collect_pending()
                    except Exception:  # noqa: BLE001
                        log.exception("bridge: evicting idle sessions failed")
                    if self._idle_for() > self.config.idle_timeout > 0:
                        log.info("no clients for %.0f s: shutting down", self.config.idle_timeout)
                        break
        finally:
            self.shutdown()

    def _accept_failed(self, exc: OSError, backoff: float) -> None:
        """accept() failed (most often: out of file descriptors). The bridge serves on; the
        pending connection waits in the backlog until descriptors are free again."""
        now = time.monotonic()
        if now - self._accept_logged > 10.0:
            self._accept_logged = now
            log.warning("bridge: cannot accept a connection (%s); %d open: retrying", exc, len(self.connections))
        self._check_deadlines(now)  # closing stalled connections frees descriptors
        self._stop.wait(backoff)

    def _check_deadlines(self, now: float) -> None:
        for conn in list(self.connections.values()):
            try:
                conn.check_deadlines(now)
            except Exception:  # noqa: BLE001
                log.exception("bridge: closing connection %s failed", conn.id)

    def _check_users(self) -> None:
        """The users file changed: hang up on connections whose token was revoked or replaced."""
        if self.users is None:
            return
        self.users.refresh()
        if self.users.generation == self._users_seen:
            return
        self._users_seen = self.users.generation
        for conn in list(self.connections.values()):
            if conn.user is None or conn.ending or (self.users.active(conn.user) and
                                                    self.users.token_hash(conn.user) == conn.token_hash):
                continue
            log.warning("connection %s (%s): the token of user %s was revoked or replaced: closed", conn.id, conn.peer,
                        conn.user)
            self.queue.cancel(owner=conn)
            conn.hang_up("unauthorized", f"the token of user {conn.user} was revoked or replaced: ask your samroto "
                         "admin for a new one")

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
            owners = [c.user for c in self.connections.values()]
        per_user: dict = {}
        for user in owners:   # None: the bridge's own user (the discovery token)
            per_user[user] = per_user.get(user, 0) + 1
        return {"connections": len(owners), "uptime": time.time() - self.started, "address": self.address,
                "connections_by_user": per_user}

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
    def _accept(self, sock: Any, peer: Any) -> None:
        key = peer_key(sock, peer)
        cfg = self.config
        with self._lock:
            conns = list(self.connections.values())
            if len(conns) >= cfg.max_connections:
                refused = f"{len(conns)} connections are open, the most this bridge takes"
            elif key != LOCAL_PEER and sum(c.peer_key == key for c in conns) >= cfg.max_connections_per_peer:
                refused = f"{cfg.max_connections_per_peer} connections from {key} are open, the most one peer may hold"
            elif sum(not c.authed and not c.closed.is_set() for c in conns) >= cfg.max_unauthenticated:
                refused = f"{cfg.max_unauthenticated} connections are waiting to say hello"
            else:
                refused = None
                if self.tls is not None:  # the handshake is the connection's reader's, under the hello deadline
                    sock = protocol.SecureSocket(self.tls.wrap_socket(sock, server_side=True,
                                                                      do_handshake_on_connect=False))
                conn = Connection(sock, str(peer), on_close=self.connection_closed, peer_key=key,
                                  handshake=self.tls is not None, users=self.users, path_map=self.path_map)
                self.connections[conn.id] = conn
                self._last_activity = time.monotonic()
        if refused is not None:
            self._turn_away(sock, refused)
            return
        try:
            conn.start(self.dispatcher.handle, self.config.max_payload)
        except BaseException:
            conn.close()
            _close_quietly(sock)
            raise

    def _turn_away(self, sock: socket.socket, why: str) -> None:
        """Refuse a connection over a cap: one `busy` message if the socket takes it at once, then close."""
        now = time.monotonic()
        if now - self._refused_logged > 10.0:
            self._refused_logged = now
            log.warning("bridge: connection refused: %s", why)
        if self.tls is not None:  # a TLS client cannot read a plain message: it sees the handshake end
            _close_quietly(sock)
            return
        try:
            sock.setblocking(False)
            protocol.send_message(sock, {**protocol.error_reply(None, "busy", f"{why}; try again later"),
                                         "close": True})
        except OSError:
            pass
        _close_quietly(sock)

    def connection_closed(self, conn: Connection) -> None:
        """Cancel the connection's work and free its sessions and segments."""
        with self._lock:
            self.connections.pop(conn.id, None)
            self._last_activity = time.monotonic()
        self.queue.cancel(owner=conn)
        self.registry.close_all_of(conn, "its client disconnected")
        conn.segments.close()


class ConfigError(ValueError):
    """The bridge cannot start as configured; the message says what to set."""


def check_config(cfg: ServerConfig) -> None:
    """What a bridge serving other machines needs (ConfigError says what to set): the folders
    it may read and write, TLS (plain TCP beyond loopback is refused) and per-user tokens."""
    host = cfg.host
    if not host or loopback(host):
        return
    if not cfg.read_roots or not cfg.write_roots:
        raise ConfigError(f"a bridge listening on {host} serves other machines: set the folders it may read "
                          "and write (settings bridge.read_roots and bridge.write_roots, or --read-root "
                          "and --write-root)")
    if not cfg.tls_cert:
        raise ConfigError(f"a bridge listening on {host} serves other machines, and plain TCP would show them "
                          "every token and path: turn TLS on (settings bridge.tls_cert and bridge.tls_key, or "
                          "--tls-cert and --tls-key; docs/bridge.md, Shared GPU host)")
    if not cfg.users_file:
        raise ConfigError(f"a bridge listening on {host} serves other machines: give each artist a token of "
                          "their own (setting bridge.users_file or --users-file; `samroto users issue NAME`)")


def load_shared(cfg: ServerConfig) -> tuple[Any, str | None, Users | None, PathMap]:
    """A shared host's TLS context and certificate fingerprint, users and path map, from the
    config (None where not set); ConfigError says what is wrong."""
    tls = fingerprint = users = None
    if bool(cfg.tls_cert) != bool(cfg.tls_key):
        raise ConfigError("TLS needs both a certificate (bridge.tls_cert) and its private key (bridge.tls_key)")
    if cfg.tls_cert and cfg.tls_key:
        tls, fingerprint = tls_context(cfg.tls_cert, cfg.tls_key)
    if cfg.users_file:
        try:
            users = Users(cfg.users_file)
        except UsersError as exc:
            raise ConfigError(str(exc)) from None
    try:
        path_map = PathMap(cfg.path_map)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return tls, fingerprint, users, path_map


def tls_context(cert: str, key: str) -> tuple[Any, str]:
    """The server's TLS context (TLS 1.2 or later) and the SHA-256 of its certificate (what
    the discovery file pins for local tools); ConfigError when they cannot be loaded."""
    import hashlib
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    try:
        context.load_cert_chain(cert, key)
        with open(cert, encoding="ascii", errors="replace") as f:
            pem = f.read()
        start = pem.index("-----BEGIN CERTIFICATE-----")
        end = pem.index("-----END CERTIFICATE-----", start) + len("-----END CERTIFICATE-----")
        der = ssl.PEM_cert_to_DER_cert(pem[start:end])
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise ConfigError(f"cannot use the TLS certificate {cert} with the key {key} (bridge.tls_cert, "
                          f"bridge.tls_key; PEM files): {exc}") from None
    if os.name == "posix" and os.stat(key).st_mode & 0o077:
        log.warning("bridge: the TLS key %s may be read by other users: chmod 600 %s", key, key)
    return context, hashlib.sha256(der).hexdigest()


def loopback(host: str) -> bool:
    """Whether a bind address is reachable from this machine only."""
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


LOCAL_PEER = "local"


def peer_key(sock: socket.socket, peer: Any) -> str:
    """What the per-peer cap counts: the IP address of a TCP peer. Clients on the Unix socket
    (the user's alone) are all LOCAL_PEER, under the total cap only."""
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return LOCAL_PEER


def _close_quietly(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


def install_signal_handlers(server: BridgeServer) -> None:
    def stop(signum, frame):
        server.stop()

    for sig in (signal.SIGTERM, signal.SIGINT, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, stop)
