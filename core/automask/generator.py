"""AutoMaskGenerator: every object on a frame, from a grid of point prompts.

The algorithm and its parameters are those of Meta's ``SAM2AutomaticMaskGenerator``
(sam2 1.1.0), and so are the masks (tests/test_automask_parity.py): for each crop (the
whole frame, plus overlapping crops when ``crop_n_layers`` > 0) the image encoder runs
once; a grid of single positive clicks goes through the mask decoder; each click's masks
are kept when the model's predicted IoU and the mask's stability are high enough, the mask
does not end at an inner edge of the crop, and no better-scored mask has nearly the same
box. samroto differs in how, not what: it decodes in batches sized to the device (on a CPU,
a few prompts at a time: the decoder is memory-bound there), upsamples only the masks that
passed the IoU filter, a bounded chunk at a time, and holds the kept masks as run lengths.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Generator

import numpy as np
import torch

from samroto.core.image_predictor import ImagePredictor

from . import rle as rle_codec
from .boxes import masks_to_boxes, near_crop_edge, nms, xyxy_to_xywh
from .errors import Cancelled, frame_too_large
from .grid import crop_boxes, layer_grids
from .masks import remove_small_regions, stability_scores, upsample
from .memory import Budget, full_res_bytes_per_mask, is_out_of_memory, release

OUTPUT_MODES = ("binary_mask", "uncompressed_rle", "coco_rle")
# Decoder calls in flight at once on a CPU: one per thread up to this many (each holds its
# own working set: 3 prompts at 1024 are about 130 MB)
MAX_CPU_WORKERS = 8


@dataclass(frozen=True)
class Progress:
    """Where a generation is: ``done`` of ``total`` decoder prompts (grid points, plus each
    refined mask with ``use_m2m``), working on crop ``crop`` (0-based) of ``crops``."""
    done: int
    total: int
    crop: int
    crops: int


class _Masks:
    """Kept masks in parallel arrays: run lengths (of frame-sized masks), boxes (int64
    [k, 4] xyxy), predicted IoU, stability, prompt point (float32 [k, 2]), crop (int64 [k, 4])."""

    def __init__(self, rles=None, boxes=None, iou=None, stability=None, points=None, crops=None):
        self.rles = rles or []
        self.boxes = boxes if boxes is not None else torch.zeros(0, 4, dtype=torch.int64)
        self.iou = iou if iou is not None else torch.zeros(0)
        self.stability = stability if stability is not None else torch.zeros(0)
        self.points = points if points is not None else torch.zeros(0, 2)
        self.crops = crops if crops is not None else torch.zeros(0, 4, dtype=torch.int64)

    def __len__(self):
        return len(self.rles)

    @classmethod
    def cat(cls, parts: list["_Masks"]) -> "_Masks":
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls()
        return cls([r for p in parts for r in p.rles], *(torch.cat([getattr(p, name) for p in parts])
                                                          for name in ("boxes", "iou", "stability", "points",
                                                                       "crops")))

    def take(self, index: torch.Tensor) -> "_Masks":
        index = index.cpu()
        return _Masks([self.rles[i] for i in index.tolist()], self.boxes[index], self.iou[index],
                      self.stability[index], self.points[index],
                      self.crops[index] if len(self.crops) else self.crops)  # no crops yet inside a crop


class _Tally:
    def __init__(self, total: int, crops: int):
        self.done, self.total, self.crop, self.crops = 0, total, 0, crops

    def step(self, prompts: int = 0) -> Progress:
        self.done += prompts
        return Progress(self.done, self.total, self.crop, self.crops)


class AutoMaskGenerator:
    """Masks of everything on an image, with Meta's parameters, defaults and records.

    model: a samroto SAM 2 model (``samroto.core.build_model``). The parameters after it are
    Meta's (``SAM2AutomaticMaskGenerator``) with the same meanings and defaults:

    points_per_side / point_grids: the prompt grid (exactly one of them; ``point_grids`` is
      one [n, 2] array of (x, y) fractions per crop layer). points_per_batch: prompts
      filtered together (the decoder itself runs in batches sized to the device, below).
    pred_iou_thresh (kept when above), stability_score_thresh (kept when at least),
      stability_score_offset, mask_threshold (logit where a pixel is in the mask).
    box_nms_thresh: box IoU above which the lower-scored of two masks of a crop is dropped.
    crop_n_layers, crop_nms_thresh, crop_overlap_ratio, crop_n_points_downscale_factor:
      extra passes over 2^i x 2^i overlapping crops; between crops the smaller crop's mask wins.
    min_mask_region_area: holes and specks of at most this many low-res (model-output)
      pixels are filled/removed before the filters (Meta's CUDA-only post-processing; here
      on every device).
    output_mode: "binary_mask" (bool [H, W] arrays), "uncompressed_rle" or "coco_rle"
      (needs pycocotools).
    use_m2m: refine each mask once more with itself as the mask prompt.
    multimask_output: three masks per click (else one).

    samroto's own, keyword only: precision ("auto", "float32", "bfloat16"; core/precision.py),
    decoder_batch (prompts per decoder call; None: 4 on a CPU, points_per_batch elsewhere,
    lowered to fit), memory_budget (bytes the generator may hold on the device; None: half
    of what is free).

    Records (one dict per mask, Meta's keys): segmentation, area (pixels), bbox (x, y, w, h
    of the set pixels, w/h one less than the pixel span), predicted_iou, point_coords
    ([[x, y]] of the prompt, image pixels), stability_score, crop_box (x, y, w, h).
    """

    def __init__(self, model, points_per_side: int | None = 32, points_per_batch: int = 64,
                 pred_iou_thresh: float = 0.8, stability_score_thresh: float = 0.95,
                 stability_score_offset: float = 1.0, mask_threshold: float = 0.0,
                 box_nms_thresh: float = 0.7, crop_n_layers: int = 0, crop_nms_thresh: float = 0.7,
                 crop_overlap_ratio: float = 512 / 1500, crop_n_points_downscale_factor: int = 1,
                 point_grids: list[np.ndarray] | None = None, min_mask_region_area: int = 0,
                 output_mode: str = "binary_mask", use_m2m: bool = False, multimask_output: bool = True,
                 *, precision: str = "auto", decoder_batch: int | None = None, memory_budget: int | None = None):
        if (points_per_side is None) == (point_grids is None):
            raise ValueError("give exactly one of points_per_side and point_grids")
        if crop_n_layers < 0:
            raise ValueError(f"crop_n_layers must be 0 or more, got {crop_n_layers}")
        if points_per_side is not None:
            if points_per_side < 1:
                raise ValueError(f"points_per_side must be at least 1, got {points_per_side}")
            if crop_n_points_downscale_factor < 1:
                raise ValueError(f"crop_n_points_downscale_factor must be at least 1, got "
                                 f"{crop_n_points_downscale_factor}")
            self.point_grids = layer_grids(points_per_side, crop_n_layers, crop_n_points_downscale_factor)
        else:
            self.point_grids = [np.asarray(g, dtype=np.float64).reshape(-1, 2) for g in point_grids]
            if len(self.point_grids) < crop_n_layers + 1:
                raise ValueError(f"point_grids has {len(self.point_grids)} grid(s); crop_n_layers="
                                 f"{crop_n_layers} needs one per layer ({crop_n_layers + 1})")
        if output_mode not in OUTPUT_MODES:
            raise ValueError(f"output_mode must be one of {', '.join(OUTPUT_MODES)}, got {output_mode!r}")
        if output_mode == "coco_rle":
            try:
                import pycocotools.mask  # noqa: F401
            except ImportError:
                raise ImportError("output_mode='coco_rle' needs pycocotools (pip install pycocotools); "
                                  "'uncompressed_rle' needs nothing") from None
        if points_per_batch < 1:
            raise ValueError(f"points_per_batch must be at least 1, got {points_per_batch}")
        if decoder_batch is not None and decoder_batch < 1:
            raise ValueError(f"decoder_batch must be at least 1, got {decoder_batch}")
        self.predictor = ImagePredictor(model, precision=precision)
        self.points_per_batch = int(points_per_batch)
        self.pred_iou_thresh = pred_iou_thresh
        self.stability_score_thresh = stability_score_thresh
        self.stability_score_offset = stability_score_offset
        self.mask_threshold = mask_threshold
        self.box_nms_thresh = box_nms_thresh
        self.crop_n_layers = int(crop_n_layers)
        self.crop_nms_thresh = crop_nms_thresh
        self.crop_overlap_ratio = crop_overlap_ratio
        self.crop_n_points_downscale_factor = crop_n_points_downscale_factor
        self.min_mask_region_area = min_mask_region_area
        self.output_mode = output_mode
        self.use_m2m = use_m2m
        self.multimask_output = multimask_output
        self.decoder_batch = decoder_batch
        self.memory_budget = memory_budget

    @property
    def model(self):
        return self.predictor.model

    @property
    def device(self) -> torch.device:
        return self.predictor.device

    # -- public ---------------------------------------------------------------------------------
    def generate(self, image, progress: Callable[[int, int], None] | None = None, cancel=None) -> list[dict]:
        """Records of the masks found on ``image`` (RGB uint8 [H, W, 3]), best first.

        progress(done, total): called after the image encoder and after each round of decoder
        calls (a few prompts each). cancel: a threading.Event or a callable returning True;
        checked at the same points, it raises :class:`Cancelled`."""
        steps = self.steps(image)
        while True:
            try:
                step = next(steps)
            except StopIteration as finished:
                return finished.value
            if progress is not None:
                progress(step.done, step.total)
            if cancel is not None and (cancel.is_set() if hasattr(cancel, "is_set") else cancel()):
                steps.close()
                raise Cancelled(f"cancelled after {step.done} of {step.total} prompts")

    def steps(self, image, features=None) -> Generator[Progress, None, list[dict]]:
        """``generate`` a step per ``next()`` (the image encoder of a crop, or a round of decoder
        calls): yields :class:`Progress`, returns the records (for a caller that runs work step
        by step, as the bridge's work queue does). ``features``: a zero-argument callable giving
        the whole image's ``backbone_fpn`` (``ImagePredictor.set_image_features``), used for the
        whole-image crop instead of running the image encoder (a video session's cached
        features of the frame)."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image [H, W, 3], got {image.dtype} {image.shape}")
        height, width = image.shape[:2]
        boxes, layers = crop_boxes(height, width, self.crop_n_layers, self.crop_overlap_ratio)
        per_point = 1 + (3 if self.multimask_output else 1) * self.use_m2m
        tally = _Tally(sum(len(self.point_grids[layer]) for layer in layers) * per_point, len(boxes))
        # On a CPU decoder calls run side by side on workers of their own (see _decode_wave)
        workers = min(torch.get_num_threads(), MAX_CPU_WORKERS) if self.device.type == "cpu" else 1
        budget = Budget(self.model, self.device, self.points_per_batch, self.decoder_batch, self.memory_budget,
                        workers)
        if not budget.fits(height, width, height, width):
            raise frame_too_large(width, height, full_res_bytes_per_mask(height, width, height, width),
                                  budget.available, self.device)
        found = []
        pool = ThreadPoolExecutor(workers, thread_name_prefix="samroto-automask") if workers > 1 else None
        try:
            for index, (box, layer) in enumerate(zip(boxes, layers)):
                tally.crop = index
                found.append((yield from self._crop(image, box, layer, budget, tally, pool, features)))
        finally:
            self.predictor.reset_predictor()
            if pool is not None:
                pool.shutdown()
        masks = _Masks.cat(found)
        if len(boxes) > 1 and len(masks):
            # between crops the mask from the smaller crop wins
            areas = (masks.crops[:, 2] - masks.crops[:, 0]) * (masks.crops[:, 3] - masks.crops[:, 1])
            masks = masks.take(nms(masks.boxes.float(), 1 / areas, self.crop_nms_thresh))
        return self._records(masks, height, width)

    # -- one crop -------------------------------------------------------------------------------
    def _crop(self, image, box, layer, budget, tally, pool, features=None):
        x0, y0, x1, y1 = box
        crop = image[y0:y1, x0:x1]
        height, width = crop.shape[:2]
        if features is not None and crop.shape == image.shape:
            self.predictor.set_image_features(features(), (height, width))
        else:
            self.predictor.set_image(crop)  # the image encoder: once per crop
        yield tally.step()
        points = self.point_grids[layer] * np.array([[width, height]])
        parts = []
        for start in range(0, len(points), self.points_per_batch):
            batch = points[start:start + self.points_per_batch]
            parts.append((yield from self._batch(batch, (height, width), box, image.shape[:2], budget, tally,
                                                 pool)))
        self.predictor.reset_predictor()
        masks = _Masks.cat(parts)
        masks = masks.take(nms(masks.boxes.float(), masks.iou, self.box_nms_thresh))
        offset = torch.tensor([x0, y0])
        masks.boxes = masks.boxes + offset.repeat(2)
        masks.points = masks.points + offset
        masks.crops = torch.tensor([box], dtype=torch.int64).repeat(len(masks), 1)
        return masks

    def _decode(self, points, budget, tally, pool, mask_input=None, multimask=True):
        """Low-res logits [n, C, h, w] and IoU [n, C] of prompts ``points`` [n, 2] (crop pixels),
        budget.decoder_batch prompts a call (halved when the device runs out of memory), one
        wave of calls (one per worker) a step."""
        lows, ious = [], []
        start = 0
        while start < len(points):
            size = budget.decoder_batch
            stop = min(start + size * budget.workers, len(points))
            wave = [(s, min(s + size, len(points))) for s in range(start, stop, size)]
            try:
                parts = self._decode_wave(points, wave, mask_input, multimask, pool, budget.workers)
            except Exception as exc:  # noqa: BLE001 - only running out of memory is handled
                if not is_out_of_memory(exc) or size == 1:
                    raise
                release(self.device)
                budget.decoder_batch = max(1, size // 2)
                continue
            for low, iou in parts:
                lows.append(low)
                ious.append(iou)
            end = wave[-1][1]
            yield tally.step(end - start)
            start = end
        return torch.cat(lows), torch.cat(ious)

    def _decode_wave(self, points, wave, mask_input, multimask, pool, workers):
        """Decoder calls for the (start, end) ranges of ``wave``. On a CPU with several threads
        the calls run side by side, each on a worker of its own with its share of the threads
        (one each up to MAX_CPU_WORKERS threads): the decoder at a few prompts a call is many
        short operations, and threads that each run a call of their own keep every core busy
        without a barrier between them after every operation (docs/automask.md). Each call
        then computes the same numbers on any CPU with up to MAX_CPU_WORKERS threads."""
        def call(bounds):
            s, e = bounds
            return self.predictor.predict_low_res(
                points[s:e, None, :], torch.ones(e - s, 1, dtype=torch.int32),
                mask_input=None if mask_input is None else mask_input[s:e], multimask_output=multimask)

        if pool is None:
            return [call(bounds) for bounds in wave]
        with _threads_each(workers):
            return list(pool.map(call, wave))

    def _batch(self, points, crop_hw, box, frame_hw, budget, tally, pool):
        """One batch of grid points: decode, filter, and keep what passes as run lengths."""
        crop_h, crop_w = crop_hw
        points = torch.as_tensor(points, dtype=torch.float32)
        low, iou = yield from self._decode(points, budget, tally, pool, multimask=self.multimask_output)
        per_point = low.shape[1]
        low, iou = low.flatten(0, 1), iou.flatten(0, 1)
        points = points.repeat_interleave(per_point, dim=0)
        if self.use_m2m:
            # every mask (not only those that pass) is decoded again with itself as the mask prompt
            mask_input = torch.clamp(low, -32.0, 32.0)[:, None]
            low, iou = yield from self._decode(points, budget, tally, pool, mask_input=mask_input, multimask=False)
            low, iou = low[:, 0], iou[:, 0]
        if self.pred_iou_thresh > 0.0:
            keep = (iou > self.pred_iou_thresh).cpu()
            low, iou, points = low[keep.to(low.device)], iou[keep.to(iou.device)], points[keep]
        low = remove_small_regions(low, self.min_mask_region_area, self.mask_threshold)
        frame_h, frame_w = frame_hw
        chunk = budget.chunk(crop_h, crop_w, frame_h, frame_w)
        parts = []
        start = 0
        while start < len(low):
            end = min(start + chunk, len(low))
            try:
                parts.append(self._full_res(low[start:end], iou[start:end].float().cpu(), points[start:end],
                                            crop_hw, box, frame_hw))
            except Exception as exc:  # noqa: BLE001 - only running out of memory is handled
                if not is_out_of_memory(exc):
                    raise
                release(self.device)
                if chunk == 1:
                    raise frame_too_large(frame_w, frame_h, full_res_bytes_per_mask(crop_h, crop_w, frame_h, frame_w),
                                          None, self.device) from exc
                chunk = max(1, chunk // 2)
                continue
            start = end
            if start < len(low):
                yield tally.step()  # a chance to cancel between chunks
        return _Masks.cat(parts)

    def _full_res(self, low, iou, points, crop_hw, box, frame_hw) -> _Masks:
        """Stability filter, masks, boxes and the crop-edge filter at the crop's full size."""
        crop_h, crop_w = crop_hw
        logits = upsample(low, crop_h, crop_w)
        stability = stability_scores(logits, self.mask_threshold, self.stability_score_offset)
        if self.stability_score_thresh > 0.0:
            keep = stability >= self.stability_score_thresh
            logits, stability = logits[keep], stability[keep]
            keep = keep.cpu()
            iou, points = iou[keep], points[keep]
        masks = logits > self.mask_threshold
        del logits
        boxes = masks_to_boxes(masks)
        frame_h, frame_w = frame_hw
        edge = near_crop_edge(boxes, box, [0, 0, frame_w, frame_h])
        if edge.any():
            keep = ~edge
            masks, boxes, stability = masks[keep], boxes[keep], stability[keep]
            keep = keep.cpu()
            iou, points = iou[keep], points[keep]
        x0, y0, x1, y1 = box
        if (x0, y0, x1, y1) != (0, 0, frame_w, frame_h):  # place the crop's masks in the frame
            masks = torch.nn.functional.pad(masks, (x0, frame_w - x1, y0, frame_h - y1), value=False)
        return _Masks(rle_codec.encode(masks), boxes.cpu(), iou, stability.float().cpu(), points)

    # -- records --------------------------------------------------------------------------------
    def _records(self, masks: _Masks, height: int, width: int) -> list[dict]:
        records = []
        for i in range(len(masks)):
            rle = rle_codec.to_dict(masks.rles[i], height, width)
            if self.output_mode == "binary_mask":
                segmentation = rle_codec.decode(rle)
            elif self.output_mode == "coco_rle":
                segmentation = rle_codec.to_coco(rle)
            else:
                segmentation = rle
            records.append({
                "segmentation": segmentation,
                "area": rle_codec.area(masks.rles[i]),
                "bbox": xyxy_to_xywh(masks.boxes[i].float()),
                "predicted_iou": float(masks.iou[i]),
                "point_coords": [masks.points[i].tolist()],
                "stability_score": float(masks.stability[i]),
                "crop_box": xyxy_to_xywh(masks.crops[i].float()),
            })
        return records


@contextlib.contextmanager
def _threads_each(workers: int):
    """torch's intra-op threads (a process-wide setting) shared out among ``workers`` calls
    running at once, back as they were after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads // workers))
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def mask_of(record: dict) -> np.ndarray:
    """The bool [H, W] mask of a record, whatever its output mode."""
    segmentation = record["segmentation"]
    if isinstance(segmentation, np.ndarray):
        return segmentation.astype(bool, copy=False)
    if isinstance(segmentation.get("counts"), str):  # COCO compressed
        from pycocotools import mask as coco_mask

        return coco_mask.decode({**segmentation, "counts": segmentation["counts"].encode("utf-8")}).astype(bool)
    return rle_codec.decode(segmentation)
