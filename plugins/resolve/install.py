"""``samroto install resolve``: put the scripts, the support code and the prompt macro in
Resolve's per-user Fusion folder.

Runs in samroto's Python, not Resolve's. Into the Fusion folder (``target``) it writes:

- ``Scripts/Utility/samroto/*.py`` — the Workspace > Scripts > samroto entries;
- ``Scripts/Utility/samroto (Lua)/*.lua`` — Track Forward/Backward/Both as Lua scripts (free
  Resolve 21.1+ lists Lua scripts only), running ``samroto/samroto.lua``;
- ``samroto/samroto_resolve/`` — the support package, with the stdlib bridge client in
  ``samroto_resolve/vendor/``; ``samroto/installed.json`` records the Python that ran the
  installer (the scripts start the bridge with it);
- ``Macros/samroto/samroto Prompts.setting`` — the prompt tools for one object.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from samroto.plugins.vendoring import copy_source, replace_dir, vendor_client

HERE = Path(__file__).resolve().parent
PACKAGE = "samroto_resolve"
SCRIPTS_DIR = Path("Scripts") / "Utility" / "samroto"
LUA_SCRIPTS_DIR = Path("Scripts") / "Utility" / "samroto (Lua)"
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
    "Preview Frame": "headless.preview(resolve)",
    "Use Candidate 1": "headless.use_candidate(resolve, 1)",
    "Use Candidate 2": "headless.use_candidate(resolve, 2)",
    "Use Candidate 3": "headless.use_candidate(resolve, 3)",
    "Review Track": "headless.review(resolve)",
    "Next Tracked Frame": "headless.step(resolve, 1)",
    "Previous Tracked Frame": "headless.step(resolve, -1)",
    "Next Lost Frame": "headless.next_lost(resolve)",
    "Show Masks": "headless.show_masks(resolve)",
    "Use Masks Under Points": "headless.use_masks(resolve)",
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


# Lua menu entries (every edition; the only scripts free Resolve 21.1+ lists) -> Lua call
LUA_ENTRIES = {
    "Track Forward": 'samroto.track(resolve, "forward", OPTS)',
    "Track Backward": 'samroto.track(resolve, "backward", OPTS)',
    "Track Both": 'samroto.track(resolve, "both", OPTS)',
    "Preview Frame": 'samroto.track(resolve, "preview", OPTS)',
    "Use Candidate 1": 'samroto.track(resolve, "candidate1", OPTS)',
    "Use Candidate 2": 'samroto.track(resolve, "candidate2", OPTS)',
    "Use Candidate 3": 'samroto.track(resolve, "candidate3", OPTS)',
    "Review Track": 'samroto.track(resolve, "review", OPTS)',
    "Next Tracked Frame": 'samroto.track(resolve, "next_tracked", OPTS)',
    "Previous Tracked Frame": 'samroto.track(resolve, "previous_tracked", OPTS)',
    "Next Lost Frame": 'samroto.track(resolve, "next_lost", OPTS)',
    "Show Masks": 'samroto.track(resolve, "show_masks", OPTS)',
    "Use Masks Under Points": 'samroto.track(resolve, "use_masks", OPTS)',
}

LUA_SCRIPT = """-- samroto: {entry} (Lua; written by `samroto install resolve`; see docs/resolve.md)
local resolve = resolve or Resolve()
local samroto = dofile({lua_file})
local OPTS = {{support = {support}, python = {python}}}
{call}
"""


def _lua_string(text: str) -> str:
    """A Lua long string literal that holds ``text`` as it is (paths with quotes, backslashes)."""
    level = 0
    while "]" + "=" * level + "]" in text:
        level += 1
    return "[" + "=" * level + "[" + text + "]" + "=" * level + "]"


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


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name + ".partial")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def install(target: Path | None, python: str) -> list[Path]:
    """Install into ``target`` (a Fusion folder; None: ``default_target()``); returns the files."""
    target = Path(target) if target is not None else default_target()
    target.mkdir(parents=True, exist_ok=True)
    support = target / SUPPORT_DIR
    staging = Path(tempfile.mkdtemp(prefix=".samroto-", dir=target))
    try:
        # support package + vendored client
        pkg = staging / "support" / PACKAGE
        copy_source(HERE / PACKAGE, pkg)
        vendor_client(pkg, "resolve")
        (staging / "support" / "installed.json").write_text(
            json.dumps({"python": str(python)}, indent=1) + "\n", encoding="utf-8")
        # menu scripts
        scripts = staging / "scripts"
        scripts.mkdir()
        for entry, call in ENTRIES.items():
            (scripts / f"{entry}.py").write_text(
                SCRIPT.format(entry=entry, support=str(support), call=call), encoding="utf-8")
        lua = staging / "lua"
        lua.mkdir()
        shutil.copy(HERE / "lua" / "samroto.lua", staging / "support" / "samroto.lua")
        for entry, call in LUA_ENTRIES.items():
            (lua / f"{entry}.lua").write_text(LUA_SCRIPT.format(
                entry=entry, lua_file=_lua_string(str(support / "samroto.lua")), support=_lua_string(str(support)),
                python=_lua_string(str(python)), call=call), encoding="utf-8")
        replace_dir(staging / "support", support)
        replace_dir(scripts, target / SCRIPTS_DIR)
        replace_dir(lua, target / LUA_SCRIPTS_DIR)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _atomic_write(target / MACRO, (HERE / "macros" / MACRO.name).read_text(encoding="utf-8"))
    files = [p for p in (support.rglob("*")) if p.is_file()]
    files += [p for p in (target / SCRIPTS_DIR).rglob("*") if p.is_file()]
    files += [p for p in (target / LUA_SCRIPTS_DIR).rglob("*") if p.is_file()]
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
