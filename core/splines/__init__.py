"""Editable splines from mattes: per-frame Bezier shapes, animated shots, host writers.

See docs/finishing.md ("Spline exports").
"""

from .contours import (AnimatedShape, BezierShape, DEFAULT_TOLERANCE, flatten, matte_to_shapes,
                       rasterize, resample, shot_shape_tracks, shot_shapes)

__all__ = ["AnimatedShape", "BezierShape", "DEFAULT_TOLERANCE", "flatten", "matte_to_shapes",
           "rasterize", "resample", "shot_shape_tracks", "shot_shapes"]
