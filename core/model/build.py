"""build_model(): a SAM 2 model from a known name or an official-format YAML, with
Meta's checkpoints loaded unchanged (strict key and shape check)."""

import functools
from pathlib import Path

import torch

from samroto.core.device import pick_device

from .config import (CONFIG_DIR, ConfigError, KNOWN_CONFIGS, canonical_name, instantiate, known_names,
                     load_model_config)
from .sam2 import MODEL_OPTION_DEFAULTS, VIDEO_OPTION_DEFAULTS, SAM2Model  # noqa: F401 (re-export)

__all__ = ["build_model", "load_checkpoint", "pick_device", "known_names", "ConfigError",
           "CheckpointError", "POSTPROCESSING_OPTIONS"]

# What Meta's build_sam2 / build_sam2_video_predictor add on top of the YAML when
# apply_postprocessing=True (their default): dynamic multimask fallback for single-mask
# predictions, binarized click masks for the memory encoder, and hole filling.
POSTPROCESSING_OPTIONS = {
    "sam_mask_decoder_extra_args": {
        "dynamic_multimask_via_stability": True,
        "dynamic_multimask_stability_delta": 0.05,
        "dynamic_multimask_stability_thresh": 0.98,
    },
    "binarize_mask_from_pts_for_mem_enc": True,
    "fill_hole_area": 8,
}


class CheckpointError(ValueError):
    """A checkpoint that does not fit the model; the message names the keys."""


def build_model(config, checkpoint=None, device=None, apply_postprocessing=True, **options):
    """Build a SAM 2 model (eval mode).

    config: a known name (``sam2.1_hiera_tiny|small|base_plus|large``, ``sam2_hiera_*``,
      or the official yaml stems like ``sam2.1_hiera_t``) or the path of an
      official-format YAML (``model:`` tree with ``_target_`` keys).
    checkpoint: path of an official checkpoint (``torch.load(path)["model"]``), loaded
      strictly; None leaves random weights.
    device: torch device or name; None picks CUDA, then MPS, then CPU. ``"meta"`` builds
      without allocating weights (for inspecting keys and shapes).
    apply_postprocessing: as Meta's ``build_sam2``: adds :data:`POSTPROCESSING_OPTIONS`.
    options: SAM2Base / SAM2VideoPredictor options by their official names, overriding
      the config (e.g. ``fill_hole_area=0``, ``max_cond_frames_in_attn=4``).
    """
    known = set(MODEL_OPTION_DEFAULTS) | set(VIDEO_OPTION_DEFAULTS)
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"build_model: unknown option(s) {unknown}; known options: {sorted(known)}")
    tree, path = load_model_config(config)
    overrides = {}
    if apply_postprocessing:
        overrides.update(POSTPROCESSING_OPTIONS)
        overrides["sam_mask_decoder_extra_args"] = {
            **(tree.get("sam_mask_decoder_extra_args") or {}),
            **POSTPROCESSING_OPTIONS["sam_mask_decoder_extra_args"],
        }
    overrides.update(options)

    device = pick_device(device)
    if tree.get("_target_") not in ("sam2.modeling.sam2_base.SAM2Base",
                                    "sam2.sam2_video_predictor.SAM2VideoPredictor"):
        raise ConfigError(f"{path}: model._target_ must be SAM2Base or SAM2VideoPredictor, got {tree.get('_target_')!r}")

    if checkpoint is not None or device.type == "meta":
        # No point in random init: build without storage, then take the checkpoint's tensors.
        with torch.device("meta"):
            model = instantiate(tree, overrides=overrides)
        if checkpoint is not None:
            state_dict = read_checkpoint(checkpoint)
            check_state_dict(model, state_dict, source=checkpoint)
            # assign=True adopts the tensors themselves: keep the model's dtypes (a
            # half-precision fine-tune still gives a float32 model, as a copying load would)
            expected = model.state_dict()
            state_dict = {k: v.to(expected[k].dtype) for k, v in state_dict.items()}
            model.load_state_dict(state_dict, strict=True, assign=True)
    else:
        model = instantiate(tree, overrides=overrides)
    model.config_path = str(path)
    # the official name when built from a packaged config, None for a custom YAML
    model.config_name = canonical_name(path) if Path(path).parent.resolve() == CONFIG_DIR.resolve() else None
    if device.type != "meta":
        model = model.to(device)
    return model.eval()


def read_checkpoint(path):
    """The state dict of an official checkpoint file (``{"model": state_dict}``)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"SAM 2 checkpoint not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors come in many types
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({exc})") from exc
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        data = data["model"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CheckpointError(
            f"{path}: expected an official SAM 2 checkpoint, a dict with a 'model' state dict of tensors"
        )
    return data


def load_checkpoint(model, path):
    """Load an official checkpoint into ``model`` strictly; returns the model."""
    state_dict = read_checkpoint(path)
    check_state_dict(model, state_dict, source=path)
    model.load_state_dict(state_dict, strict=True)
    return model


def check_state_dict(model, state_dict, source="checkpoint"):
    """Raise CheckpointError naming missing, unexpected and wrong-shape keys, and the
    official model the checkpoint most resembles."""
    problems = _differences(_shapes(model.state_dict()), _shapes(state_dict))
    if not any(problems.values()):
        return
    lines = [f"{source} does not fit this model:"]
    for kind, keys in problems.items():
        if keys:
            shown = ", ".join(keys[:8]) + (f" (and {len(keys) - 8} more)" if len(keys) > 8 else "")
            lines.append(f"  {kind} ({len(keys)}): {shown}")
    guess = guess_official_model(state_dict)
    if guess is not None:
        lines.append(f"  it looks like the official {guess!r} checkpoint: build_model({guess!r}, checkpoint=...)")
    else:
        lines.append("  it matches none of the official models; build it with its own config YAML")
    raise CheckpointError("\n".join(lines))


def _shapes(state_dict):
    return {k: tuple(v.shape) for k, v in state_dict.items()}


def _differences(expected, found):
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(
        f"{k} {list(found[k])} (model: {list(expected[k])})"
        for k in set(expected) & set(found) if expected[k] != found[k]
    )
    return {"missing keys": missing, "unexpected keys": unexpected, "wrong shapes": wrong}


@functools.lru_cache(maxsize=None)
def official_shapes(name):
    """Key -> shape of an official model (built on the meta device: no memory)."""
    return _shapes(build_model(name, device="meta").state_dict())


def guess_official_model(state_dict):
    """The official model name whose keys and shapes match ``state_dict`` exactly, or None."""
    found = _shapes(state_dict)
    for name in KNOWN_CONFIGS:
        if not any(_differences(official_shapes(name), found).values()):
            return name
    return None
