"""``samroto doctor``: what this machine has, and whether the engine can run here.

Exit status 0 when torch imports, a tensor operation works on the chosen device (the
``device`` setting) and the default model (the ``model`` setting) is on disk: ``samroto
track`` can run as it is. 1 otherwise, with each reason. Everything else (missing optional
libraries, no bridge, no plugins) is reported but does not fail.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys
from pathlib import Path

from samroto.bridge import discovery

# (import name, label, required for the engine)
LIBRARIES = [
    ("numpy", "numpy", True),
    ("av", "PyAV", False),
    ("OpenImageIO", "OpenImageIO", False),
    ("PyOpenColorIO", "OpenColorIO", False),
    ("cv2", "OpenCV", False),
    ("yaml", "PyYAML", True),
    ("tqdm", "tqdm", False),
    ("platformdirs", "platformdirs", True),
]
HOSTS = ["nuke", "blender", "resolve"]


def register(sub):
    p = sub.add_parser("doctor", help="check this machine: Python, torch, GPU, libraries, models, plugins",
                       description="Check this machine: Python, torch and the device, libraries, checkpoints, "
                                   "the bridge and the host plugins. Exit status 0 when the engine can run here "
                                   "with the default model; 1 with every reason otherwise.")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.set_defaults(run=run)


def run(args, settings):
    report = collect(settings)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_report(report)
    return 0 if report["ok"] else 1


# ---------------------------------------------------------------- collection

def collect(settings) -> dict:
    import samroto

    report = {
        "samroto": samroto.__version__,
        "python": {"version": platform.python_version(), "executable": sys.executable,
                   "platform": platform.platform()},
        "torch": _torch(settings),
        "libraries": _libraries(),
        "settings_file": {"path": str(settings.path), "exists": settings.path.exists()},
        "checkpoints": _checkpoints(settings),
        "bridge": _bridge(),
        "plugins": _plugins(),
    }
    problems = list(report["torch"].get("problems", []))
    problems += [f"{lib['label']} ({lib['module']}) is missing; reinstall samroto"
                 for lib in report["libraries"] if lib["required"] and not lib["version"]]
    c = report["checkpoints"]
    if c.get("error"):
        problems.append(f"the model store cannot be read: {c['error']}")
    elif not c.get("default_model_present", True):
        problems.append(f"the default model {c['default_model']} is not downloaded: run `samroto models download "
                        f"{c['default_model']}`, or set `model` to one you have (samroto models list)")
    report["problems"] = problems
    report["ok"] = not problems
    return report


def _torch(settings) -> dict:
    try:
        import torch
    except Exception as exc:  # ImportError, or a broken install (missing shared libraries)
        return {"version": None, "problems": [f"torch does not import: {exc}"]}
    info = {"version": torch.__version__, "problems": []}
    cuda, hip = torch.version.cuda, getattr(torch.version, "hip", None)
    info["build"] = f"CUDA {cuda}" if cuda else (f"ROCm {hip}" if hip else "CPU only")
    info["cuda_available"] = torch.cuda.is_available()
    info["cuda_devices"] = []
    if info["cuda_available"]:
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            info["cuda_devices"].append({"index": i, "name": props.name,
                                         "memory_gib": round(props.total_memory / 2**30, 1),
                                         "capability": f"{props.major}.{props.minor}"})
    mps = getattr(torch.backends, "mps", None)
    info["mps_available"] = bool(mps and mps.is_available())
    info["cpu_threads"] = torch.get_num_threads()
    info["memory_gib"] = _system_memory_gib()

    from samroto.core.device import pick_device

    wanted = settings["device"]
    try:
        device = str(pick_device(wanted))
    except RuntimeError:  # not a device name torch knows: the tensor test below says so
        device = wanted
    info["device_setting"], info["device"] = wanted, device
    try:
        from samroto.core.precision import cpu_has_native_bf16, resolve_precision

        dtype = resolve_precision(settings["precision"], torch.device(device))
        info["precision_setting"], info["precision"] = settings["precision"], str(dtype).removeprefix("torch.")
        info["cpu_native_bf16"] = cpu_has_native_bf16()
    except (ValueError, RuntimeError) as exc:
        info["problems"].append(f"precision: {exc}")
    try:
        x = torch.arange(64 * 64, dtype=torch.float32, device=device).reshape(64, 64) / 4096
        value = float((x @ x.T).sum().cpu())
        if value != value:  # NaN
            raise RuntimeError("a matrix product gave NaN")
        info["tensor_test"] = "ok"
    except Exception as exc:
        info["tensor_test"] = f"failed: {exc}".splitlines()[0]
        info["problems"].append(f"torch cannot compute on device {device!r} (setting device={wanted}): "
                                f"{info['tensor_test'][8:]}. Use --set device=cpu, or install a torch "
                                f"build for this GPU.")
    return info


def _system_memory_gib():
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (AttributeError, ValueError, OSError):
        return None  # Windows / macOS without these names


def _libraries() -> list[dict]:
    out = []
    for module, label, required in LIBRARIES:
        entry = {"module": module, "label": label, "required": required, "version": None}
        try:
            mod = importlib.import_module(module)
            entry["version"] = str(_version_of(mod) or "unknown version")
        except Exception as exc:
            entry["error"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        out.append(entry)
    return out


def _version_of(mod):
    for attr in ("__version__", "VERSION_STRING", "VERSION"):
        if getattr(mod, attr, None):
            return getattr(mod, attr)
    getter = getattr(mod, "GetVersion", None)  # PyOpenColorIO
    return getter() if callable(getter) else None


def _checkpoints(settings) -> dict:
    from samroto.core import store

    info = {"cache_dir": str(settings.cache_dir), "default_model": settings["model"], "models": []}
    try:
        models = store.list_models(settings)
    except store.StoreError as exc:
        info["error"] = str(exc)
        return info
    info["models"] = [m.as_dict() for m in models if m.downloaded]
    info["partial"] = sorted(p.name for p in settings.cache_dir.glob("*.part")) \
        if settings.cache_dir.is_dir() else []
    info["default_model_present"] = any(m.name == store.canonical(settings["model"]) or m.name == settings["model"]
                                        for m in models if m.downloaded) or _is_model_file(settings["model"])
    return info


def _is_model_file(name: str) -> bool:
    """``model`` may be an official-format config YAML (its checkpoint given with it)."""
    return str(name).endswith((".yaml", ".yml")) and Path(name).is_file()


def _bridge() -> dict:
    """The discovery file's state; the token is never shown."""
    path = discovery.path()
    if not path.exists():
        return {"state": "not running", "file": str(path), "detail": f"no discovery file at {path}"}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return {"state": "unknown", "file": str(path), "detail": f"unreadable discovery file: {exc}"}
    if not isinstance(data, dict):
        return {"state": "unknown", "file": str(path), "detail": "discovery file is not a JSON object"}
    shown = {k: v for k, v in data.items() if "token" not in k.lower() and "secret" not in k.lower()}
    address = data.get("address") if isinstance(data.get("address"), dict) else {}
    state = "listening" if discovery.reachable(address, timeout=0.5) else "stale (nothing answers)"
    return {"state": state, "file": str(path), "address": _describe(address), "pid": data.get("pid"),
            "discovery": shown}


