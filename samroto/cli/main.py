"""Entry point of the ``samroto`` console script.

Subcommands live in their own modules (``samroto.cli.<name>``) and are imported only
to build the parser, so they keep torch imports inside their ``run`` functions and
``samroto --version`` stays instant.

A command module that cannot be imported is never skipped silently: ``samroto --help``
lists it as broken (with the import error) and running it fails with that error, while the
other commands keep working.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from types import ModuleType

import samroto
from samroto.cli.errors import CommandError

COMMANDS = ["doctor", "config", "models", "track", "demo", "serve", "install", "farm"]

__all__ = ["COMMANDS", "CommandError", "build_parser", "import_commands", "main"]


def import_commands() -> tuple[dict[str, ModuleType], dict[str, str]]:
    """The command modules by name, and for each one that does not import, why."""
    modules, broken = {}, {}
    for name in COMMANDS:
        module = f"samroto.cli.{name}"
        try:
            modules[name] = importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - reported by name: a broken install or a bug
            broken[name] = f"cannot import {module}: {type(exc).__name__}: {exc}{_where(exc)}"
    return modules, broken


def _where(exc: BaseException) -> str:
    """Where an import failed: its innermost frame outside the import machinery."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<frozen")]
    return f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""


def build_parser() -> argparse.ArgumentParser:
    modules, broken = import_commands()
    parser = argparse.ArgumentParser(
        prog="samroto", description="SAM 2 mattes for Nuke, DaVinci Resolve and Blender.",
        epilog=_broken_note(broken), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"samroto {samroto.__version__}")
    parser.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                        help="override any setting for this run (see `samroto config show`)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        if name in modules:
            modules[name].register(sub)
        else:  # still a command, so that running it says why it is broken
            p = sub.add_parser(name, help="BROKEN: see below", add_help=False)
            p.set_defaults(broken=broken[name])
    return parser


def _broken_note(broken: dict[str, str]) -> str | None:
    if not broken:
        return None
    lines = [f"  {name}: {why}" for name, why in broken.items()]
    return "broken commands (reinstall samroto; if that does not help, report this):\n" + "\n".join(lines)


def settings_from_args(args) -> "object":
    """Effective settings: file < env < ``--set`` < the command's own flags (``args.overrides``)."""
    from samroto.core.settings import load_settings, parse_assignments

    overrides = parse_assignments(args.set)
    overrides.update({k: v for k, v in getattr(args, "overrides", lambda: {})().items() if v is not None})
    return load_settings(overrides)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if getattr(args, "broken", None):  # before the arguments: its own parser is what is missing
        print(f"samroto {args.command}: this command is broken: {args.broken}\n"
              "  Reinstall samroto; if that does not help, report this message.", file=sys.stderr)
        return 2
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if not args.command:
        parser.print_help()
        return 0
    from samroto.core.settings import SettingsError

    try:
        settings = settings_from_args(args)
        return int(args.run(args, settings) or 0)
    except (CommandError, SettingsError) as exc:
        print(f"samroto {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"samroto {args.command}: interrupted", file=sys.stderr)
        return 130
