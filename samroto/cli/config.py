"""``samroto config show|path``: the effective settings and where each value came from."""

from __future__ import annotations


def register(sub):
    p = sub.add_parser("config", help="show the effective settings")
    p.add_argument("action", choices=["show", "path"], nargs="?", default="show")
    p.set_defaults(run=run)


def run(args, settings):
    import yaml

    from samroto.core.settings import KEYS, env_name

    if args.action == "path":
        print(settings.path)
        return 0
    print(f"# settings file: {settings.path}{'' if settings.path.exists() else ' (not present; defaults apply)'}")
    width = max(len(k) for k in KEYS)
    for key, value in settings.items():
        shown = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
        print(f"{key:<{width}}  {shown:<40}  # {settings.sources[key]}; env {env_name(key)}")
    return 0
