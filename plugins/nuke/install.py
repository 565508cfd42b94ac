"""``samroto install nuke``: put the Nuke plugin (with the bridge client) where Nuke finds it.

Runs in samroto's Python, not Nuke's. Layout written into the target (default ``~/.nuke``)::

    samroto/                  on Nuke's plugin path (so also on Nuke's sys.path)
        init.py, menu.py      Nuke runs these; menu.py adds Nodes > SAM2 > SAM2Matte
        samroto_nuke/         the plugin package
            vendor/           the stdlib-only bridge client (client.py, protocol.py)
            _installed.py     the Python that ran the installer (starts the bridge)
    init.py                   gets one idempotent line: nuke.pluginAddPath(".../samroto")
"""

from __future__ import annotations

import importlib
import re
import shutil
import tempfile
from pathlib import Path

FOLDER = "samroto"
PACKAGE = "samroto_nuke"
HERE = Path(__file__).resolve().parent
CLIENT_FILES = ("client.py", "protocol.py")
MARK = "# samroto (added by `samroto install nuke`)"


def default_target() -> Path:
    """Nuke's per-user folder, ~/.nuke (the same on Linux, macOS and Windows)."""
    return Path.home() / ".nuke"


def _bridge_dir() -> Path:
    return Path(importlib.import_module("samroto.bridge").__file__).resolve().parent


def _relative_imports(text: str) -> str:
    """The client may import its sibling as ``samroto.bridge.protocol``: make it relative."""
    text = re.sub(r"^(\s*)from samroto\.bridge import ", r"\1from . import ", text, flags=re.M)
    return re.sub(r"^(\s*)from samroto\.bridge\.(\w+) import ", r"\1from .\2 import ", text, flags=re.M)


def _stage(folder: Path, python: str) -> Path:
    plugin = folder / FOLDER
    shutil.copytree(HERE / "startup", plugin, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    package = plugin / PACKAGE
    shutil.copytree(HERE / PACKAGE, package,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "vendor", "_installed.py"))
    vendor = package / "vendor"
    vendor.mkdir()
    (vendor / "__init__.py").write_text('"""samroto bridge client, copied here by `samroto install nuke`."""\n')
    bridge = _bridge_dir()
    for name in CLIENT_FILES:
        src = bridge / name
        if not src.is_file():
            raise FileNotFoundError(f"the bridge client {src} is missing from this samroto installation; "
                                    "reinstall samroto")
        (vendor / name).write_text(_relative_imports(src.read_text(encoding="utf-8")), encoding="utf-8")
    (package / "_installed.py").write_text(
        '"""Written by `samroto install nuke`."""\nPYTHON = %r\n' % str(python), encoding="utf-8")
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
        staged = _stage(staging, python)
        if final.exists():
            final.rename(staging / "old")
        staged.rename(final)
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
