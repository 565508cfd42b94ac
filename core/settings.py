"""samroto's settings: one YAML file, every key overridable by environment and CLI.

Precedence, lowest first: built-in default < settings file < ``SAMROTO_<KEY>``
environment variable < command-line flag. Keys are dotted (``bridge.idle_timeout``);
the environment name upper-cases the key and turns dots into underscores
(``SAMROTO_BRIDGE_IDLE_TIMEOUT``). The file nests sections::

    model: sam2.1_hiera_large
    bridge:
      idle_timeout: 3600

The settings file lives in the user config dir (XDG on Linux, ~/Library/Application
Support on macOS, %APPDATA% on Windows); ``SAMROTO_CONFIG_DIR`` moves it (and the
bridge's discovery file) elsewhere, for studios and tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import platformdirs
import yaml

APP = "samroto"
SETTINGS_FILENAME = "settings.yaml"


class SettingsError(ValueError):
    """A settings file, variable or flag is wrong; the message says where and how to fix it."""


@dataclass(frozen=True)
class Key:
    name: str
    type: type | tuple
    default: Any
    help: str
    optional: bool = False
    choices: tuple = ()

    def coerce(self, value: Any, where: str) -> Any:
        """Return ``value`` as this key's type, or raise SettingsError naming ``where``."""
        if value is None and self.optional:
            return None
        if isinstance(value, str) and self.type is not str and where.startswith(("environment", "flag")):
            # Environment and flags are text: read them as YAML scalars ("true", "3", "[1,2]").
            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError as exc:
                raise SettingsError(f"{where}: {self.name} = {value!r} is not valid: {exc}") from None
        want = self.type
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if want is int and isinstance(value, bool) or not isinstance(value, want):
            names = want.__name__ if isinstance(want, type) else "/".join(t.__name__ for t in want)
            raise SettingsError(
                f"{where}: {self.name} must be {names}, got {type(value).__name__} {value!r}. {self.help}"
            )
        if self.choices and value not in self.choices:
            raise SettingsError(f"{where}: {self.name} must be one of {', '.join(self.choices)}, got {value!r}")
        return value


def _default_cache_dir() -> str:
    return str(Path(platformdirs.user_cache_dir(APP)) / "checkpoints")


