"""``samroto install nuke``: put the Nuke plugin (with the bridge client) where Nuke finds it.

Runs in samroto's Python, not Nuke's. Layout written into the target (default ``~/.nuke``)::

    samroto/                  on Nuke's plugin path (so also on Nuke's sys.path)
        init.py, menu.py      Nuke runs these; menu.py adds Nodes > SAM2 > SAM2Matte
        samroto_nuke/         the plugin package
            vendor/           the stdlib-only bridge client and host kit
            _installed.py     the Python that ran the installer (starts the bridge)
    init.py                   gets one idempotent line: nuke.pluginAddPath(".../samroto")
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from samroto.plugins.vendoring import copy_source, record_python, replace_dir, vendor_client

FOLDER = "samroto"
PACKAGE = "samroto_nuke"
HERE = Path(__file__).resolve().parent
MARK = "# samroto (added by `samroto install nuke`)"


def home() -> Path:
    """The home folder as Nuke sees it: on Windows Nuke uses %HOME% when it is set (else the
    user's profile folder), where Python's Path.home() reads only %USERPROFILE%."""
    if sys.platform == "win32" and os.environ.get("HOME"):
        return Path(os.environ["HOME"])
    return Path.home()


def default_target() -> Path:
    """Nuke's per-user folder, ~/.nuke (the same on Linux, macOS and Windows, with
    Windows' ~ being %HOME% when set)."""
    return home() / ".nuke"


def _stage(folder: Path, python: str) -> Path:
    plugin = folder / FOLDER
    shutil.copytree(HERE / "startup", plugin, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    package = plugin / PACKAGE
    copy_source(HERE / PACKAGE, package)
    vendor_client(package, "nuke")
    record_python(package, "nuke", python)
    return plugin


def _init_line(plugin: Path) -> str:
    return "nuke.pluginAddPath(%r)" % plugin.as_posix()


def _add_init_lines(target: Path, plugin: Path) -> Path:
    """Append the pluginAddPath line to target/init.py unless it is there (atomic write)."""
    init = target / "init.py"
    text = init.read_text(encoding="utf-8") if init.exists() else ""
    line = _init_line(plugin)
    if line in text.splitlines():
        return init
    if text and not text.endswith("\n"):
        text += "\n"
    text += "%s\nimport nuke\n%s\n" % (MARK, line)
    tmp = init.with_name(".init.py.samroto-tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(init)
    return init


def install(target: Path | None, python: str) -> list[Path]:
    """Install into ``target`` (a .nuke folder; None: ``default_target()``); returns the
    files written. An earlier install is replaced as a whole (staged, then swapped)."""
    target = Path(target) if target is not None else default_target()
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".samroto-", dir=target))
    final = target / FOLDER
    try:
        replace_dir(_stage(staging, python), final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    init = _add_init_lines(target, final)
    return sorted(p for p in final.rglob("*") if p.is_file()) + [init]


def installed() -> Path | None:
    """The installed plugin folder in ~/.nuke when Nuke will load it, else None."""
    target = default_target()
    plugin = target / FOLDER
    init = target / "init.py"
    if (plugin / PACKAGE / "__init__.py").is_file() and init.is_file() \
            and _init_line(plugin) in init.read_text(encoding="utf-8").splitlines():
        return plugin
    return None
