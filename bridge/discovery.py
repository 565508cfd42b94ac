"""The bridge's discovery file: where it listens, its protocol version, pid and token.

Written atomically with mode 0600 (readable by the user alone) in the user config dir,
removed on exit. A file whose process is gone, or whose address refuses connections, is
stale and is replaced by the next ``samroto serve``.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from . import protocol


def path(directory: str | os.PathLike | None = None) -> Path:
    return Path(protocol.discovery_path(os.fspath(directory) if directory else None))


def write(info: dict, directory: str | os.PathLike | None = None) -> Path:
    target = path(directory)
    write_private_json(target, info)
    return target


def write_private_json(target: Path, data: Any, **dump: Any) -> None:
    """Write JSON atomically (a temporary file, then a rename) with mode 0600: readable by
    this user alone (the discovery file, a shared host's users file)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}-", suffix=".json", dir=target.parent)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)  # mkstemp's default too; said explicitly because it matters
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, **dump)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def remove(pid: int, directory: str | os.PathLike | None = None) -> None:
    """Remove the discovery file if it is still ours (another bridge may have replaced it)."""
    target = path(directory)
    info = protocol.read_discovery(str(target))
    if info is not None and info.get("pid") == pid:
        try:
            target.unlink()
        except OSError:
            pass


def reachable(address: dict, timeout: float = 2.0) -> bool:
    """Whether something accepts connections at ``address``."""
    try:
        if address.get("family") == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target = address["path"]
        else:
            sock = socket.socket(socket.AF_INET6 if ":" in address["host"] else socket.AF_INET)
            target = (address["host"], int(address["port"]))
    except (OSError, KeyError, TypeError, ValueError):
        return False
    sock.settimeout(timeout)
    try:
        sock.connect(target)
        return True
    except OSError:
        return False
    finally:
        sock.close()


def live(directory: str | os.PathLike | None = None) -> dict | None:
    """The discovery info of a running bridge, or None (no file, or a stale one)."""
    info = protocol.read_discovery(str(path(directory)))
    if info is None:
        return None
    if not protocol.pid_alive(info.get("pid")) or not reachable(info.get("address") or {}):
        return None
    return info


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not protocol.pid_alive(pid):
            return True
        time.sleep(0.05)
    return not protocol.pid_alive(pid)


def clean_stale(directory: str | os.PathLike | None = None) -> bool:
    """Remove a stale discovery file and the socket it names (a killed bridge's leftovers).
    Returns whether there was one."""
    target = path(directory)
    info = protocol.read_discovery(str(target))
    if info is None or live(directory) is not None:
        return False
    address = info.get("address") or {}
    sock_path = address.get("path") if address.get("family") == "unix" else None
    if isinstance(sock_path, str) and os.path.basename(os.path.dirname(sock_path)).startswith("samroto-"):
        for remove_it in (lambda: os.unlink(sock_path), lambda: os.rmdir(os.path.dirname(sock_path))):
            try:
                remove_it()
            except OSError:
                pass
    try:
        target.unlink()
    except OSError:
        pass
    return True


_held_locks = []


def acquire_lock(directory: str | os.PathLike | None = None):
    """Take the config dir's bridge lock for the life of this process (None: someone holds it).
    fcntl on POSIX, msvcrt on Windows; the OS releases it when the process ends, however."""
    target = path(directory).with_name("bridge.lock")
    target.parent.mkdir(parents=True, exist_ok=True)
    f = open(target, "a+")
    try:
        if os.name == "posix":
            import fcntl
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:  # pragma: no cover - Windows
            import msvcrt
            f.seek(0)
            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
    except OSError:
        f.close()
        return None
    _held_locks.append(f)
    return f
