"""Entry point of the ``samroto`` console script.

Subcommands live in their own modules (``samroto.cli.<name>``) and are imported only
to build the parser, so they keep torch imports inside their ``run`` functions and
``samroto --version`` stays instant.

A command module that cannot be imported is never skipped silently: ``samroto --help``
lists it as broken (with the import error) and running it fails with that error, while the
other commands keep working.

``--set KEY=VALUE`` and ``-v`` work before or after the command's name. Exit status: 0
done, 1 runtime failure, 2 usage, 130 interrupted (Ctrl-C, or SIGTERM, which is handled
like Ctrl-C), 141 when stdout's reader went away (``| head``); I/O failures are one line,
no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import traceback
from types import ModuleType

import samroto
from samroto.cli.errors import CommandError, CommandFailed

COMMANDS = ["doctor", "config", "models", "track", "segment", "export", "demo", "serve", "install", "farm", "users"]
INTERRUPTED, BROKEN_PIPE = 130, 141

__all__ = ["COMMANDS", "CommandError", "CommandFailed", "build_parser", "import_commands", "main"]


class Terminated(KeyboardInterrupt):
    """SIGTERM (a farm's or a service manager's stop), handled exactly like Ctrl-C."""


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
                        help="override any setting for this run (see `samroto config show`); also after the command")
    parser.add_argument("-v", "--verbose", dest="verbosity", action="count", default=0,
                        help="more log output (-vv: debug); also after the command")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        if name in modules:
            modules[name].register(sub)
        else:  # still a command, so that running it says why it is broken
            p = sub.add_parser(name, help="BROKEN: see below", add_help=False)
            p.set_defaults(broken=broken[name])
    for p in _command_parsers(sub):
        _add_common(p)
    return parser


def _command_parsers(sub):
    """Every command's parser, and their actions' (``models list``...)."""
    for p in dict.fromkeys(sub.choices.values()):
        yield p
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                yield from _command_parsers(action)


def _add_common(p):
    """``--set`` and ``-v`` after the command name too. Their own destinations: a
    subcommand's defaults would otherwise overwrite what was given before its name."""
    if "--set" not in p._option_string_actions:
        p.add_argument("--set", dest="set_after", metavar="KEY=VALUE", action="append", default=argparse.SUPPRESS,
                       help="override any setting for this run (see `samroto config show`)")
    if "-v" not in p._option_string_actions:
        p.add_argument("-v", "--verbose", dest="verbosity_after", action="count", default=argparse.SUPPRESS,
                       help="more log output (-vv: debug)")


def _broken_note(broken: dict[str, str]) -> str | None:
    if not broken:
        return None
    lines = [f"  {name}: {why}" for name, why in broken.items()]
    return "broken commands (reinstall samroto; if that does not help, report this):\n" + "\n".join(lines)


def settings_from_args(args) -> "object":
    """Effective settings: file < env < ``--set`` < the command's own flags (``args.overrides``)."""
    from samroto.core.settings import load_settings, parse_assignments

    overrides = parse_assignments(list(args.set) + list(getattr(args, "set_after", [])))
    overrides.update({k: v for k, v in getattr(args, "overrides", lambda: {})().items() if v is not None})
    return load_settings(overrides)


def verbosity(args) -> int:
    verbose = getattr(args, "verbose", False)  # a command's own -v (serve) counts too
    return args.verbosity + getattr(args, "verbosity_after", 0) + (1 if verbose is True else 0)


def _setup_logging(level: int) -> None:
    """Warnings (and with -v, info; -vv, debug) from samroto's modules on stderr, one plain
    line each: ``samroto: warning: ...``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("samroto: %(levelname)s: %(message)s"))
    root = logging.getLogger("samroto")
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if level <= 0 else logging.INFO if level == 1 else logging.DEBUG)
    root.propagate = False


def _on_sigterm(signum, frame):
    raise Terminated()


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

    _setup_logging(verbosity(args))
    previous = _install_sigterm()
    try:
        settings = settings_from_args(args)
        return int(args.run(args, settings) or 0)
    except (CommandError, SettingsError) as exc:
        print(f"samroto {args.command}: {exc}", file=sys.stderr)
        return getattr(exc, "status", 2)
    except KeyboardInterrupt as exc:
        what = "terminated" if isinstance(exc, Terminated) else "interrupted"
        print(f"samroto {args.command}: {what}", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        return _broken_pipe()
    except OSError as exc:  # an I/O failure outside a command's own handling: one line, no traceback
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"samroto {args.command}: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    finally:
        _restore_sigterm(previous)
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _broken_pipe()
        except (OSError, ValueError):
            pass


def _install_sigterm():
    try:
        return signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread (embedded): leave signals alone
        return None


def _restore_sigterm(previous) -> None:
    if previous is not None:
        try:
            signal.signal(signal.SIGTERM, previous)
        except ValueError:
            pass


def _broken_pipe() -> int:
    """stdout's reader went away (``| head``): stop quietly, as Unix tools do (exit 141), and
    keep Python from complaining again when it flushes stdout at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
    return BROKEN_PIPE
