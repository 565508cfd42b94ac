"""``samroto config show|path``: the effective settings and where each value came from."""

from __future__ import annotations


def register(sub):
    p = sub.add_parser("config", help="show the effective settings",
                       description="Show the effective settings (defaults < settings file < SAMROTO_* environment "
                                   "< --set KEY=VALUE) and where each value came from, or the settings file's path.")
    p.add_argument("action", choices=["show", "path"], nargs="?", default="show")
    p.add_argument("--json", action="store_true",
                   help="machine-readable: {file, exists, settings: {key: {value, source, env}}}")
    p.set_defaults(run=run)


def run(args, settings):
    import json

    import yaml

    from samroto.core.settings import KEYS, env_name

    if args.action == "path":
        if args.json:
            print(json.dumps({"file": str(settings.path), "exists": settings.path.exists()}))
        else:
            print(settings.path)
        return 0
    if args.json:
        print(json.dumps({
            "file": str(settings.path), "exists": settings.path.exists(),
            "settings": {k: {"value": v, "source": settings.sources[k], "env": env_name(k)}
                         for k, v in settings.items()},
        }, indent=1, default=str))
        return 0
    print(f"# settings file: {settings.path}{'' if settings.path.exists() else ' (not present; defaults apply)'}")
    width = max(len(k) for k in KEYS)
    for key, value in settings.items():
        shown = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
        print(f"{key:<{width}}  {shown:<40}  # {settings.sources[key]}; env {env_name(key)}")
    return 0
