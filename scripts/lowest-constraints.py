#!/usr/bin/env python3
"""Print pins of the lowest versions pyproject.toml allows (``name==lower-bound``), one a line.

``scripts/test-lowest.sh`` installs them (``pip install -c``) and runs the fast tests, so the
lower bounds in pyproject.toml are tested, not guessed. Reads the runtime dependencies and
the ``test`` extra; every one must have a ``>=`` bound."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def requirements() -> list[str]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return list(project["dependencies"]) + list(project["optional-dependencies"]["test"])


def lowest(req: str) -> str:
    m = re.match(r"^\s*([A-Za-z0-9._-]+)\s*(\[[^\]]*\])?\s*(.*)$", req)
    name, spec = m.group(1), m.group(3)
    bound = re.search(r">=\s*([0-9][0-9A-Za-z.]*)", spec)
    if not bound:
        sys.exit(f"lowest-constraints: {req!r} in pyproject.toml has no >= lower bound")
    return f"{name}=={bound.group(1)}"


if __name__ == "__main__":
    print("\n".join(lowest(r) for r in requirements()))
