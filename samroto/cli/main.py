"""Entry point of the ``samroto`` console script.

Subcommands live in their own modules (``samroto.cli.<name>``) and are imported only
to build the parser, so they keep torch imports inside their ``run`` functions and
``samroto --version`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

import samroto

COMMANDS = ["doctor", "config", "models", "track", "demo", "serve", "install"]


class CommandError(Exception):
    """A user-facing failure: printed as one clear message, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="samroto", description="SAM 2 mattes for Nuke, DaVinci Resolve and Blender.")
    parser.add_argument("--version", action="version", version=f"samroto {samroto.__version__}")
    parser.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                        help="override any setting for this run (see `samroto config show`)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"samroto.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"samroto.cli.{name}":
                continue  # command not built yet
            raise
        module.register(sub)
    return parser


def settings_from_args(args) -> "object":
    """Effective settings: file < env < ``--set`` < the command's own flags (``args.overrides``)."""
    from samroto.core.settings import load_settings, parse_assignments

    overrides = parse_assignments(args.set)
    overrides.update({k: v for k, v in getattr(args, "overrides", lambda: {})().items() if v is not None})
    return load_settings(overrides)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
