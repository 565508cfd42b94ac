"""What every host installer does the same way (runs in samroto's Python, never in a host).

Each plugin carries its own copy of the stdlib-only bridge client and host kit (``vendor/``),
because a host's Python has no samroto installed; and each install replaces the previous one
whole.
"""

from __future__ import annotations

import importlib
import re
import shutil
from pathlib import Path

CLIENT_FILES = ("client.py", "protocol.py", "hostkit.py")


def vendor_client(package: Path, host: str) -> Path:
    """Copy the bridge client and the host kit into ``package/vendor`` with their imports
    made relative."""
    bridge = Path(importlib.import_module("samroto.bridge").__file__).resolve().parent
    vendor = Path(package) / "vendor"
    vendor.mkdir()
    (vendor / "__init__.py").write_text(
        f'"""samroto bridge client and host kit, copied here by `samroto install {host}`."""\n')
    for name in CLIENT_FILES:
        src = bridge / name
        if not src.is_file():
            raise FileNotFoundError(f"the bridge client {src} is missing from this samroto installation; "
                                    "reinstall samroto")
        (vendor / name).write_text(relative_imports(src.read_text(encoding="utf-8")), encoding="utf-8")
    return vendor


def record_python(package: Path, host: str, python: str) -> Path:
    """``package/_installed.py``: the Python that ran the installer (the plugin starts the
    bridge with it; read by ``hostkit.installed_python``)."""
    path = Path(package) / "_installed.py"
    path.write_text(f'"""Written by `samroto install {host}`."""\nPYTHON = {str(python)!r}\n', encoding="utf-8")
    return path


def relative_imports(text: str) -> str:
    """The client imports its sibling as ``samroto.bridge.protocol``: make that relative."""
    text = re.sub(r"^(\s*)from samroto\.bridge import ", r"\1from . import ", text, flags=re.M)
    return re.sub(r"^(\s*)from samroto\.bridge\.(\w+) import ", r"\1from .\2 import ", text, flags=re.M)


def copy_source(src: Path, dst: Path) -> None:
    """A plugin's own files, without caches or what an earlier install generated."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "vendor", "_installed.py"))


def replace_dir(staged: Path, final: Path) -> None:
    """Swap a staged folder in as a whole, so a failed copy never leaves half a plugin."""
    final.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if final.exists():
        old = final.with_name("." + final.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    shutil.move(str(staged), str(final))
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
