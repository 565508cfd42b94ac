"""Which files a request may make the bridge read or write.

``read_roots`` / ``write_roots`` (ServerConfig; settings ``bridge.read_roots`` and
``bridge.write_roots``): None lets requests use any file the bridge's user may (the default
on the private local socket); a list confines frames and mask prompts to files inside those
folders, and mattes to those folders. Symbolic links are followed before the check, so a
link inside a root that points outside is refused. A refused path gets the same
``bad_request`` whether or not it exists, so the refusal tells nothing about the file.

Names longer than the file system allows are refused up front (``bad_request``) whatever
the roots.

``PathMap`` (setting ``bridge.path_map``): the mount points of shared storage on the
clients' machines and on the bridge's, for a shared bridge serving other machines.
"""

from __future__ import annotations

import os
import re
from typing import Any, Iterable, Sequence

from .protocol import ProtocolError, _short

NAME_MAX = 255  # bytes in one path component (ext4, APFS, NTFS)
PATH_MAX = 4096  # bytes in a whole path
TEMPLATE_CHARS = "%#@{"  # a component with one of these holds a frame token or {name}
PATTERN_ROOM = 32  # a matte file name grows by its frame number and the temporary name's suffix


def check_length(path: str, what: str, room: int = 0) -> None:
    """bad_request for a path no file system can hold; ``room``: bytes a component may still
    grow by (a frame number, the writer's temporary name)."""
    raw = os.fsencode(path) if isinstance(path, str) else b""
    if len(raw) > PATH_MAX:
        raise ProtocolError("bad_request", f"{what}: the path is {len(raw)} bytes long; the most is {PATH_MAX}")
    for part in raw.split(os.fsencode(os.sep)):
        if len(part) + room > NAME_MAX:
            raise ProtocolError("bad_request", f"{what}: the name {_short(os.fsdecode(part), 60)} is {len(part)} "
                                f"bytes long; the most is {NAME_MAX - room}")


def _real_roots(roots: Sequence[str]) -> list[str]:
    return [os.path.realpath(os.path.expanduser(r)) for r in roots]


def _inside(real: str, roots: list[str]) -> bool:
    for root in roots:
        try:
            if os.path.commonpath([real, root]) == root:
                return True
        except ValueError:  # different drives (Windows)
            continue
    return False


def check_inside(paths: Iterable[str], roots: Sequence[str] | None, what: str, setting: str) -> None:
    """bad_request unless every path (links followed) lies inside one of ``roots``."""
    if roots is None:
        return
    real_roots = _real_roots(roots)
    for path in paths:
        if not isinstance(path, str) or not os.path.isabs(path):
            raise ProtocolError("bad_request", f"{what}: {_short(path, 120)} is not an absolute path; this bridge "
                                f"only takes absolute paths inside {', '.join(roots)} ({setting})")
        real = os.path.realpath(path)
        if not _inside(real, real_roots):
            raise ProtocolError("bad_request", f"{what}: {_short(path, 120)} is outside the folders this bridge "
                                f"may use ({setting}: {', '.join(roots)})")


def check_write_pattern(pattern: str, roots: Sequence[str] | None) -> None:
    """A matte pattern: names a file system can hold, in a folder inside a write root."""
    check_length(pattern, "mattes.pattern", room=PATTERN_ROOM)
    if roots is None:
        return
    folder = os.path.dirname(pattern)
    if any(c in folder for c in TEMPLATE_CHARS):
        raise ProtocolError("bad_request", "mattes.pattern: frame tokens and {name} belong in the file name, "
                            f"not in its folders ({_short(pattern, 120)})")
    check_inside([folder or pattern], roots, "mattes.pattern", "bridge.write_roots")


def check_read(paths: Iterable[str], roots: Sequence[str] | None, what: str) -> None:
    check_inside(paths, roots, what, "bridge.read_roots")


# --- path map: the clients' mount points of shared storage -> the bridge's --------------------

_WINDOWS_ROOT = re.compile(r"^(?:[A-Za-z]:[\\/]|[\\/]{2}[^\\/])")


def _trim(prefix: str) -> str:
    """A prefix without trailing separators, except a root's (/, S:\\, S:/)."""
    trimmed = prefix.rstrip("\\/")
    if not trimmed or (len(trimmed) == 2 and trimmed[1] == ":"):
        return prefix[:len(trimmed) + 1]
    return trimmed


