"""``samroto install blender``: put the add-on (with the bridge client) where Blender finds it.

Runs in samroto's Python, not Blender's. The add-on folder ``samroto_blender`` goes into
Blender's per-user add-ons folder of every Blender version found (4.2 or newer), with:

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
MIN_VERSION = (4, 2)
# No Blender found at all (none on PATH or where installers put it, no version folder):
# the newest release samroto is tested with.
FALLBACK_VERSION = "5.3"
VERSION_DIR = re.compile(r"\d+\.\d+")


def _config_root() -> Path:
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "Blender"
    if os.name == "nt":
        return Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "Blender Foundation" / "Blender"
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "blender"


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split("."))


def _versions(root: Path) -> list[str]:
    """The ``X.Y`` folders in ``root``, oldest first."""
    if not root.is_dir():
        return []
    found = [p.name for p in root.iterdir() if p.is_dir() and VERSION_DIR.fullmatch(p.name)]
    return sorted(found, key=_key)


def _blender_programs() -> list[Path]:
    """Blender installations this user may run: ``blender`` on PATH and the places the
    official installers and packages put it (for a user who has not started it yet)."""
    found = []
    on_path = shutil.which("blender")
    if on_path:
        found.append(Path(os.path.realpath(on_path)).parent)
    if sys.platform == "darwin":
        for apps in (Path("/Applications"), Path.home() / "Applications"):
            found += [app / "Contents" / "Resources" for app in sorted(apps.glob("Blender*.app"))]
    elif os.name == "nt":
        for var in ("ProgramFiles", "ProgramW6432"):
            if os.environ.get(var):
                found += sorted((Path(os.environ[var]) / "Blender Foundation").glob("Blender*"))
    else:
        found += [Path("/usr/share/blender"), Path("/snap/blender/current")] + sorted(Path("/opt").glob("blender*"))
    return found


def installed_blender_versions() -> list[str]:
    """``X.Y`` of the Blender installations found (their data folder is named by version:
    ``blender-5.0.1-linux-x64/5.0``, ``Blender.app/Contents/Resources/5.0``,
    ``Blender Foundation/Blender 5.0/5.0``), oldest first."""
    versions = set()
    for folder in _blender_programs():
        try:
            versions.update(_versions(folder))
        except OSError:
            continue
    return sorted(versions, key=_key)


def default_targets() -> list[Path]:
    """Every per-user add-ons folder the add-on goes into: $BLENDER_USER_SCRIPTS/addons
    alone when set; else ``scripts/addons`` of every Blender version folder (4.2 or newer)
    in the user config dir, plus those of the Blender installations found that have no
    folder yet (a fresh user of Blender 5.x gets the 5.x folder, which Blender's "Load
    Previous Settings" still fills: it copies over existing folders)."""
    scripts = os.environ.get("BLENDER_USER_SCRIPTS")
    if scripts:
        return [Path(scripts) / "addons"]
    root = _config_root()
    versions = set(_versions(root)) | set(installed_blender_versions())
    versions = sorted((v for v in versions if _key(v) >= MIN_VERSION), key=_key)
    if not versions:
        versions = [FALLBACK_VERSION]
    return [root / v / "scripts" / "addons" for v in versions]


def default_target() -> Path:
    """The newest of ``default_targets()`` (what `samroto install blender` names)."""
    return default_targets()[-1]


def _stage(folder: Path, python: str) -> Path:
    """Assemble the add-on in ``folder/samroto_blender`` (source + vendor, and _installed
    when a Python is given)."""
    addon = folder / ADDON
    copy_source(SOURCE, addon)
    vendor_client(addon, "blender")
    if python:
        record_python(addon, "blender", python)
    return addon


def install(target: Path | None, python: str) -> list[Path]:
    """Install into ``target`` (an add-ons folder); None or ``default_target()`` (what
    `samroto install blender` passes without --target): into every one of
    ``default_targets()``, so each installed Blender version sees the add-on.

    Replaces an earlier install as a whole (staged next to it, then swapped in), so a
    failed copy never leaves half an add-on. Returns the files written.
    """
    targets = default_targets()
    if target is not None and Path(target) != targets[-1]:
        targets = [Path(target)]
    written = []
    for folder in targets:
        written += _install_one(folder, python)
    return written


def _install_one(target: Path, python: str) -> list[Path]:
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".samroto-", dir=target))
    try:
        final = target / ADDON
        replace_dir(_stage(staging, python), final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return sorted(p for p in final.rglob("*") if p.is_file())


def installed() -> Path | None:
    """Where the add-on is installed for this user (the newest Blender version that has it), or None."""
    candidates = list(reversed(default_targets())) + [
        _config_root() / v / "scripts" / "addons" for v in reversed(_versions(_config_root()))
    ]
    for folder in candidates:
        if (folder / ADDON / "__init__.py").is_file():
            return folder / ADDON
    return None


def build_zip(folder: Path, python: str = "") -> Path:
    """``folder/samroto_blender.zip`` for Blender's Install from Disk (an extension: it
    passes ``blender --command extension validate``); returns its path. The zip is for
    other machines, so it records no Python unless ``python`` names one (a studio's shared
    samroto install); the add-on then uses its preference or $SAMROTO_PYTHON."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{ADDON}.zip"
    with tempfile.TemporaryDirectory() as tmp:
        addon = _stage(Path(tmp), python)
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
    parser.add_argument("--target", type=Path, help="add-ons folder (default: Blender's per-user ones)")
    parser.add_argument("--python", default="", help="with --zip: the samroto Python to record in the zip "
                        "(default: none; the add-on's preference or SAMROTO_PYTHON says it)")
    args = parser.parse_args()
    if args.zip:
        print(build_zip(args.zip, args.python))
    else:
        for written in install(args.target, sys.executable):
            print(written)
