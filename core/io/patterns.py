"""Frame-number patterns: ``plate.%04d.exr``, ``plate.####.exr``, ``plate.@@@@.dpx``.

Each ``#`` or ``@`` is one digit of padding (Nuke's and Blender's convention); ``%0Nd``
pads to N digits and ``%d`` not at all. Only the file name (not the directory) may hold
the frame token; ``{name}`` stands for an object's name in matte patterns.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import SamrotoIOError

_TOKEN = re.compile(r"%(0?)(\d*)d|#+|@+")
_TRAILING_NUMBER = re.compile(r"^(.*?)(-?\d+)(\.[A-Za-z0-9]+)$")


@dataclass(frozen=True)
class SequencePattern:
    """A file-name pattern with one frame-number token, split into its parts."""

    directory: Path
    prefix: str
    padding: int  # minimum number of digits (1: unpadded)
    suffix: str

    def path(self, frame_number: int) -> Path:
        return self.directory / f"{self.prefix}{_pad(frame_number, self.padding)}{self.suffix}"

    @property
    def text(self) -> str:
        """The pattern in printf form, for messages and logs."""
        token = f"%0{self.padding}d" if self.padding > 1 else "%d"
        return str(self.directory / f"{self.prefix}{token}{self.suffix}")

    def scan(self) -> list[int]:
        """Frame numbers of the files on disk that match this pattern, sorted."""
        regex = re.compile(re.escape(self.prefix) + r"(-?\d+)" + re.escape(self.suffix) + "$")
        found = []
        try:
            names = os.listdir(self.directory)
        except OSError:
            return []
        for name in names:
            m = regex.match(name)
            if m and _matches_padding(m.group(1), self.padding):
                found.append(int(m.group(1)))
        return sorted(set(found))


def _pad(frame_number: int, padding: int) -> str:
    return "%0*d" % (padding, frame_number)


def _matches_padding(digits: str, padding: int) -> bool:
    """``0042`` is frame 42 of a 4-padded sequence; ``10000`` too (it overflows); ``042`` is not."""
    body = digits.lstrip("-")
    if len(body) == padding:
        return True
    return len(body) > padding and not body.startswith("0")


def has_frame_token(text: str) -> bool:
    return _TOKEN.search(os.path.basename(str(text))) is not None


def parse_pattern(text: str | os.PathLike) -> SequencePattern | None:
    """Split a pattern with a frame token; None when the file name holds no token."""
    text = str(text)
    directory, name = os.path.split(text)
    if _TOKEN.search(directory):
        raise SamrotoIOError(
            f"frame token in the directory part of {text!r}: put %04d / #### / @@@@ in the file name only"
        )
    matches = list(_TOKEN.finditer(name))
    if not matches:
        return None
    if len(matches) > 1:
        raise SamrotoIOError(
            f"more than one frame token in {name!r}: use exactly one (%04d, #### or @@@@)"
        )
    m = matches[0]
    if m.group(0).startswith("%"):
        padding = int(m.group(2)) if m.group(2) else 1
    else:
        padding = len(m.group(0))
    return SequencePattern(Path(directory or "."), name[: m.start()], max(padding, 1), name[m.end():])


def pattern_from_frame_file(path: str | os.PathLike) -> tuple[SequencePattern, int] | None:
    """``plate.1001.exr`` -> (pattern ``plate.%04d.exr``, 1001); None if the name has no trailing number."""
    directory, name = os.path.split(str(path))
    m = _TRAILING_NUMBER.match(name)
    if not m:
        return None
    prefix, digits, suffix = m.groups()
    if digits.startswith("-") and not prefix.endswith("."):
        prefix, digits = prefix + "-", digits[1:]  # "plate-0001" is frame 1, "plate.-001" frame -1
    body = digits.lstrip("-")
    # Unpadded numbers ("plate.7.png") are ambiguous; padding = digits seen, at least 1.
    padding = len(body) if body.startswith("0") or len(body) > 1 else 1
    return SequencePattern(Path(directory or "."), prefix, padding, suffix), int(digits)


def format_frame_path(pattern: str | os.PathLike, frame_number: int, name: str | None = None) -> Path:
    """The file path of one frame: ``format_frame_path("m.####.exr", 1001)`` -> ``m.1001.exr``.

    ``{name}`` in the pattern is replaced by ``name`` (required then). A pattern without
    a frame token is returned as is (a movie path).
    """
    text = str(pattern)
    if "{name}" in text:
        if name is None:
            raise SamrotoIOError(f"pattern {text!r} holds {{name}} but no object name was given")
        text = text.replace("{name}", name)
    parsed = parse_pattern(text)
    if parsed is None:
        return Path(text)
    return parsed.path(int(frame_number))


def insert_name(pattern: str, name: str) -> str:
    """Put an object name into a pattern without ``{name}``: ``m.####.png`` -> ``m_hero.####.png``."""
    directory, base = os.path.split(str(pattern))
    m = _TOKEN.search(base)
    if m:
        head, tail = base[: m.start()], base[m.start():]
    else:
        stem, ext = os.path.splitext(base)
        head, tail = stem, ext
    stripped = head.rstrip("._-")
    sep = head[len(stripped):]
    new_head = f"{stripped}_{name}{sep}" if stripped else f"{name}{sep or '.'}"
    return os.path.join(directory, new_head + tail)


def compress_ranges(numbers: list[int]) -> str:
    """[1,2,3,7,9,10] -> '1-3, 7, 9-10' (for messages that list missing frames)."""
    parts: list[str] = []
    numbers = sorted(numbers)
    i = 0
    while i < len(numbers):
        j = i
        while j + 1 < len(numbers) and numbers[j + 1] == numbers[j] + 1:
            j += 1
        parts.append(str(numbers[i]) if i == j else f"{numbers[i]}-{numbers[j]}")
        i = j + 1
    return ", ".join(parts)
