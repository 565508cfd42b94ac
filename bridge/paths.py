"""Which files a request may make the bridge read or write.

``read_roots`` / ``write_roots`` (ServerConfig; settings ``bridge.read_roots`` and
``bridge.write_roots``): None lets requests use any file the bridge's user may (the default
on the private local socket); a list confines frames and mask prompts to files inside those
folders, and mattes to those folders. Symbolic links are followed before the check, so a
link inside a root that points outside is refused. A refused path gets the same
``bad_request`` whether or not it exists, so the refusal tells nothing about the file.

Names longer than the file system allows are refused up front (``bad_request``) whatever
the roots.
"""

from __future__ import annotations

import os
from typing import Iterable, Sequence

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
