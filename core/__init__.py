"""samroto.core: the SAM 2 engine (PyTorch). Knows nothing of sockets or hosts.

Heavy modules (torch) are imported on first use, so ``import samroto.core`` and
the frame/matte I/O stay cheap.
"""

import importlib

_LAZY = {
    "build_model": "samroto.core.model.build",
    "load_checkpoint": "samroto.core.model.build",
    "ImagePredictor": "samroto.core.image_predictor",
    "VideoSession": "samroto.core.video.session",
    "Settings": "samroto.core.settings",
    "open_frames": "samroto.core.io",
    "MatteWriter": "samroto.core.io",
    "ColorSpec": "samroto.core.io",
    "load_settings": "samroto.core.settings",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'samroto.core' has no attribute {name!r}")
