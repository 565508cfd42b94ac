"""A batch of shots (SHOTS.json) and the ``samroto track`` command each one runs.

    {"version": 1,
     "defaults": {"model": "sam2.1_hiera_base_plus", "direction": "both", "settings": {"finish.grow": 1}},
     "shots": [
       {"name": "sh010", "source": "plates/sh010.####.exr", "prompts": "prompts/sh010.json",
        "out": "mattes/sh010/{name}.####.exr", "range": "1001-1100"}]}

Relative paths resolve against the batch file's folder and are written out absolute, since
farm workers start elsewhere (use shared storage)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

SHOT_KEYS = {"name", "source", "prompts", "out", "direction", "range", "model", "checkpoint", "device",
             "precision", "format", "settings"}
PATH_KEYS = ("source", "prompts", "out", "checkpoint")


class BatchError(ValueError):
    """A batch file that cannot be used; the message names the shot and the field."""


@dataclass(frozen=True)
class Shot:
    name: str
    source: str
    prompts: str
    out: str
    direction: str = "both"
    range: str | None = None
    model: str | None = None
    checkpoint: str | None = None
    device: str | None = None
    precision: str | None = None
    format: str | None = None
    settings: dict = field(default_factory=dict)


def load_batch(path) -> list[Shot]:
    """The shots of a batch file, checked: every shot named once (a farm task name), with a
    source, a prompts file and an output pattern."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BatchError(f"{path}: {exc}") from None
    if not isinstance(data, dict) or data.get("version") != 1 or not isinstance(data.get("shots"), list):
        raise BatchError(f'{path}: expected {{"version": 1, "shots": [...]}} (docs/farm.md)')
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict) or set(defaults) - (SHOT_KEYS - {"name"}):
        raise BatchError(f"{path}: defaults may hold {sorted(SHOT_KEYS - {'name'})}")
    shots, names = [], set()
    for i, raw in enumerate(data["shots"]):
        where = f"{path}: shot {i + 1}"
        if not isinstance(raw, dict):
            raise BatchError(f"{where}: expected an object")
        unknown = set(raw) - SHOT_KEYS
        if unknown:
            raise BatchError(f"{where}: unknown field(s) {sorted(unknown)}; known: {sorted(SHOT_KEYS)}")
        entry = {**defaults, **raw, "settings": {**defaults.get("settings", {}), **raw.get("settings", {})}}
        name = entry.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
            raise BatchError(f"{where}: 'name' must be 1-64 letters, digits, '_', '.' or '-' (a farm task name)")
        if name in names:
            raise BatchError(f"{where}: the name {name!r} is used twice")
        names.add(name)
        for key in ("source", "prompts", "out"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise BatchError(f"{where} ({name}): {key!r} is required")
        if entry.get("direction", "both") not in ("forward", "backward", "both"):
            raise BatchError(f"{where} ({name}): direction must be forward, backward or both")
        for key in PATH_KEYS:
            if entry.get(key):
                entry[key] = str((path.parent / entry[key]).resolve()) if not Path(entry[key]).is_absolute() \
                    else entry[key]
        shots.append(Shot(**entry))
    if not shots:
        raise BatchError(f"{path}: no shots")
    return shots


def track_command(shot: Shot, samroto: str = "samroto") -> list[str]:
    """The ``samroto track`` argv that tracks ``shot`` (what every farm task runs)."""
    argv = [samroto]
    for key, value in sorted(shot.settings.items()):
        argv += ["--set", f"{key}={json.dumps(value) if not isinstance(value, str) else value}"]
    # --skip-existing: a retried task keeps the whole mattes made from the same prompts
    argv += ["track", shot.source, "--prompts", shot.prompts, "--out", shot.out, "--direction", shot.direction,
             "--quiet", "--skip-existing"]
    for flag, value in (("--range", shot.range), ("--model", shot.model), ("--checkpoint", shot.checkpoint),
                        ("--device", shot.device), ("--precision", shot.precision), ("--format", shot.format)):
        if value:
            argv += [flag, str(value)]
    return argv
