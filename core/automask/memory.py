"""How much the generator does at once, from the device's memory.

Two stages hold memory in proportion to how much they do at once: the mask decoder (its
working set grows with the number of point prompts decoded together) and the
full-resolution stage (each kept mask upsampled to the crop's size as float32 logits, with
its thresholded copies). Both are sized here from a budget: ``memory_budget`` when given,
otherwise half the device's free memory. When the device still runs out, the generator
halves what it does at once and tries again; with one prompt or one mask at a time it
gives up with :class:`~samroto.core.automask.errors.FrameTooLargeError`.
"""

from __future__ import annotations

import gc
import os

import torch

# On a CPU the decoder is memory-bound: batches whose working set stays near this size run
# fastest (docs/automask.md: at 1024, 4 prompts a batch took 0.38x the time per prompt of 64).
CPU_DECODER_BYTES = 160 << 20
# Full-resolution logits of this many bytes at most go through the filters at once by
# default (16 masks of a 1024x1024 crop), so memory does not grow with the frame's size.
CHUNK_BYTES = 256 << 20
# The decoder's working set for one point prompt, in units of 4 * transformer_dim * image
# tokens (float32 image tokens): measured 40 MiB a prompt at 1024 (Meta's 64-prompt batches
# peak at 2.6 GB on a CPU).
DECODER_WORKING_SET = 10


def is_out_of_memory(exc: BaseException) -> bool:
    """The device (CUDA, MPS) or host allocator ran out of memory."""
    if isinstance(exc, MemoryError):
        return True
    oom = getattr(torch, "OutOfMemoryError", None)
    if oom is not None and isinstance(exc, oom):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def free_bytes(device: torch.device) -> int | None:
    """Memory the generator may still take on ``device`` (None: unknown)."""
    try:
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
        if device.type == "mps":
            return int(torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory())
        if device.type == "cpu":
            return _host_available()
    except (RuntimeError, AttributeError, OSError):
        return None
    return None


def _host_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def release(device: torch.device) -> None:
    """Give cached device memory back after running out, before trying smaller."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


def decoder_bytes_per_prompt(model) -> int:
    side = model.image_size // 16
    return 4 * DECODER_WORKING_SET * model.sam_mask_decoder.transformer_dim * side * side


def full_res_bytes_per_mask(height: int, width: int, frame_height: int, frame_width: int) -> int:
    """float32 logits of a crop, three bool copies (two stability levels, the mask), the mask
    placed in the frame and its run-length flattening."""
    return 7 * height * width + 2 * frame_height * frame_width


class Budget:
    """The generator's sizes: prompts per decoder batch, masks per full-resolution chunk.
    ``workers``: decoder batches in flight at once (one per CPU thread)."""

    def __init__(self, model, device: torch.device, points_per_batch: int, decoder_batch: int | None,
                 memory_budget: int | None, workers: int = 1):
        self.device = device
        self.workers = max(1, int(workers))
        self.budget = memory_budget
        self.free = None if memory_budget is not None else free_bytes(device)
        available = memory_budget if memory_budget is not None else (self.free // 2 if self.free else None)
        self.available = available
        per_prompt = decoder_bytes_per_prompt(model)
        if decoder_batch is None:
            decoder_batch = CPU_DECODER_BYTES // per_prompt if device.type == "cpu" else points_per_batch
        if available is not None:
            decoder_batch = min(decoder_batch, max(1, available // (per_prompt * self.workers)))
        self.decoder_batch = max(1, min(int(decoder_batch), points_per_batch))

    def chunk(self, height: int, width: int, frame_height: int, frame_width: int) -> int:
        """Masks of a height x width crop (in a frame of frame_*) filtered at once."""
        per_mask = full_res_bytes_per_mask(height, width, frame_height, frame_width)
        target = CHUNK_BYTES if self.available is None else min(CHUNK_BYTES, self.available)
        return max(1, target // per_mask)

    def fits(self, height: int, width: int, frame_height: int, frame_width: int) -> bool:
        """False when even one mask is over the budget: the frame is too large for it."""
        per_mask = full_res_bytes_per_mask(height, width, frame_height, frame_width)
        return self.available is None or per_mask <= max(self.available, 0)
