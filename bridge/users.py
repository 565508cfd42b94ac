"""Per-user tokens of a shared bridge (docs/bridge.md, "Shared GPU host (facility admin)").

The users file (setting ``bridge.users_file``) is JSON, readable and writable by the
bridge's user alone (mode 0600; the bridge refuses one that others may read)::

    {"version": 1, "users": {"alice": {"sha256": "<hex>", "issued": 1790000000.0, "revoked": null}}}

A token is 256 random bits, shown once when the admin issues it (``samroto users issue``);
the file keeps only its SHA-256 (a hash of 256 random bits needs no salt or stretching).
Issuing again replaces a user's token; revoking keeps the entry, marked, so that its holder
is told the token was revoked rather than that it is wrong. A running bridge re-reads the
file when it changes: a new token works at once, and a revoked user's connections are
closed within a second.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from .discovery import write_private_json

log = logging.getLogger("samroto.bridge")

VERSION = 1
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
TOKEN_PREFIX = "srt_"


class UsersError(ValueError):
    """The users file is missing, unreadable, malformed or readable by others."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def check_name(user: Any) -> str:
    if not isinstance(user, str) or not USER_NAME.match(user):
        raise UsersError(f"{user!r} is not a user name: letters, digits and . _ @ - (at most 64, not starting "
                         "with a sign)")
    return user


def load(path: str | os.PathLike, missing_ok: bool = False) -> dict:
    """The users file's content, checked. ``missing_ok``: an absent file is an empty one."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        if missing_ok:
            return {"version": VERSION, "users": {}}
        raise UsersError(f"the users file {path} does not exist: issue a token first (samroto users issue NAME)")
    except OSError as exc:
        raise UsersError(f"cannot read the users file {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as f:
        if os.name == "posix" and os.fstat(f.fileno()).st_mode & 0o077:
            raise UsersError(f"the users file {path} may be read by other users: chmod 600 {path}")
        raw = f.read()
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise UsersError(f"the users file {path} is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("users"), dict):
        raise UsersError(f"the users file {path} is not a samroto users file (version {VERSION})")
    for name, entry in data["users"].items():
        check_name(name)
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str) or len(entry["sha256"]) != 64:
            raise UsersError(f"the users file {path}: user {name!r} has no token hash")
    return data


def save(path: str | os.PathLike, data: dict) -> None:
    """Write the users file atomically, mode 0600."""
    write_private_json(Path(path), data, sort_keys=True)


def issue(path: str | os.PathLike, user: str) -> str:
    """A fresh token for ``user`` (replacing any earlier one, revoked or not); returns it."""
    check_name(user)
    data = load(path, missing_ok=True)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    data["users"][user] = {"sha256": hash_token(token), "issued": time.time(), "revoked": None}
    save(path, data)
    return token


def revoke(path: str | os.PathLike, user: str) -> bool:
    """Revoke ``user``'s token; False when there was no such user (or it was revoked already)."""
    check_name(user)
    data = load(path)
    entry = data["users"].get(user)
    if entry is None or entry.get("revoked"):
        return False
    entry["revoked"] = time.time()
    save(path, data)
    return True


def listing(path: str | os.PathLike) -> list[dict]:
    data = load(path, missing_ok=True)
    return [{"user": name, "issued": entry.get("issued"), "revoked": entry.get("revoked")}
            for name, entry in sorted(data["users"].items())]


class Users:
    """The users file as a running bridge sees it: re-read when it changes (``refresh``).
    If it cannot be read, every user is refused until it can (fail closed)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._users: dict[str, dict] = {}
        self.error: str | None = None
        self.generation = 0  # counts the reads: who checks connections against it knows when it changed
        self.refresh(force=True)
        if self.error:
            raise UsersError(self.error)

    def refresh(self, force: bool = False) -> bool:
        """Re-read the file if it changed since the last read; True if it was re-read."""
        try:
            st = os.stat(self.path)
            stamp: tuple | None = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode)
        except OSError:
            stamp = None
        with self._lock:
            if stamp == self._stamp and not force:
                return False
            self._stamp = stamp
            self.generation += 1
            try:
                users = load(self.path)["users"]
            except UsersError as exc:
                if self.error != str(exc):
                    log.error("bridge: %s; every user is refused until it is fixed", exc)
                self.error, self._users = str(exc), {}
                return True
            self.error, self._users = None, users
            return True

    def check(self, user: Any, token: Any) -> str | None:
        """None if ``token`` is ``user``'s current token, else why not (for the refusal)."""
        self.refresh()
        with self._lock:
            entry = self._users.get(user) if isinstance(user, str) else None
            error = self.error
        given = hash_token(token) if isinstance(token, str) else ""
        stored = entry["sha256"] if entry is not None else "0" * 64
        matches = hmac.compare_digest(given.encode(), stored.encode())  # same time, known user or not
        if error:
            return "this bridge cannot read its users file; tell your samroto admin"
        if entry is None or not matches:
            return "unknown user or wrong token: use the user name and token your samroto admin issued"
        if entry.get("revoked"):
            return f"the token of user {user} was revoked: ask your samroto admin for a new one"
        return None

    def active(self, user: str) -> bool:
        """Whether ``user`` still has a token that is not revoked (after a refresh)."""
        with self._lock:
            entry = self._users.get(user)
            return entry is not None and not entry.get("revoked") and self.error is None

    def token_hash(self, user: str) -> str | None:
        with self._lock:
            entry = self._users.get(user)
            return None if entry is None else entry["sha256"]
