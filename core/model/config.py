"""Official-format SAM 2 config YAMLs (the ``model:`` tree with ``_target_`` keys), read
without hydra: known names, YAML parsing, and the ``_target_`` -> class table."""

import inspect
import re
from pathlib import Path

import yaml

from .hiera import Hiera
from .image_encoder import FpnNeck, ImageEncoder
from .memory_attention import MemoryAttention, MemoryAttentionLayer
from .memory_encoder import CXBlock, Fuser, MaskDownSampler, MemoryEncoder
from .position_encoding import PositionEmbeddingSine
from .sam2 import MODEL_OPTION_DEFAULTS, VIDEO_OPTION_DEFAULTS, SAM2Model
from .transformer import Attention, RoPEAttention

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"

# Official model names (as their checkpoint files are named) -> packaged config file.
KNOWN_CONFIGS = {
    "sam2.1_hiera_tiny": "sam2.1_hiera_t.yaml",
    "sam2.1_hiera_small": "sam2.1_hiera_s.yaml",
    "sam2.1_hiera_base_plus": "sam2.1_hiera_b+.yaml",
    "sam2.1_hiera_large": "sam2.1_hiera_l.yaml",
    "sam2_hiera_tiny": "sam2_hiera_t.yaml",
    "sam2_hiera_small": "sam2_hiera_s.yaml",
    "sam2_hiera_base_plus": "sam2_hiera_b+.yaml",
    "sam2_hiera_large": "sam2_hiera_l.yaml",
}
_ALIASES = {Path(f).stem: name for name, f in KNOWN_CONFIGS.items()}  # sam2.1_hiera_t, ...
_ALIASES.update({stem.replace("b+", "base+"): name for stem, name in list(_ALIASES.items()) if "b+" in stem})
_ALIASES.update({name.replace("sam2.1", "sam2_1"): name for name in KNOWN_CONFIGS if name.startswith("sam2.1")})

TARGETS = {
    "sam2.modeling.sam2_base.SAM2Base": SAM2Model,
    "sam2.sam2_video_predictor.SAM2VideoPredictor": SAM2Model,
    "sam2.modeling.backbones.image_encoder.ImageEncoder": ImageEncoder,
    "sam2.modeling.backbones.image_encoder.FpnNeck": FpnNeck,
    "sam2.modeling.backbones.hieradet.Hiera": Hiera,
    "sam2.modeling.position_encoding.PositionEmbeddingSine": PositionEmbeddingSine,
    "sam2.modeling.memory_attention.MemoryAttention": MemoryAttention,
    "sam2.modeling.memory_attention.MemoryAttentionLayer": MemoryAttentionLayer,
    "sam2.modeling.sam.transformer.RoPEAttention": RoPEAttention,
    "sam2.modeling.sam.transformer.Attention": Attention,
    "sam2.modeling.memory_encoder.MemoryEncoder": MemoryEncoder,
    "sam2.modeling.memory_encoder.MaskDownSampler": MaskDownSampler,
    "sam2.modeling.memory_encoder.Fuser": Fuser,
    "sam2.modeling.memory_encoder.CXBlock": CXBlock,
}
# Arguments a config may give although they only matter for training.
_MODEL_ARGS = {"image_encoder", "memory_attention", "memory_encoder"}


class ConfigError(ValueError):
    """A config that cannot be read or built; the message says where and why."""


def known_names():
    return sorted(KNOWN_CONFIGS)


def canonical_name(name):
    """The official model name for a name or alias, or None."""
    stem = str(name)
    for suffix in (".yaml", ".yml", ".pt"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    stem = Path(stem).name
    if stem in KNOWN_CONFIGS:
        return stem
    return _ALIASES.get(stem)


def resolve_config_path(config):
    """A YAML path for ``config`` (an existing file, or a known name/alias)."""
    path = Path(config).expanduser()
    if path.is_file():
        return path
    name = canonical_name(config)
    if name is not None:
        return CONFIG_DIR / KNOWN_CONFIGS[name]
    raise ConfigError(
        f"unknown SAM 2 config {str(config)!r}: not a file, and not one of the known names "
        f"{known_names()} (or their yaml stems such as 'sam2.1_hiera_t', 'sam2.1_hiera_b+')"
    )


_FLOAT_RE = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)$")


def _fix_scalars(node):
    # PyYAML (YAML 1.1) reads '1e-6' as a string; OmegaConf (and so Meta) as a float.
    if isinstance(node, dict):
        return {k: _fix_scalars(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_fix_scalars(v) for v in node]
    if isinstance(node, str) and _FLOAT_RE.match(node):
        return float(node)
    return node


def load_model_config(config):
    """The ``model:`` tree of an official-format YAML (path or known name), as plain dicts."""
    path = resolve_config_path(config)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read SAM 2 config {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise ConfigError(
            f"{path}: no 'model:' mapping at the top level; expected an official SAM 2 config "
            "(model: {_target_: sam2.modeling.sam2_base.SAM2Base, image_encoder: ..., ...})"
        )
    return _fix_scalars(data["model"]), path


def _accepted_args(cls):
    """Keyword names a target class accepts (following *args/**kwargs up the MRO)."""
    if cls is SAM2Model:
        return _MODEL_ARGS | set(MODEL_OPTION_DEFAULTS) | set(VIDEO_OPTION_DEFAULTS)
    names = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters
        names |= {n for n, p in params.items() if n != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            break
    return names


def instantiate(node, where="model", overrides=None):
    """Build the module tree of a config node (dicts with ``_target_`` become modules).
    ``overrides`` are merged into the top node's arguments (checked like config keys)."""
    if isinstance(node, list):
        return [instantiate(v, f"{where}[{i}]") for i, v in enumerate(node)]
    if not isinstance(node, dict):
        if isinstance(node, str) and "${" in node:
            raise ConfigError(f"{where}: interpolation {node!r} is not supported; give the value itself")
        return node
    if "_target_" not in node:
        return {k: instantiate(v, f"{where}.{k}") for k, v in node.items()}
    target = node["_target_"]
    cls = TARGETS.get(target)
    if cls is None:
        raise ConfigError(f"{where}: unknown _target_ {target!r}; supported targets: {sorted(TARGETS)}")
    args = {k: v for k, v in node.items() if k != "_target_"}
    args.update(overrides or {})
    unknown = sorted(set(args) - _accepted_args(cls))
    if unknown:
        raise ConfigError(
            f"{where} ({target}): unknown key(s) {unknown}; accepted: {sorted(_accepted_args(cls))}"
        )
    kwargs = {k: (v if k == "sam_mask_decoder_extra_args" else instantiate(v, f"{where}.{k}")) for k, v in args.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where} ({target}): {exc}") from exc
