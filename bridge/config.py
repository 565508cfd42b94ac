"""What a bridge is told when it starts: where to listen, its limits and its defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import protocol


@dataclass
class ServerConfig:
    host: str = ""  # TCP bind address; empty (and port 0): a Unix socket where there is one
    port: int = 0
    unix: bool | None = None  # force (True) or refuse (False) a Unix socket; None: decide as above
    idle_timeout: float = 1800.0  # seconds without clients before the bridge exits (0: never)
    session_timeout: float = 3600.0  # seconds before an unused session is evicted (0: never)
    max_payload: int = protocol.DEFAULT_MAX_PAYLOAD_BYTES  # a message's payload, a pushed or shm frame
    config_dir: str | None = None  # where the discovery file goes (None: the user's config dir)
    color: dict = field(default_factory=dict)  # colour settings a session gets unless it says otherwise
    # Folders whose files requests may read (frames, mask prompts) and where mattes may be
    # written. None: anywhere this user may (the default on a private local socket); required
    # for a bind beyond loopback (bridge/paths.py).
    read_roots: list[str] | None = None
    write_roots: list[str] | None = None
    # Connections: in all, from one TCP address (clients on the Unix socket: the total only),
    # and not yet past hello. Beyond these a new connection gets `busy` and is closed.
    max_connections: int = 128
    max_connections_per_peer: int = 64
    max_unauthenticated: int = 32
    # A shared GPU host (docs/bridge.md, "Shared GPU host"): TLS certificate chain and key (PEM);
    # the users file of per-user tokens (bridge/users.py); the clients' mount points of shared
    # storage -> the bridge's (bridge/paths.py PathMap); sessions one user may hold (0: no cap);
    # connections one user may hold (0: no cap), so that no artist takes every connection.
    tls_cert: str | None = None
    tls_key: str | None = None
    users_file: str | None = None
    path_map: Any = None
    max_sessions_per_user: int = 0
    max_connections_per_user: int = 16

    def __post_init__(self) -> None:
        self.color = self.color or {}
