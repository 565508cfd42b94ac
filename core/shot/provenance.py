"""What every matte says about its making (EXR header attributes, movie tags): samroto's
version, the model, the source, the frames and a digest of the prompts. Written the same
by ``samroto track`` and the bridge; ``--skip-existing`` reads the digest back."""

from __future__ import annotations

import hashlib
import json
import os


def prompts_digest(*prompt_sets) -> str:
    """SHA-256 of the prompts as samroto reads them (canonical JSON, in the order given)."""
    text = json.dumps([p.to_dict() for p in prompt_sets], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def matte_metadata(frames, model: str, *prompt_sets) -> dict:
    """The provenance attributes for the mattes of ``frames`` (a FrameSource)."""
    import samroto

    path = getattr(frames, "pattern", None) or getattr(frames, "path", None)
    return {
        "samroto/version": samroto.__version__,
        "samroto/model": str(model),
        "samroto/source": os.path.abspath(str(path)) if path else frames.label,
        "samroto/frames": f"{frames.first}-{frames.last}",
        "samroto/prompts_sha256": prompts_digest(*prompt_sets),
    }
