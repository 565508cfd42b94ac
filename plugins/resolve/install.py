"""``samroto install resolve``: put the scripts, the support code and the prompt macro in
Resolve's per-user Fusion folder.

Runs in samroto's Python, not Resolve's. Into the Fusion folder (``target``) it writes:

- ``Scripts/Utility/samroto/*.py`` — the Workspace > Scripts > samroto entries;
- ``samroto/samroto_resolve/`` — the support package, with the stdlib bridge client in
  ``samroto_resolve/vendor/``; ``samroto/installed.json`` records the Python that ran the
  installer (the scripts start the bridge with it);
- ``Macros/samroto/samroto Prompts.setting`` — the prompt tools for one object.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = "samroto_resolve"
CLIENT_FILES = ("client.py", "protocol.py")
SCRIPTS_DIR = Path("Scripts") / "Utility" / "samroto"
SUPPORT_DIR = Path("samroto")
MACRO = Path("Macros") / "samroto" / "samroto Prompts.setting"

# menu entry -> the call its script makes (globals resolve/fusion/bmd come from Resolve)
ENTRIES = {
    "samroto": "ui.show(resolve, fusion, bmd)",
    "Add Prompts": "headless.add_prompts(resolve)",
    "Track Forward": "headless.track(resolve, 'forward')",
    "Track Backward": "headless.track(resolve, 'backward')",
    "Track Both": "headless.track(resolve, 'both')",
    "Cancel Tracking": "headless.request_cancel()",
}

SCRIPT = '''"""samroto: {entry} (written by `samroto install resolve`; see docs/resolve.md)."""
import sys

SUPPORT = {support!r}
if SUPPORT not in sys.path:
    sys.path.insert(0, SUPPORT)
try:
    resolve
except NameError:  # run from outside Resolve (Studio's external scripting)
    import DaVinciResolveScript as _dvr
    resolve = _dvr.scriptapp("Resolve")
    fusion, bmd = resolve.Fusion(), None
try:
    bmd
except NameError:
    bmd = None
try:
    fusion
except NameError:
    fusion = resolve.Fusion()

from samroto_resolve import headless, ui  # noqa: E402

try:
    {call}
except Exception as exc:  # Resolve's console shows this line; the exception says what to do
    print("samroto: %s" % exc)
'''


def _fusion_root() -> Path:
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "Blackmagic Design" / "DaVinci Resolve" / "Fusion"
    if os.name == "nt":
        appdata = os.environ.get("APPDATA") or str(Path.home() / "AppData" / "Roaming")
        return Path(appdata) / "Blackmagic Design" / "DaVinci Resolve" / "Support" / "Fusion"
    return Path.home() / ".local" / "share" / "DaVinciResolve" / "Fusion"


def default_target() -> Path:
    """Resolve's per-user Fusion folder for this system."""
    return _fusion_root()


def _bridge_dir() -> Path:
    return Path(importlib.import_module("samroto.bridge").__file__).resolve().parent


def _relative_imports(text: str) -> str:
    text = re.sub(r"^from samroto\.bridge import ", "from . import ", text, flags=re.M)
    return re.sub(r"^from samroto\.bridge\.(\w+) import ", r"from .\1 import ", text, flags=re.M)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name + ".partial")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _replace_dir(staged: Path, final: Path) -> None:
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


def install(target: Path | None, python: str) -> list[Path]:
    """Install into ``target`` (a Fusion folder; None: ``default_target()``); returns the files."""
    target = Path(target) if target is not None else default_target()
    target.mkdir(parents=True, exist_ok=True)
    support = target / SUPPORT_DIR
    staging = Path(tempfile.mkdtemp(prefix=".samroto-", dir=target))
    try:
        # support package + vendored client
        pkg = staging / "support" / PACKAGE
        shutil.copytree(HERE / PACKAGE, pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "vendor"))
        vendor = pkg / "vendor"
        vendor.mkdir()
        (vendor / "__init__.py").write_text('"""samroto bridge client, copied by `samroto install resolve`."""\n')
        for name in CLIENT_FILES:
            src = _bridge_dir() / name
            if not src.is_file():
                raise FileNotFoundError(f"the bridge client {src} is missing from this samroto installation; "
                                        "reinstall samroto")
            (vendor / name).write_text(_relative_imports(src.read_text(encoding="utf-8")), encoding="utf-8")
        (staging / "support" / "installed.json").write_text(
            json.dumps({"python": str(python)}, indent=1) + "\n", encoding="utf-8")
        # menu scripts
        scripts = staging / "scripts"
        scripts.mkdir()
        for entry, call in ENTRIES.items():
            (scripts / f"{entry}.py").write_text(
                SCRIPT.format(entry=entry, support=str(support), call=call), encoding="utf-8")
        _replace_dir(staging / "support", support)
        _replace_dir(scripts, target / SCRIPTS_DIR)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _atomic_write(target / MACRO, (HERE / "macros" / MACRO.name).read_text(encoding="utf-8"))
    files = [p for p in (support.rglob("*")) if p.is_file()]
    files += [p for p in (target / SCRIPTS_DIR).rglob("*") if p.is_file()]
    files.append(target / MACRO)
    return sorted(files)


def installed() -> Path | None:
    """Where the scripts are installed for this user, or None."""
    folder = default_target() / SCRIPTS_DIR
    return folder if (folder / "samroto.py").is_file() else None


if __name__ == "__main__":  # python -m samroto.plugins.resolve.install [--target FOLDER]
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=Path, help="Fusion folder (default: Resolve's per-user one)")
    args = parser.parse_args()
    for written in install(args.target, sys.executable):
        print(written)
