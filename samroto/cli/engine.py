"""The model a command runs: resolved from the settings (or flags), built once, clear errors.

Shared by ``samroto track``, ``samroto demo`` and ``samroto serve``."""

from __future__ import annotations

from samroto.cli.errors import CommandError, CommandFailed


def load_model(settings, name=None, checkpoint=None, device=None):
    """Build the configured model (``name``/``checkpoint``/``device`` override the settings).

    The ``compile`` setting compiles the image encoder on CUDA (Meta's
    ``compile_image_encoder``); elsewhere it is ignored."""
    from samroto.core.device import pick_device
    from samroto.core.model.build import build_model
    from samroto.core.store import StoreError, resolve_model

    name = name or settings["model"]
    try:
        config, checkpoint = resolve_model(name, checkpoint, settings)
    except StoreError as exc:
        raise CommandError(str(exc)) from None
    try:
        device = pick_device(device or settings["device"])
        model = build_model(config, checkpoint, device=device,
                            compile_image_encoder=bool(settings["compile"]) and device.type == "cuda")
    except (ValueError, FileNotFoundError) as exc:  # a wrong config or checkpoint: what was asked
        raise CommandError(f"cannot build model {name}: {exc}") from None
    except RuntimeError as exc:  # the device or the machine failed (out of memory, driver): exit 1
        raise CommandFailed(f"cannot build model {name}: {exc}") from None
    model.samroto_name = name
    model.checkpoint_path = str(checkpoint)
    return model
