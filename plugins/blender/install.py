"""``samroto install blender``: put the add-on (with the bridge client) where Blender finds it.

Runs in samroto's Python, not Blender's. The add-on folder ``samroto_blender`` goes into
Blender's per-user add-ons folder (the newest Blender version found), with:

- ``vendor/``: the stdlib-only bridge client and host kit (``client.py``, ``protocol.py``,
  ``hostkit.py``), so Blender's Python needs nothing else;
- ``_installed.py``: the Python that ran the installer, the add-on's default for starting
  the bridge.

``build_zip(folder)`` makes the same thing as a zip for Edit > Preferences > Add-ons >
Install from Disk (legacy add-on, or extension: the folder carries blender_manifest.toml).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

from samroto.plugins.vendoring import copy_source, record_python, replace_dir, vendor_client

ADDON = "samroto_blender"
HERE = Path(__file__).resolve().parent
SOURCE = HERE / ADDON
DEFAULT_VERSION = "4.5"


def _config_root() -> Path:
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "Blender"
    if os.name == "nt":
        return Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "Blender Foundation" / "Blender"
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "blender"


def _versions(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    found = [p.name for p in root.iterdir() if p.is_dir() and re.fullmatch(r"\d+\.\d+", p.name)]
    return sorted(found, key=lambda v: tuple(int(x) for x in v.split(".")))


def default_target() -> Path:
    """Blender's per-user add-ons folder: $BLENDER_USER_SCRIPTS/addons, else the newest
    Blender version's ``scripts/addons`` in the user config dir (4.5 when none exists yet)."""
    scripts = os.environ.get("BLENDER_USER_SCRIPTS")
    if scripts:
        return Path(scripts) / "addons"
    versions = [v for v in _versions(_config_root()) if tuple(int(x) for x in v.split(".")) >= (4, 2)]
    return _config_root() / (versions[-1] if versions else DEFAULT_VERSION) / "scripts" / "addons"


def _stage(folder: Path, python: str) -> Path:
    """Assemble the add-on in ``folder/samroto_blender`` (source + vendor + _installed)."""
    addon = folder / ADDON
    copy_source(SOURCE, addon)
    vendor_client(addon, "blender")
    record_python(addon, "blender", python)
    return addon


def install(target: Path | None, python: str) -> list[Path]:
    """Install into ``target`` (an add-ons folder; None: ``default_target()``).

    Replaces an earlier install as a whole (staged next to it, then swapped in), so a
    failed copy never leaves half an add-on. Returns the files written.
    """
    target = Path(target) if target is not None else default_target()
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".samroto-", dir=target))
    try:
        final = target / ADDON
        replace_dir(_stage(staging, python), final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return sorted(p for p in final.rglob("*") if p.is_file())


def installed() -> Path | None:
    """Where the add-on is installed for this user (any Blender version), or None."""
    candidates = [default_target()] + [
        _config_root() / v / "scripts" / "addons" for v in reversed(_versions(_config_root()))
    ]
    for folder in candidates:
        if (folder / ADDON / "__init__.py").is_file():
            return folder / ADDON
    return None


def build_zip(folder: Path, python: str = "") -> Path:
    """``folder/samroto_blender.zip`` for Blender's Install from Disk; returns its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{ADDON}.zip"
    with tempfile.TemporaryDirectory() as tmp:
        addon = _stage(Path(tmp), python or sys.executable)
        partial = out.with_suffix(".zip.partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(addon.rglob("*")):
                if path.is_file():
                    zf.write(path, path.relative_to(addon.parent).as_posix())
        os.replace(partial, out)
    return out


if __name__ == "__main__":  # python -m samroto.plugins.blender.install [--zip FOLDER]
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zip", type=Path, help="write samroto_blender.zip into this folder")
    parser.add_argument("--target", type=Path, help="add-ons folder (default: Blender's per-user one)")
    args = parser.parse_args()
    if args.zip:
        print(build_zip(args.zip))
    else:
        for written in install(args.target, sys.executable):
            print(written)
