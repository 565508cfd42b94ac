"""``samroto install <host>``: put a host plugin (and the bridge client) where the host finds it.

Each host's installer lives beside its plugin, in ``plugins/<host>/install.py``, and
provides ``default_target() -> Path``, ``install(target: Path | None, python: str) -> list[Path]``
(the files written) and ``installed() -> Path | None`` (used by ``samroto doctor``).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from samroto.cli.errors import CommandError

HOSTS = ["nuke", "resolve", "blender"]


def installer(host: str):
    return importlib.import_module(f"samroto.plugins.{host}.install")


def register(sub):
    p = sub.add_parser("install", help="install a host plugin (nuke, resolve, blender)",
                       description="Install a host plugin and the bridge client where that host finds them "
                                   "(its per-user folder, or --target), set up to start the bridge with --python.")
    p.add_argument("host", choices=HOSTS)
    p.add_argument("--target", type=Path, help="install here instead of the host's per-user folder")
    p.add_argument("--python", default=sys.executable,
                   help="the Python that has samroto installed (the plugin starts the bridge with it)")
    p.set_defaults(run=run)


def run(args, settings):

    try:
        module = installer(args.host)
    except ModuleNotFoundError as exc:
        raise CommandError(f"the {args.host} plugin is not part of this build ({exc})") from None
    target = args.target or module.default_target()
    written = module.install(target, python=args.python)
    for path in written:
        print(path)
    # an installer that serves several host versions (Blender) names every folder it filled
    targets = module.default_targets() if args.target is None and hasattr(module, "default_targets") else [target]
    print(f"samroto: {args.host} plugin installed in {', '.join(str(t) for t in targets)}")
    return 0
