"""What a VideoSession can track: a frame source, RGB arrays, or model-ready tensors.

Every form is read lazily, one frame at a time, so a session never holds the clip; while
the model works on one frame, the next is decoded on a worker thread (read_ahead).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from samroto.core.image_predictor import preprocess_image


class ModelFrames:
    """Positions 0..T-1 -> normalised model input [1, 3, S, S]."""

    def __init__(self, frames, image_size: int, video_size=None):
        self.image_size = image_size
        self._reader = None  # the one thread that reads the source once read_ahead is used
        self._ahead: OrderedDict = OrderedDict()  # position -> Future of its pixels, read ahead
        self._source = None
        self._arrays = None
        self._tensor = None
        if isinstance(frames, torch.Tensor):
            if frames.dim() != 4 or frames.shape[1] != 3 or tuple(frames.shape[2:]) != (image_size, image_size):
                raise ValueError(f"model-ready frames must be [T, 3, {image_size}, {image_size}] "
                                 f"(normalised), got {tuple(frames.shape)}")
            if video_size is None:
                raise ValueError("model-ready frames need video_size=(height, width) of the original video")
            self._tensor = frames
            self.frame_numbers = list(range(frames.shape[0]))
            self.height, self.width = (int(v) for v in video_size)
        elif hasattr(frames, "frame_numbers") and hasattr(frames, "read_uint8"):
            self._source = frames
            self.frame_numbers = list(frames.frame_numbers)
            self.height, self.width = int(frames.height), int(frames.width)
        elif isinstance(frames, (Sequence, np.ndarray)):
            if len(frames) == 0:
                raise ValueError("no frames to track")
            first = np.asarray(frames[0])
            if first.ndim != 3 or first.shape[2] != 3 or first.dtype != np.uint8:
                raise ValueError(f"frames must be RGB uint8 arrays [H, W, 3]; the first is "
                                 f"{first.dtype} {first.shape}")
            self._arrays = frames
            self.frame_numbers = list(range(len(frames)))
            self.height, self.width = first.shape[:2]
        else:
            raise TypeError("frames must be a FrameSource (samroto.core.io.open_frames), a sequence of "
                            f"RGB uint8 arrays, or a [T, 3, S, S] tensor; got {type(frames).__name__}")
        if video_size is not None and (self.height, self.width) != tuple(int(v) for v in video_size):
            raise ValueError(f"video_size {tuple(video_size)} differs from the frames' {(self.height, self.width)}")

    def __len__(self) -> int:
        return len(self.frame_numbers)

    def model_input(self, position: int, device) -> torch.Tensor:
        if not 0 <= position < len(self):
            raise IndexError(f"frame position {position} is outside 0..{len(self) - 1}")
        if self._tensor is not None:
            return self._tensor[position:position + 1].to(device=device, dtype=torch.float32)
        pending = self._ahead.pop(position, None)
        if pending is not None:
            image = pending.result()
        elif self._reader is not None:  # a source (a movie container) is read by one thread only
            image = self._reader.submit(self._pixels, position).result()
        else:
            image = self._pixels(position)
        # resized here, not on the reader: torch work there would compete for the cores
        return preprocess_image(image, self.image_size, device)

    def read_ahead(self, position: int) -> None:
        """Start decoding ``position`` on a worker thread, for a later model_input: decoding
        a frame (an EXR, a 4K movie frame) then overlaps the model's work on the current
        one. Any error surfaces from that model_input call."""
        if self._tensor is not None or not 0 <= position < len(self) or position in self._ahead:
            return
        if self._reader is None:
            self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="samroto-frames")
        self._ahead[position] = self._reader.submit(self._pixels, position)
        while len(self._ahead) > 2:  # frames asked for and never used (a pass that stopped)
            self._ahead.popitem(last=False)

    def _pixels(self, position: int) -> np.ndarray:
        if self._source is not None:
            return self._source.read_uint8(self.frame_numbers[position])
        image = np.asarray(self._arrays[position])
        if image.shape[:2] != (self.height, self.width):
            raise ValueError(f"frame {position} is {image.shape[1]}x{image.shape[0]}, the first frame "
                             f"{self.width}x{self.height}; all frames must have one size")
        return image
