"""``samroto models list|download|verify|path|add|remove``: the checkpoint store (docs/models.md)."""

from __future__ import annotations

import json
import sys

from samroto.cli.errors import CommandError


def register(sub):
    p = sub.add_parser("models", help="list, download, verify and register SAM 2 checkpoints",
                       description="The checkpoint store: list the known and registered models, download official "
                                   "checkpoints (resumable, SHA-256 checked), verify them, register fine-tuned ones.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    a = actions.add_parser("list", help="every known and registered model and its state")
    a.add_argument("--json", action="store_true", help="machine-readable output")

    a = actions.add_parser("download", help="download official checkpoints (resumes partial downloads)")
    a.add_argument("names", nargs="*", metavar="NAME", help="model names (default: the `model` setting)")
    a.add_argument("--all", action="store_true", help="all eight official checkpoints")
    a.add_argument("--force", action="store_true", help="download again even if present")
    a.add_argument("--no-progress", action="store_true", help="no progress bar")

    a = actions.add_parser("verify", help="recompute SHA-256 and compare with the pin / recorded hash")
    a.add_argument("names", nargs="*", metavar="NAME", help="model names (default: every one present)")
    a.add_argument("--json", action="store_true", help="machine-readable output")

    a = actions.add_parser("path", help="print a model's checkpoint path")
    a.add_argument("name", metavar="NAME")

    a = actions.add_parser("add", help="register a local or fine-tuned checkpoint with its config YAML")
    a.add_argument("name", metavar="NAME")
    a.add_argument("--checkpoint", required=True, metavar="FILE", help="the .pt file (referenced, not copied)")
    a.add_argument("--config", required=True, metavar="YAML", help="its official-format config YAML")

    a = actions.add_parser("remove", help="forget a registered local model (files are kept)")
    a.add_argument("name", metavar="NAME")
    p.set_defaults(run=run)


def _size(n) -> str:
    if n is None:
        return "?"
    return f"{n / 1e6:,.0f} MB" if n >= 1e6 else f"{n / 1e3:,.0f} KB"


def run(args, settings):
    from samroto.core import store

    try:
        return ACTIONS[args.action](args, settings, store)
    except store.StoreError as exc:
        raise CommandError(str(exc)) from None


def _list(args, settings, store):
    models = store.list_models(settings)
    if args.json:
        print(json.dumps({"cache_dir": str(settings.cache_dir),
                          "models": [m.as_dict() for m in models]}, indent=2))
        return 0
    print(f"# cache: {settings.cache_dir}")
    width = max(len(m.name) for m in models)
    print(f"{'NAME':<{width}}  {'SIZE':>8}  {'DOWNLOADED':<10}  {'VERIFIED':<8}  SOURCE")
    for m in models:
        print(f"{m.name:<{width}}  {_size(m.size):>8}  {'yes' if m.downloaded else 'no':<10}  "
              f"{m.verified:<8}  {m.source}")
    return 0


def _download(args, settings, store):
    names = list(store.KNOWN_MODELS) if args.all else (args.names or [settings["model"]])
    for name in names:
        path = store.download(name, settings, progress=not args.no_progress and sys.stderr.isatty(),
                              force=args.force)
        print(path)
    return 0


def _verify(args, settings, store):
    names = args.names or [m.name for m in store.list_models(settings) if m.downloaded]
    results = [store.verify(name, settings, progress=sys.stderr.isatty() and not args.json) for name in names]
    if args.json:
        print(json.dumps([{"name": r.name, "path": str(r.path), "status": r.status, "detail": r.detail}
                          for r in results], indent=2))
    else:
        if not results:
            print("no checkpoints present; nothing to verify")
        for r in results:
            print(f"{r.name}: {r.status.upper() if not r.ok else 'ok'} - {r.detail} ({r.path})")
        bad = [r for r in results if not r.ok]
        if bad:
            print(f"{len(bad)} of {len(results)} failed; `samroto models download NAME --force` "
                  f"fetches an official checkpoint again.", file=sys.stderr)
    return 1 if any(not r.ok for r in results) else 0


def _path(args, settings, store):
    path = store.checkpoint_path(args.name, settings)
    if not path.is_file():
        raise store.ModelNotAvailable(f"{args.name} is not downloaded (it would be at {path}); "
                                      f"run `samroto models download {args.name}`")
    print(path)
    return 0


def _add(args, settings, store):
    record = store.add(args.name, args.checkpoint, args.config, settings)
    print(f"registered {args.name}: {record['checkpoint']} with {record['config']} "
          f"(sha256 {record['sha256'][:12]}...)")
    return 0


def _remove(args, settings, store):
    store.remove(args.name, settings)
    print(f"forgot {args.name}")
    return 0


ACTIONS = {"list": _list, "download": _download, "verify": _verify, "path": _path, "add": _add,
           "remove": _remove}