def _windows(path: str) -> bool:
    """A Windows path: ``S:\\shows`` (or ``S:/shows``) or a UNC share ``\\\\server\\shows``."""
    return bool(_WINDOWS_ROOT.match(path))


class PathRule:
    """One mount point: ``client`` (as artists' machines name it) is ``server`` on the bridge."""

    def __init__(self, client: str, server: str):
        self.client, self.server = _trim(client), _trim(server)
        self.client_windows, self.server_windows = _windows(client), _windows(server)

    def __repr__(self) -> str:
        return f"PathRule({self.client!r} -> {self.server!r})"

    @staticmethod
    def _match(path: str, prefix: str, windows: bool) -> str | None:
        """What follows ``prefix`` in ``path`` (separators and all), or None if it is not under it."""
        head = path[:len(prefix)]
        if windows:
            same = head.replace("\\", "/").lower() == prefix.replace("\\", "/").lower()
        else:
            same = head == prefix
        rest = path[len(prefix):]
        seps = "\\/" if windows else "/"
        if not same or (rest and rest[0] not in seps and prefix[-1:] not in seps):
            return None
        return rest

    @staticmethod
    def _join(prefix: str, rest: str, from_windows: bool, to_windows: bool) -> str:
        rest = rest.lstrip("\\/" if from_windows else "/")
        if not rest:
            return prefix
        if from_windows and not to_windows:
            rest = rest.replace("\\", "/")
        elif to_windows and not from_windows:
            rest = rest.replace("/", "\\")
        return prefix + ("" if prefix[-1:] in ("/", "\\") else "\\" if to_windows else "/") + rest

    def to_server(self, path: str) -> str | None:
        rest = self._match(path, self.client, self.client_windows)
        return None if rest is None else self._join(self.server, rest, self.client_windows, self.server_windows)

    def to_client(self, path: str) -> str | None:
        rest = self._match(path, self.server, self.server_windows)
        return None if rest is None else self._join(self.client, rest, self.server_windows, self.client_windows)


class PathMap:
    """The setting ``bridge.path_map``: clients name shared storage by their own mount points
    (``S:\\shows`` on Windows, ``/Volumes/shows`` on a Mac), the bridge by its (``/mnt/shows``).
    Every path a client sends is mapped to the bridge's before any check, and the paths the
    bridge reports are mapped back the way that client's paths came (``Connection``). The
    longest matching prefix wins; a path no rule matches is left as it is. Windows prefixes
    match whatever the case and either slash."""

    def __init__(self, pairs: Any = None):
        self.rules = sorted(parse_path_map(pairs), key=lambda r: -len(r.client))

    def __bool__(self) -> bool:
        return bool(self.rules)

    def to_server(self, path: str) -> tuple[str, PathRule | None]:
        for rule in self.rules:
            mapped = rule.to_server(path)
            if mapped is not None:
                return mapped, rule
        return path, None


def parse_path_map(value: Any) -> list[PathRule]:
    """Rules from a setting: ``{client: server}``, or a list of ``[client, server]`` pairs or
    ``"client=server"`` strings. ValueError says what is wrong."""
    if not value:
        return []
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, (list, tuple)):
        pairs = []
        for item in value:
            if isinstance(item, str) and "=" in item:
                client, server = item.rsplit("=", 1)
                pairs.append((client, server))
            elif isinstance(item, (list, tuple)) and len(item) == 2:
                pairs.append((item[0], item[1]))
            else:
                raise ValueError(f"bridge.path_map: {item!r} is not a [client, server] pair or 'client=server'")
    else:
        raise ValueError("bridge.path_map must be a list of [client, server] pairs or a {client: server} mapping")
    rules = []
    for client, server in pairs:
        for what, prefix in (("client", client), ("server", server)):
            if not isinstance(prefix, str) or not (prefix.startswith("/") or _windows(prefix)):
                raise ValueError(f"bridge.path_map: the {what} side {prefix!r} must be an absolute path "
                                 "(/mnt/shows, S:\\shows or \\\\server\\shows)")
        if not (os.path.isabs(server) or _windows(server)):
            raise ValueError(f"bridge.path_map: {server!r} is not an absolute path on this machine")
        rules.append(PathRule(client, server))
    return rules