# Every setting samroto has. Add a key here, and it works in the file, the environment
# and `--set`, and shows in `samroto config show`.
KEYS: dict[str, Key] = {
    k.name: k
    for k in [
        Key("model", str, "sam2.1_hiera_base_plus",
            "Model name (sam2.1_hiera_tiny|small|base_plus|large, sam2_hiera_*) or a registered/custom name."),
        Key("device", str, "auto", "auto (CUDA, then MPS, then CPU), cuda, cuda:N, mps or cpu."),
        Key("precision", str, "auto", "auto (bfloat16 on CUDA and on CPUs with native bfloat16, float32 "
            "elsewhere), float32 (Meta's numbers) or bfloat16. See docs/speed.md.",
            choices=("auto", "float32", "bfloat16")),
        Key("compile", bool, False, "torch.compile the image encoder on CUDA (slower start, faster frames; not yet "
            "measured, see docs/speed.md)."),
        Key("models.cache_dir", str, "", "Where checkpoints are stored (empty: the user cache dir)."),
        Key("models.url_base", str, "https://dl.fbaipublicfiles.com/segment_anything_2",
            "Base URL for checkpoint downloads; point it at a studio mirror with the same layout."),
        Key("models.sha256", dict, {}, "Pinned SHA-256 per model name; a download or verify that differs fails."),
        Key("engine.feature_cache_mb", int, 1024, "Per-session image-feature cache size in MiB."),
        Key("engine.add_all_frames_to_correct_as_cond", bool, True,
            "A correction on a tracked frame becomes a conditioning frame, so it sticks (Meta: false)."),
        Key("color.ocio_config", str, "", "OpenColorIO config path for input transforms (empty: $OCIO or built-in).",),
        Key("color.input", str, "auto",
            "Colour of source frames: auto (by file type), srgb, rec709, linear, or an OCIO colour space name."),
        Key("color.display", str, "sRGB", "Display-referred space the model sees (an OCIO colour space with a config)."),
        Key("video.first_frame", (int, str), 0,
            "Number of a movie's first frame: a number, or 'timecode' (its start timecode as a frame count; "
            "10:00:00:00 at 25 fps is 900000)."),
        Key("video.on_damage", str, "error", "A movie frame the decoder found errors in: error (the frame fails, "
            "exit 1) or warn (tracked on, with a warning per frame).", choices=("error", "warn")),
        Key("matte.format", str, "exr", "Matte file format: exr, png, tiff, mov (ProRes 4444) or ffv1."),
        Key("matte.overscan", str, "keep", "EXR mattes of an overscan plate: keep (the plate's data window; the "
            "matte's edge continues outwards) or crop (the display window only).", choices=("keep", "crop")),
        Key("matte.exr_compression", str, "zip", "EXR compression: zip, piz, dwaa or none."),
        # finishing (docs/finishing.md): applied in this order
        Key("finish.refine", bool, True, "Upsample the model's mask guided by the plate's edges (false: plain bilinear)."),
        Key("finish.refine_radius", float, 0.0, "Edge-refinement window radius in plate pixels (0: auto, two model pixels)."),
        Key("finish.refine_eps", float, 1e-3, "Edge-refinement smoothness: smaller follows fainter plate edges."),
        Key("finish.refine_strength", float, 1.0, "0 = SAM 2's bilinear edge, 1 = fully plate-guided edge."),
        Key("finish.hole_area", float, 0.0, "Fill holes up to this many source pixels (SAM 2's fill_hole_area; 0: off)."),
        Key("finish.speck_area", float, 0.0, "Remove specks up to this many source pixels (0: off)."),
        Key("finish.keep_largest", bool, False, "Keep only the largest piece of each object's matte."),
        Key("finish.non_overlap", bool, True, "Objects never share a pixel's coverage (alphas sum to at most 1)."),
        Key("finish.temporal_strength", float, 0.0, "Temporal smoothing of edge chatter, 0 (off) to 0.95; motion-gated, no lag."),
        Key("finish.temporal_sensitivity", float, 0.03, "Plate change (grey levels) that counts as motion for temporal smoothing."),
        Key("finish.grow", float, 0.0, "Grow (positive) or shrink (negative) the matte edge, in pixels."),
        Key("finish.feather", float, 0.0, "Feather: width in pixels of the soft edge ramp (10%-90%)."),
        Key("finish.choke", float, 0.0, "Choke the soft edge inwards in pixels (negative spreads), after feather."),
        Key("finish.spline_tolerance", float, 1.0, "Spline export: largest distance in pixels from the matte edge."),
        Key("finish.cryptomatte", bool, False, "Write all objects into one EXR per frame with Cryptomatte ID/coverage layers."),
        Key("bridge.idle_timeout", float, 1800.0, "Seconds without clients before the bridge exits (0: never)."),
        Key("bridge.session_timeout", float, 3600.0, "Seconds a session may sit idle before it is evicted."),
        Key("bridge.host", str, "", "Bind address for TCP (empty: Unix socket or 127.0.0.1)."),
        Key("bridge.port", int, 0, "TCP port (0: pick a free one)."),
        Key("bridge.max_payload_mb", int, 1024, "Largest binary payload the bridge accepts, in MiB."),
        Key("bridge.read_roots", list, [], "Folders requests may read frames and mask prompts from (empty: anywhere "
            "you may; required when bridge.host is beyond loopback)."),
        Key("bridge.write_roots", list, [], "Folders requests may write mattes into (empty: anywhere you may; "
            "required when bridge.host is beyond loopback)."),
        Key("bridge.tls_cert", str, "", "TLS certificate chain (PEM) of a shared bridge; with bridge.tls_key. "
            "Required when bridge.host is beyond loopback (docs/bridge.md, Shared GPU host)."),
        Key("bridge.tls_key", str, "", "Private key (PEM) of bridge.tls_cert; readable by the bridge's user alone."),
        Key("bridge.users_file", str, "", "Per-user tokens of a shared bridge (`samroto users`); required when "
            "bridge.host is beyond loopback."),
        Key("bridge.path_map", (list, dict), [], "Clients' mount points of shared storage -> this machine's: "
            "[[\"S:\\\\shows\", \"/mnt/shows\"], ...] or {client: server}."),
        Key("bridge.max_sessions_per_user", int, 0, "Sessions one user of a shared bridge may hold open (0: no cap)."),
        Key("bridge.max_connections_per_user", int, 16, "Connections one user of a shared bridge may hold open "
            "(0: no cap)."),
    ]
}