def _describe(address: dict) -> str:
    if address.get("family") == "unix":
        return str(address.get("path", ""))
    return f"{address.get('host', '')}:{address.get('port', '')}" if address.get("port") else ""


def _plugins() -> dict:
    out = {}
    for host in HOSTS:
        found, how = None, "samroto's installer"
        try:
            found = importlib.import_module(f"samroto.plugins.{host}.install").installed()
        except Exception as exc:  # noqa: BLE001 - said in the report, then a file search instead
            how = f"a file search (samroto's installer failed: {type(exc).__name__}: {exc})"
            found = _search_plugin(host)
        out[host] = {"installed": bool(found), "path": str(found) if found else None, "checked_by": how}
    return out


def _search_plugin(host: str) -> Path | None:
    """Best-effort: a samroto file or folder in the host's per-user plugin folders."""
    for folder in _host_folders(host):
        if not folder.is_dir():
            continue
        for depth_glob in ("*samroto*", "*/*samroto*", "*/*/*samroto*"):
            hit = next(iter(sorted(folder.glob(depth_glob))), None)
            if hit is not None:
                return hit
    return None


def _host_folders(host: str) -> list[Path]:
    home = Path.home()
    mac, win = sys.platform == "darwin", os.name == "nt"
    appdata = Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming")
    if host == "nuke":
        return [home / ".nuke"]
    if host == "blender":
        root = (home / "Library/Application Support/Blender" if mac else
                appdata / "Blender Foundation/Blender" if win else
                Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config") / "blender")
        found = sorted(root.glob("*/scripts/addons")) + sorted(root.glob("*/extensions/user_default")) \
            if root.is_dir() else []
        return found
    if mac:
        return [home / "Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts"]
    if win:
        return [appdata / "Blackmagic Design/DaVinci Resolve/Support/Fusion/Scripts"]
    return [home / ".local/share/DaVinciResolve/Fusion/Scripts", Path("/opt/resolve/Fusion/Scripts")]


# ---------------------------------------------------------------- text output

def print_report(r: dict) -> None:
    row = "  {:<14}{}".format
    py = r["python"]
    print(f"samroto {r['samroto']}")
    print(row("python", f"{py['version']} ({py['executable']}) on {py['platform']}"))
    t = r["torch"]
    if t.get("version") is None:
        print(row("torch", "NOT IMPORTABLE"))
    else:
        print(row("torch", f"{t['version']} ({t['build']})"))
        devices = ", ".join(f"cuda:{d['index']} {d['name']} {d['memory_gib']} GiB" for d in t["cuda_devices"])
        print(row("CUDA", devices or "not available"))
        print(row("MPS", "available" if t["mps_available"] else "not available"))
        memory = f", {t['memory_gib']} GiB RAM" if t.get("memory_gib") else ""
        print(row("CPU", f"{os.cpu_count()} cores, torch uses {t['cpu_threads']} threads{memory}"))
        print(row("device", f"{t['device']} (setting device={t['device_setting']}): tensor test {t['tensor_test']}"))
        if "precision" in t:
            bf16 = "has" if t["cpu_native_bf16"] else "has no"
            print(row("precision", f"{t['precision']} (setting precision={t['precision_setting']}; the CPU {bf16} "
                                   "native bfloat16 products)"))

    print("libraries")
    for lib in r["libraries"]:
        state = lib["version"] or ("MISSING (required)" if lib["required"] else "MISSING")
        print(row(lib["label"], state))

    c = r["checkpoints"]
    print(f"checkpoints (cache {c['cache_dir']})")
    if c.get("error"):
        print(row("error", c["error"]))
    for m in c["models"]:
        size = f"{m['size'] / 1e6:,.0f} MB" if m["size"] else "?"
        print(row("", f"{m['name']}  {size}  verified: {m['verified']}  {m['path']}"))
    if not c["models"] and not c.get("error"):
        print(row("", "none downloaded"))
    for part in c.get("partial", []):
        print(row("", f"{part}  (unfinished download; `samroto models download` resumes it)"))
    if not c.get("default_model_present", True):
        print(row("default model", f"{c['default_model']} not present: "
                                   f"samroto models download {c['default_model']}"))

    print("setup")
    s = r["settings_file"]
    print(row("settings", f"{s['path']}{'' if s['exists'] else ' (not present; defaults apply)'}"))
    b = r["bridge"]
    address = b.get("address", "")
    pid = f"(pid {b['pid']})" if b.get("pid") else ""
    detail = f"({b['detail']})" if b.get("detail") else ""
    where = "" if detail else f"[{b['file']}]" if b.get("file") else ""
    print(row("bridge", " ".join(x for x in (b["state"], address, pid, detail, where) if x)))
    print("plugins")
    for host, p in r["plugins"].items():
        print(row(host, f"installed at {p['path']}" if p["installed"] else
                  f"not installed (samroto install {host})"))
    if r["ok"]:
        print(f"result: OK - the engine can run on {r['torch']['device']}")
    else:
        for problem in r["problems"]:
            print(f"result: FAIL - {problem}")
