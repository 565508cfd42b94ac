"""Automatic masks: every object on a frame, for the artist to pick from (docs/automask.md).

:class:`AutoMaskGenerator` is Meta's ``SAM2AutomaticMaskGenerator`` on samroto's model:
the same parameters, defaults, records and masks (tests/test_automask_parity.py), with
progress, cancel, and batches sized to the device's memory.
"""

from .errors import Cancelled, FrameTooLargeError
from .generator import OUTPUT_MODES, AutoMaskGenerator, Progress, mask_of
from .rle import decode as decode_rle

__all__ = ["AutoMaskGenerator", "Cancelled", "FrameTooLargeError", "OUTPUT_MODES", "Progress", "decode_rle",
           "mask_of"]