def config_dir() -> Path:
    """The user config dir holding settings.yaml and the bridge discovery file."""
    env = os.environ.get("SAMROTO_CONFIG_DIR")
    return Path(env) if env else Path(platformdirs.user_config_dir(APP, appauthor=False))


def settings_path() -> Path:
    return config_dir() / SETTINGS_FILENAME


def env_name(key: str) -> str:
    return "SAMROTO_" + key.upper().replace(".", "_")


def _flatten(tree: Mapping, prefix: str = "") -> dict[str, Any]:
    flat = {}
    for name, value in tree.items():
        key = f"{prefix}{name}"
        # A mapping is a section unless the key itself holds a dict (models.sha256).
        if isinstance(value, Mapping) and key not in KEYS:
            flat.update(_flatten(value, key + "."))
        else:
            flat[key] = value
    return flat


class Settings:
    """Effective settings: ``s["bridge.port"]``, plus where each value came from."""

    def __init__(self, values: dict[str, Any], sources: dict[str, str], path: Path):
        self._values = values
        self.sources = sources
        self.path = path

    def __getitem__(self, key: str) -> Any:
        if key not in KEYS:
            raise KeyError(f"unknown setting {key!r}")
        return self._values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._values.get(key, default)

    def items(self):
        return self._values.items()

    @property
    def cache_dir(self) -> Path:
        return Path(self["models.cache_dir"] or _default_cache_dir()).expanduser()

    def with_overrides(self, overrides: Mapping[str, Any], source: str = "flag") -> "Settings":
        values, sources = dict(self._values), dict(self.sources)
        for key, raw in overrides.items():
            if key not in KEYS:
                raise SettingsError(f"{source}: unknown setting {key!r}. Known: {', '.join(KEYS)}")
            values[key] = KEYS[key].coerce(raw, f"{source} {key}")
            sources[key] = source
        return Settings(values, sources, self.path)


def load_settings(overrides: Mapping[str, Any] | None = None, path: Path | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Read defaults, the settings file, ``SAMROTO_*`` variables and ``overrides`` (flags)."""
    path = Path(path) if path else settings_path()
    environ = os.environ if environ is None else environ
    values = {k: key.default for k, key in KEYS.items()}
    sources = {k: "default" for k in KEYS}

    if path.exists():
        try:
            tree = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise SettingsError(f"{path}: cannot read settings: {exc}") from None
        if not isinstance(tree, Mapping):
            raise SettingsError(f"{path}: the settings file must be a YAML mapping of keys to values")
        for key, value in _flatten(tree).items():
            if key not in KEYS:
                raise SettingsError(f"{path}: unknown setting {key!r}. Known: {', '.join(KEYS)}")
            values[key] = KEYS[key].coerce(value, f"{path}")
            sources[key] = str(path)

    for key, spec in KEYS.items():
        name = env_name(key)
        if name in environ:
            values[key] = spec.coerce(environ[name], f"environment {name}")
            sources[key] = f"env {name}"

    settings = Settings(values, sources, path)
    return settings.with_overrides(overrides or {}, "flag") if overrides else settings


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    """Turn ``["a.b=1", ...]`` from ``--set`` flags into a dict, with a clear error for bad ones."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SettingsError(f"--set {pair!r}: expected KEY=VALUE, e.g. --set bridge.port=7070")
        out[key.strip()] = value
    return out
