"""VideoSession: prompts on any frame, several objects, propagation through a clip.

Meta's SAM2VideoPredictor semantics (per-object memory banks, conditioning frames,
corrections on tracked frames, forward/backward propagation), rebuilt for long shots:
frames are decoded when needed, image features live in a cache bounded in bytes, the
memory bank keeps only what attention can read, and per-frame results are compact
low-res logits in a bounded store (or handed out as they are made). Positions are
0..T-1 of the frame source; callers map source frame numbers (FrameSource.frame_numbers).
See docs/video.md.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F

from samroto.core.host_memory import release_free_memory
from samroto.core.model.sam2 import NO_OBJ_SCORE
from samroto.core.precision import compute_precision, resolve_precision

from .feature_cache import FeatureCache
from .frames import ModelFrames
from .passes import DIRECTIONS, Pass, plan_passes
from .memory import (FrameOutput, ObjectBank, TrackOptions, apply_non_overlapping_constraints, encode_new_memory,
                     fill_holes, select_memory, track_step)

# Official option names a session accepts (their official meaning), and samroto's own defaults.
TRACKING_OPTIONS = (
    "add_all_frames_to_correct_as_cond", "clear_non_cond_mem_around_input", "clear_non_cond_mem_for_multi_obj",
    "fill_hole_area", "non_overlap_masks", "max_cond_frames_in_attn", "memory_temporal_stride_for_eval",
    "max_obj_ptrs_in_encoder", "binarize_mask_from_pts_for_mem_enc", "non_overlap_masks_for_mem_enc",
    "multimask_output_for_tracking", "multimask_output_in_sam", "multimask_min_pt_num", "multimask_max_pt_num",
    "only_obj_ptrs_in_the_past_for_eval", "use_mask_input_as_output_without_sam",
    "sigmoid_scale_for_mem_enc", "sigmoid_bias_for_mem_enc",
)
SAMROTO_DEFAULTS = {
    # a correction on a tracked frame becomes a conditioning frame, so it sticks
    # (Meta: False, and the next propagation silently recomputes the frame from memory)
    "add_all_frames_to_correct_as_cond": True,
}
MiB = 1 << 20


class _Track:
    """One object: its prompts, memory bank, not-yet-committed outputs and tracked frames."""

    def __init__(self, obj_id: int, num_frames: int):
        self.obj_id = obj_id
        self.points: dict[int, dict] = {}
        self.masks: dict[int, torch.Tensor] = {}
        self.bank = ObjectBank()
        self.temp: dict[bool, dict[int, FrameOutput]] = {True: {}, False: {}}
        self.tracked = bytearray(num_frames)  # 0 not yet, 1 forward, 2 backward
        self.version = 1  # goes up with every prompt or mask of this object
        self.computed = [0] * num_frames  # the version each frame's result was tracked with
        self.reuse = None  # during a pass: {frame: logits} still current, or None: track it
        # frame -> (candidate low-res logits [3, 1, h, w], predicted IoU [3]) of the latest
        # prompt there when SAM 2 made several (a single click); see VideoSession.candidates
        self.candidates: dict[int, tuple] = {}

    def is_tracked(self, frame):
        return self.tracked[frame] != 0


class VideoSession:
    """Track objects through ``frames``.

    frames: a FrameSource (``samroto.core.io.open_frames``), a sequence of RGB uint8
      arrays, or model-ready normalised frames ``[T, 3, S, S]`` with ``video_size=(H, W)``.
    feature_cache_bytes: budget of the image-feature cache (re-propagation reuses it).
    results_cache_bytes: budget of stored low-res logits of tracked (non-prompted) frames,
      used for corrections on tracked frames and :meth:`logits`.
    cancel: a callable returning True, or a threading.Event, checked before every frame.
    precision: "auto" (bfloat16 on CUDA and on CPUs with native bfloat16), "float32"
      (Meta's numbers) or "bfloat16"; see core/precision.py.
    object_batch: at most this many objects through the model at once (None or 0: all).
      Smaller batches hold fewer activations at once: on the 2-core CPU of docs/speed.md,
      three objects one at a time peaked 6% lower and took 13% longer per frame.
    options: official SAM 2 option names (see TRACKING_OPTIONS), official meanings.
    """

    def __init__(self, model, frames, video_size=None, feature_cache_bytes=1024 * MiB,
                 results_cache_bytes=256 * MiB, cancel=None, precision="auto", object_batch=None, **options):
        unknown = sorted(set(options) - set(TRACKING_OPTIONS))
        if unknown:
            raise TypeError(f"VideoSession: unknown option(s) {unknown}; known: {sorted(TRACKING_OPTIONS)}")
        self.model = model
        self.opts = TrackOptions(model, {**SAMROTO_DEFAULTS, **options})
        self.frames = ModelFrames(frames, model.image_size, video_size)
        self.num_frames = len(self.frames)
        self.video_size = (self.frames.height, self.frames.width)
        self.device = model.device
        self.dtype = resolve_precision(precision, self.device)
        # what the model computes in (a CPU keeps float32 tensors, see core/precision.py)
        self._tensor_dtype = torch.float32 if self.device.type == "cpu" else self.dtype
        self.object_batch = object_batch
        self.cancel = cancel
        self.cancelled = False
        self.features = FeatureCache(feature_cache_bytes)
        self.results_cache_bytes = int(results_cache_bytes)
        self._pos_enc = None  # backbone positional encodings: the same for every frame
        self._maskmem_pos_enc = None  # memory positional encoding: the same for every frame
        self._tracks: dict[int, _Track] = {}
        self._logits: OrderedDict = OrderedDict()  # (obj_id, frame) -> [1, 1, h, w] low-res logits
        self._logits_bytes = 0

    # ------------------------------------------------------------------ public API

    @property
    def obj_ids(self) -> list[int]:
        return list(self._tracks)

    def add_prompt(self, frame, obj_id, points=None, labels=None, box=None, clear=True, low_res=False):
        """Clicks and/or a box for one object on one frame (source-image pixels, x right,
        y down; labels 1 include, 0 exclude). Returns (obj_ids, logits[n_obj, H, W])
        for that frame (``low_res``: the model's S/4 x S/4 logits)."""
        frame = self._check_frame(frame)
        if (points is None) != (labels is None):
            raise ValueError("give points and labels together (one label per point)")
        if points is None and box is None:
            raise ValueError("add_prompt needs points (with labels) or a box")
        height, width = self.video_size
        if points is None:
            coords = torch.zeros(1, 0, 2)
            labs = torch.zeros(1, 0, dtype=torch.int32)
        else:
            coords = torch.as_tensor(np.asarray(points, dtype=np.float32)).reshape(1, -1, 2)
            labs = torch.as_tensor(np.asarray(labels, dtype=np.int32)).reshape(1, -1)
            if coords.shape[1] != labs.shape[1]:
                raise ValueError(f"{coords.shape[1]} point(s) but {labs.shape[1]} label(s); give one label per point")
        if box is not None:
            if not clear:
                raise ValueError("a box can only be given with clear=True (it starts the frame's prompt afresh)")
            box_t = torch.as_tensor(np.asarray(box, dtype=np.float32)).reshape(1, 2, 2)
            coords = torch.cat([box_t, coords], dim=1)
            labs = torch.cat([torch.tensor([[2, 3]], dtype=torch.int32), labs], dim=1)
        # source pixels -> model-input pixels (the model sees the frame squashed to S x S)
        coords = coords / torch.tensor([width, height], dtype=torch.float32) * self.model.image_size
        new = {"point_coords": coords.to(self.device), "point_labels": labs.to(self.device)}

        track = self._track(obj_id)
        old = None if clear else track.points.get(frame)
        if old is not None:
            new = {"point_coords": torch.cat([old["point_coords"], new["point_coords"]], dim=1),
                   "point_labels": torch.cat([old["point_labels"], new["point_labels"]], dim=1)}
        track.points[frame] = new
        track.masks.pop(frame, None)
        return self._interact(track, frame, point_inputs=new, mask_inputs=None, low_res=low_res)

    def add_mask(self, frame, obj_id, mask, low_res=False):
        """A mask (H x W at video or model resolution; non-zero = inside) for one object
        on one frame. Returns (obj_ids, logits[n_obj, H, W]) for that frame."""
        frame = self._check_frame(frame)
        mask_t = torch.as_tensor(np.asarray(mask)).bool()
        if mask_t.dim() != 2:
            raise ValueError(f"a mask must be 2-D [H, W], got shape {tuple(mask_t.shape)}")
        mask_in = mask_t[None, None].float().to(self.device)
        size = self.model.image_size
        if tuple(mask_in.shape[-2:]) != (size, size):
            mask_in = F.interpolate(mask_in, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
            mask_in = (mask_in >= 0.5).float()
        track = self._track(obj_id)
        track.masks[frame] = mask_in
        track.points.pop(frame, None)
        return self._interact(track, frame, point_inputs=None, mask_inputs=mask_in, low_res=low_res)

    def propagate(self, start=None, reverse=False, max_frames=None, direction=None, low_res=False, cancel=None):
        """Track every object through the clip, yielding (frame, obj_ids, logits[n_obj, H, W])
        frame by frame in processing order.

        start: first position (default: core/video/passes.py's rule: the first prompted
          frame going forward, the last going backward; Meta starts both at the first).
        direction: "forward", "backward" or "both" (forward from start, then backward from
          start - 1); default from ``reverse``. max_frames: at most this many frames per
        direction. Stops early (``self.cancelled``) when the cancel hook fires."""
        direction = direction or ("backward" if reverse else "forward")
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be forward, backward or both, got {direction!r}")
        self.cancelled = False
        self._commit_prompts()
        prompted = sorted({t for tr in self._tracks.values() for t in tr.bank.cond})
        passes = plan_passes(self.num_frames, prompted, direction,
                             start=None if start is None else self._check_frame(start))
        for one in passes:
            if max_frames is not None:
                one = Pass(one.start, one.reverse, min(one.count, max(0, int(max_frames))))
            yield from self._propagate_pass(one, low_res, cancel)
            if self.cancelled:
                return

    # ------------------------------------------------------------------ interactive loop

    @property
    def encoder_runs(self) -> int:
        """How many times the image encoder has run in this session (each frame once while
        its features stay in the feature cache)."""
        return self.features.misses

    def is_tracked(self, frame, obj_id) -> bool:
        """Whether a propagation has passed through ``frame`` for the object (a prompt there is
        then a correction, which uses the object's memory)."""
        track = self._tracks.get(obj_id)
        return track is not None and track.is_tracked(self._check_frame(frame))

    def prompt_frames(self, obj_id) -> list[int]:
        """Positions where the object has a prompt (points, box or mask), ascending."""
        track = self._tracks.get(obj_id)
        if track is None:
            return []
        return sorted(set(track.points) | set(track.masks) | set(track.bank.cond) | set(track.temp[True]))

    def forget_prompt(self, frame, obj_id) -> bool:
        """Forget the object's prompt and result on a frame no propagation has passed through,
        so that the next prompt there starts afresh, exactly as in a new session given the
        same prompts (no earlier logits fed back in). A tracked frame keeps what it has: a
        prompt there is a correction. Returns whether something was forgotten."""
        frame = self._check_frame(frame)
        track = self._tracks.get(obj_id)
        if track is None or track.is_tracked(frame):
            return False
        found = False
        for table in (track.points, track.masks, track.candidates, track.temp[True], track.temp[False],
                      track.bank.cond):
            found = table.pop(frame, None) is not None or found
        if found:
            track.version += 1
        return found

    def candidates(self, frame, obj_id, low_res=True):
        """SAM 2's candidate masks for the object's latest prompt on ``frame`` when that prompt
        was ambiguous (a single click: ``multimask_output``), else None. Returns (logits
        [3, H, W] (``low_res``: the model's S/4 x S/4), predicted IoU [3], index of the best
        one, which is what the prompt gave)."""
        track = self._tracks.get(obj_id)
        found = None if track is None else track.candidates.get(self._check_frame(frame))
        if found is None:
            return None
        logits, ious = found
        ious = ious.cpu().numpy()
        return self._upsample(logits, low_res), ious, int(np.argmax(ious))

    def choose_candidate(self, frame, obj_id, index, low_res=False):
        """Make candidate ``index`` (0..2, :meth:`candidates`) the object's prompt on ``frame``:
        its mask at video resolution (logits > 0) becomes that frame's mask prompt
        (:meth:`add_mask`), which is what tracking then uses, as SAM 2 allows. The candidates
        stay, so another can be chosen. Returns (obj_ids, logits, mask [H, W] bool): the mask
        is what a host stores as the frame's mask prompt (the same mask in a new session
        gives the same result)."""
        frame = self._check_frame(frame)
        track = self._tracks.get(obj_id)
        found = None if track is None else track.candidates.get(frame)
        if found is None:
            raise ValueError(f"object {obj_id} has no candidates on frame position {frame}: SAM 2 makes three "
                             "for a single click")
        if isinstance(index, bool) or not 0 <= int(index) < found[0].shape[0]:
            raise ValueError(f"candidate must be 0..{found[0].shape[0] - 1}, got {index!r}")
        mask = self._upsample(found[0][int(index):int(index) + 1], low_res=False)[0] > 0
        obj_ids, logits = self.add_mask(frame, obj_id, mask, low_res=low_res)
        track.candidates[frame] = found
        return obj_ids, logits, mask

    def logits(self, frame, low_res=True):
        """The latest known logits of every object on a frame ([n_obj, h, w]; objects with
        nothing stored there, or evicted from the results store, are -1024)."""
        frame = self._check_frame(frame)
        return self._present(self._gather(frame, None), low_res)

    def remove_object(self, obj_id):
        """Forget an object (prompts, memory, results). Returns the remaining obj_ids."""
        if obj_id not in self._tracks:
            raise KeyError(f"no object {obj_id}; objects: {self.obj_ids}")
        del self._tracks[obj_id]
        for key in [k for k in self._logits if k[0] == obj_id]:
            self._drop_logits(key)
        return self.obj_ids

    def reset(self):
        """Forget all objects and results; keep the cached image features."""
        self._tracks.clear()
        self._logits.clear()
        self._logits_bytes = 0
        self.cancelled = False

    def inspect(self, frame, obj_id):
        """An object's stored state on a frame, looked up like Meta's predictor (the newest
        uncommitted output first): dict of low_res_logits [h, w], obj_ptr [C],
        object_score_logits (float), maskmem_features [mem_dim, h, w] or None, where."""
        where, out = self._stored_output(self._tracks[obj_id], frame)
        if out is None:
            return None
        logits = out.pred_masks if out.pred_masks is not None else self._logits.get((obj_id, frame))
        return {
            "where": where,
            "low_res_logits": None if logits is None else logits[0, 0].float().cpu().numpy(),
            "obj_ptr": None if out.obj_ptr is None else out.obj_ptr[0].float().cpu().numpy(),
            "object_score_logits": float(out.object_score_logits.reshape(-1)[0]),
            "maskmem_features": None if out.maskmem_features is None
            else out.maskmem_features[0].float().cpu().numpy(),
        }

    def object_score(self, frame, obj_id):
        """SAM 2's object score logit for an object on frame position ``frame`` (> 0: the
        object is there; otherwise it is occluded or gone and its mask empty); None when the
        object holds nothing there."""
        track = self._tracks.get(int(obj_id))
        _, out = self._stored_output(track, frame) if track is not None else (None, None)
        return None if out is None else float(out.object_score_logits.reshape(-1)[0])

    def load_state(self, frame, obj_id, low_res_logits=None, obj_ptr=None, object_score_logits=None,
                   maskmem_features=None):
        """Replace an object's stored state on a frame (the fields :meth:`inspect` returns,
        as arrays of the same shapes). Only what the session still holds is replaced (a
        pruned memory stays pruned), except that a prompted frame's memory, not yet
        encoded, is taken as given. Step-wise parity loads a reference's state before each
        step (tests/parity_replay.py). Returns the fields replaced."""
        where, out = self._stored_output(self._tracks[obj_id], frame)
        if out is None:
            raise KeyError(f"object {obj_id} holds nothing on frame {frame}")

        def tensor(value, dtype=torch.float32):
            return torch.as_tensor(np.asarray(value, dtype=np.float32))[None].to(self.device, dtype)

        replaced = []
        if low_res_logits is not None:
            if out.pred_masks is not None:
                out.pred_masks = tensor(low_res_logits)[None]
                replaced.append("low_res_logits")
            elif (obj_id, frame) in self._logits:
                self._logits[(obj_id, frame)] = tensor(low_res_logits)[None]
                replaced.append("low_res_logits")
        if obj_ptr is not None and out.obj_ptr is not None:
            out.obj_ptr = tensor(obj_ptr)
            replaced.append("obj_ptr")
        if object_score_logits is not None:
            out.object_score_logits = tensor(np.reshape(object_score_logits, (1,)))
            replaced.append("object_score_logits")
        if maskmem_features is not None and (out.maskmem_features is not None or where.startswith("temp")):
            out.maskmem_features = tensor(maskmem_features, torch.bfloat16)  # stored as bfloat16, as computed
            replaced.append("maskmem_features")
            if self._maskmem_pos_enc is None:  # no encoder run made it: the encoding depends on the size only
                with torch.inference_mode():
                    pos = self.model.memory_encoder.position_encoding(out.maskmem_features)
                self._store_maskmem_pos_enc([pos.to(self._tensor_dtype)])
        return replaced

    def memory_bytes(self) -> dict:
        """Bytes held by the feature cache, the memory banks and the results store."""
        bank = sum(o.nbytes() for tr in self._tracks.values()
                   for table in (tr.bank.cond, tr.bank.non_cond, tr.temp[True], tr.temp[False]) for o in table.values())
        return {"features": self.features.bytes, "memory_bank": bank, "results": self._logits_bytes}

    # ------------------------------------------------------------------ internals

    def _stored_output(self, track, frame):
        """(where, FrameOutput) of a frame, looked up like Meta's predictor: the newest
        uncommitted output first; (None, None) when the object holds nothing there."""
        for where, table in (("temp_cond", track.temp[True]), ("temp_non_cond", track.temp[False]),
                             ("cond", track.bank.cond), ("non_cond", track.bank.non_cond)):
            out = table.get(frame)
            if out is not None:
                return where, out
        return None, None

    def _check_frame(self, frame):
        if isinstance(frame, bool) or int(frame) != frame or not 0 <= int(frame) < self.num_frames:
            raise IndexError(f"frame position {frame!r} is outside 0..{self.num_frames - 1}")
        return int(frame)

    def _track(self, obj_id) -> _Track:
        obj_id = int(obj_id)
        if obj_id not in self._tracks:
            self._tracks[obj_id] = _Track(obj_id, self.num_frames)
        return self._tracks[obj_id]

    def _autocast(self):
        return compute_precision(self.dtype, self.device)

    def image_features(self, frame) -> list:
        """Frame position ``frame``'s backbone levels (``model.forward_image``'s
        ``backbone_fpn``) from the feature cache, running the image encoder only when they
        are not there: for other work on the frame (the automatic mask generator)."""
        return [f.to(self._tensor_dtype) for f in self._backbone(self._check_frame(frame))]

    def _backbone(self, frame):
        def compute():
            with torch.inference_mode(), self._autocast():
                out = self.model.forward_image(self.frames.model_input(frame, self.device))
            if self._pos_enc is None:
                # tracking reads only the lowest-resolution level's encoding; the
                # high-resolution ones (84 MB at 1024) are not kept
                *high_res, last = out["vision_pos_enc"]
                self._pos_enc = [None] * len(high_res) + [last]
            fpn = list(out["backbone_fpn"])
            if self.dtype != torch.float32:
                # Outside float32 the two high-resolution levels (75% of the bytes, read only by
                # the mask decoder's upsampling) are kept as float16: a cached frame costs 10.5
                # MB instead of 16.8 at 1024 (Meta keeps each frame as 12.6 MB of pixels), and
                # masks move by IoU < 0.005 on the parity fixture (bfloat16 storage: 0.04).
                fpn[:-1] = [f.clamp(-65504, 65504).to(torch.float16) for f in fpn[:-1]]
            return fpn
        return self.features.get(frame, compute)

    def _image_features(self, frame, batch):
        fpn = [f.to(self._tensor_dtype) for f in self._backbone(frame)]
        backbone_out = {"backbone_fpn": [f.expand(batch, -1, -1, -1) for f in fpn],
                        "vision_pos_enc": [p if p is None else p.expand(batch, -1, -1, -1) for p in self._pos_enc]}
        _, feats, pos, sizes = self.model.prepare_backbone_features(backbone_out)
        return feats, pos, sizes

    def _is_cancelled(self, cancel):
        for hook in (cancel, self.cancel):
            if hook is None:
                continue
            if (hook.is_set() if hasattr(hook, "is_set") else hook()):
                return True
        return False

    def _store_maskmem_pos_enc(self, pos_enc):
        if self._maskmem_pos_enc is None and pos_enc is not None:
            self._maskmem_pos_enc = [p[0:1].clone() for p in pos_enc]

    @torch.inference_mode()
    def _interact(self, track, frame, point_inputs, mask_inputs, low_res):
        track.version += 1
        is_init = not track.is_tracked(frame)
        reverse = False if is_init else track.tracked[frame] == 2
        is_cond = is_init or bool(self.opts.add_all_frames_to_correct_as_cond)
        prev_logits = None
        if point_inputs is not None:
            prev = self._stored_logits(track, frame, is_cond)
            if prev is not None:
                prev_logits = torch.clamp(prev.to(self.device), -32.0, 32.0)
        selections = None
        if not is_init and not (mask_inputs is not None and self.opts.use_mask_input_as_output_without_sam):
            selections = [select_memory(self.opts, track.bank, frame, self.num_frames, reverse)]
        feats, pos, sizes = self._image_features(frame, 1)
        with self._autocast():
            out = track_step(self.model, self.opts, is_init_cond_frame=is_init, vision_feats=feats,
                             vision_pos_embeds=pos, feat_sizes=sizes, point_inputs=point_inputs,
                             mask_inputs=mask_inputs, selections=selections, num_frames=self.num_frames,
                             run_mem_encoder=False, maskmem_pos_enc=self._maskmem_pos_enc,
                             prev_sam_mask_logits=prev_logits)
        pred = fill_holes(out["pred_masks"].float(), self.opts.fill_hole_area)
        track.temp[is_cond][frame] = FrameOutput(pred_masks=pred, obj_ptr=out["obj_ptr"].float(),
                                                 object_score_logits=out["object_score_logits"].float())
        if out.get("multimasks") is not None:  # the same hole filling as the chosen one got
            multimasks = fill_holes(out["multimasks"][0].float()[:, None], self.opts.fill_hole_area)
            track.candidates[frame] = (multimasks, out["ious"][0].float())
        else:
            track.candidates.pop(frame, None)
        release_free_memory()
        return self.obj_ids, self._present(self._gather(frame, is_cond), low_res)

    def _stored_logits(self, track, frame, is_cond):
        out = track.temp[is_cond].get(frame) or track.bank.cond.get(frame)
        if out is not None:
            return out.pred_masks
        logits = self._logits.get((track.obj_id, frame))
        if logits is not None:
            self._logits.move_to_end((track.obj_id, frame))
        return logits

    def _gather(self, frame, is_cond):
        """Low-res logits [n_obj, 1, h, w] of every object on a frame (-1024 where none)."""
        side = self.model.image_size // 4
        rows = []
        for track in self._tracks.values():
            logits = None
            # the newest first: a prompt of this frame not yet committed (is_cond None: either
            # kind, as inspect() looks them up; a correction is a conditioning one)
            for table in ([track.temp[is_cond]] if is_cond is not None else [track.temp[True], track.temp[False]]):
                out = table.get(frame)
                if out is not None:
                    logits = out.pred_masks
                    break
            if logits is None:
                logits = self._stored_logits(track, frame, False if is_cond is None else is_cond)
            rows.append(logits.float() if logits is not None
                        else torch.full((1, 1, side, side), NO_OBJ_SCORE, device=self.device))
        if not rows:
            return torch.zeros(0, 1, side, side, device=self.device)
        return torch.cat(rows, dim=0)

    def _present(self, low_res_masks, low_res):
        if not low_res:
            masks = F.interpolate(low_res_masks, size=self.video_size, mode="bilinear", align_corners=False)
        else:
            masks = low_res_masks
        if self.opts.non_overlap_masks:
            masks = apply_non_overlapping_constraints(masks)
        return masks[:, 0].float().cpu().numpy()

    def _upsample(self, low_res_masks, low_res):
        """[n, 1, h, w] -> numpy [n, H, W] at video resolution (as _present, with no constraint
        between the rows: they are one object's alternatives)."""
        if not low_res:
            low_res_masks = F.interpolate(low_res_masks, size=self.video_size, mode="bilinear", align_corners=False)
        return low_res_masks[:, 0].float().cpu().numpy()

    def _remember_logits(self, obj_id, frame, logits):
        key = (obj_id, frame)
        self._drop_logits(key)
        self._logits[key] = logits
        self._logits_bytes += logits.element_size() * logits.nelement()
        while self._logits_bytes > self.results_cache_bytes and len(self._logits) > 1:
            old_key = next(iter(self._logits))
            self._drop_logits(old_key)

    def _drop_logits(self, key):
        old = self._logits.pop(key, None)
        if old is not None:
            self._logits_bytes -= old.element_size() * old.nelement()

    @torch.inference_mode()
    def _commit_prompts(self):
        """Encode the memories of prompted frames and move them into the banks (official
        propagate_in_video_preflight). Raises if an object has no prompts."""
        if not self._tracks:
            raise RuntimeError("no objects to track: add a prompt (points, box or mask) first")
        size = self.model.image_size
        for track in self._tracks.values():
            for is_cond in (False, True):
                table = track.bank.cond if is_cond else track.bank.non_cond
                for frame, out in track.temp[is_cond].items():
                    if out.maskmem_features is None:
                        high_res = F.interpolate(out.pred_masks.to(self.device), size=(size, size),
                                                 mode="bilinear", align_corners=False)
                        feats, _, sizes = self._image_features(frame, 1)
                        with self._autocast():
                            mem, pos_enc = encode_new_memory(self.model, self.opts, feats[-1], sizes[-1], high_res,
                                                             out.object_score_logits, is_mask_from_pts=True)
                        self._store_maskmem_pos_enc(pos_enc)
                        out.maskmem_features = mem.to(torch.bfloat16)
                    if is_cond:
                        table[frame] = out
                    else:
                        # a non-conditioning correction: its logits live in the results store
                        self._remember_logits(track.obj_id, frame, out.pred_masks)
                        table[frame] = FrameOutput(None, out.obj_ptr, out.object_score_logits, out.maskmem_features)
                    if self.opts.clear_non_cond_mem_around_input:
                        self._clear_around(track, frame)
                track.temp[is_cond].clear()
            if not track.bank.cond:
                raise RuntimeError(f"object {track.obj_id} has no prompts on any frame; add one or remove it")
            for frame in track.bank.cond:
                track.bank.non_cond.pop(frame, None)

    def _clear_around(self, track, frame):
        reach = self.opts.memory_temporal_stride_for_eval * self.opts.num_maskmem
        for t in range(frame - reach, frame + reach + 1):
            track.bank.non_cond.pop(t, None)

    def _propagate_pass(self, one: Pass, low_res, cancel):
        order, reverse = one.positions, one.reverse  # plan_passes keeps a pass inside the clip
        for track in self._tracks.values():
            track.reuse = self._reuse_plan(track, order, reverse)
        for i, frame in enumerate(order):
            if self._is_cancelled(cancel):
                self.cancelled = True
                return
            if i + 1 < len(order) and self._needs_image(order[i + 1]):
                self.frames.read_ahead(order[i + 1])
            masks = self._track_frame(frame, reverse)
            yield frame, self.obj_ids, self._present(masks, low_res)

    def _needs_image(self, frame):
        """Whether tracking ``frame`` runs the image encoder on it."""
        if frame in self.features:
            return False
        return any(track.reuse is None and frame not in track.bank.cond for track in self._tracks.values())

    @torch.inference_mode()
    def _track_frame(self, frame, reverse):
        tracks = list(self._tracks.values())
        results: list = [None] * len(tracks)
        groups: dict = {}
        for i, track in enumerate(tracks):
            out = track.bank.cond.get(frame)
            if out is not None:
                results[i] = out.pred_masks
                if self.opts.clear_non_cond_mem_around_input:
                    self._clear_around(track, frame)
                continue
            if track.reuse is not None:
                results[i] = track.reuse[frame]
                continue
            selection = select_memory(self.opts, track.bank, frame, self.num_frames, reverse)
            groups.setdefault(selection.key, []).append((i, selection))
        step = self.object_batch or len(tracks)
        batches = [members[i:i + step] for members in groups.values() for i in range(0, len(members), step)]
        for members in batches:
            # objects reading the same memory slots go through the model together
            batch = len(members)
            feats, pos, sizes = self._image_features(frame, batch)
            with self._autocast():
                out = track_step(self.model, self.opts, is_init_cond_frame=False, vision_feats=feats,
                                 vision_pos_embeds=pos, feat_sizes=sizes, point_inputs=None, mask_inputs=None,
                                 selections=[s for _, s in members], num_frames=self.num_frames,
                                 run_mem_encoder=True, maskmem_pos_enc=self._maskmem_pos_enc)
            self._store_maskmem_pos_enc(out["maskmem_pos_enc"])
            pred = fill_holes(out["pred_masks"].float(), self.opts.fill_hole_area)
            mem = out["maskmem_features"].to(torch.bfloat16) if out["maskmem_features"] is not None else None
            for row, (i, _) in enumerate(members):
                track = tracks[i]
                track.bank.non_cond[frame] = FrameOutput(
                    pred_masks=None, obj_ptr=out["obj_ptr"][row:row + 1].float(),
                    object_score_logits=out["object_score_logits"][row:row + 1].float(),
                    maskmem_features=None if mem is None else mem[row:row + 1].clone())
                logits = pred[row:row + 1].clone()
                self._remember_logits(track.obj_id, frame, logits)
                track.computed[frame] = track.version
                results[i] = logits
        for track in tracks:
            track.tracked[frame] = 2 if reverse else 1
            self._prune(track, frame)
        release_free_memory()
        return torch.cat([r.float() for r in results], dim=0)

    def _reuse_plan(self, track, frames, reverse):
        """The object's stored results for a whole pass, when tracking would give them again:
        every frame tracked in this direction since the object's last prompt, and still in
        the results store. Objects track independently, so after a correction only the
        corrected object is tracked again. All or nothing: an object tracked from midway
        would find its earlier memories pruned."""
        if self.opts.non_overlap_masks_for_mem_enc:  # that option couples the objects' memories
            return None
        code = 2 if reverse else 1
        plan = {}
        for frame in frames:
            if frame in track.bank.cond:
                continue
            logits = self._logits.get((track.obj_id, frame))
            if logits is None or track.computed[frame] != track.version or track.tracked[frame] != code:
                return None
            plan[frame] = logits  # held here, so the store may evict it meanwhile
        return plan

    def _prune(self, track, frame):
        """Keep only memories attention can still read: near the current frame or near a
        conditioning frame (where propagations start). Keeps host memory flat."""
        mem_reach = self.opts.num_maskmem * self.opts.memory_temporal_stride_for_eval + 1
        ptr_reach = self.opts.max_obj_ptrs_in_encoder if self.opts.use_obj_ptrs_in_encoder else 0
        anchors = [frame, *track.bank.cond]
        for t in list(track.bank.non_cond):
            out = track.bank.non_cond[t]
            distance = min(abs(t - a) for a in anchors)
            if distance > mem_reach:
                out.maskmem_features = None
            if distance > ptr_reach:
                out.obj_ptr = None
            if out.maskmem_features is None and out.obj_ptr is None:
                del track.bank.non_cond[t]
