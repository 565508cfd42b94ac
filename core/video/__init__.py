"""Video tracking: VideoSession (streaming, bounded memory), the memory side of SAM 2,
and the image-feature cache. See docs/video.md."""

from .feature_cache import FeatureCache
from .session import SAMROTO_DEFAULTS, TRACKING_OPTIONS, VideoSession

__all__ = ["FeatureCache", "SAMROTO_DEFAULTS", "TRACKING_OPTIONS", "VideoSession"]
