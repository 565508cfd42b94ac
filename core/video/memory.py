"""The memory side of SAM 2 tracking (Meta's SAM2Base semantics, written for samroto).

A frame is conditioned on what the memory bank holds for its object: the spatial
memories of the conditioning (prompted) frames and of the last ``num_maskmem - 1`` tracked
frames, plus object pointers of up to ``max_obj_ptrs_in_encoder - 1`` earlier frames.
Objects whose banks give the same selection are batched through memory attention, the
SAM heads and the memory encoder together.

Quirks kept on purpose (they are what the official video predictor does, and what its
outputs were recorded with; see tests/data/sam2_parity/README.md):

- spatial memories are stored as bfloat16 and used as float32 (bf16-rounded values);
- an object pointer's temporal position is its frame distance divided by
  ``min(num_frames, max_obj_ptrs_in_encoder) - 1`` (so it depends on the clip length
  when the clip is shorter than 16 frames);
- masks of point-prompted frames are binarized before the memory encoder;
- a "no object" frame (object score <= 0) has mask logits -1024 and gets
  ``no_obj_embed_spatial`` added to its memory (``forward_sam_heads`` does the first).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from samroto.core.model.common import get_1d_sine_pe


@dataclass
class FrameOutput:
    """What one object's track keeps of one frame (tensors have a leading batch of 1)."""

    pred_masks: torch.Tensor | None  # [1, 1, S/4, S/4] low-res logits, float32
    obj_ptr: torch.Tensor | None  # [1, C]
    object_score_logits: torch.Tensor  # [1, 1]
    maskmem_features: torch.Tensor | None = None  # [1, mem_dim, S/16, S/16], bfloat16

    def nbytes(self) -> int:
        return sum(t.element_size() * t.nelement()
                   for t in (self.pred_masks, self.obj_ptr, self.maskmem_features) if t is not None)


@dataclass
class ObjectBank:
    """One object's memory: conditioning frames (kept) and tracked frames (pruned)."""

    cond: dict[int, FrameOutput] = field(default_factory=dict)
    non_cond: dict[int, FrameOutput] = field(default_factory=dict)


class TrackOptions:
    """Official option names: session overrides first, then the model's attributes."""

    def __init__(self, model, overrides=None):
        self.__dict__["_model"] = model
        self.__dict__["_overrides"] = dict(overrides or {})

    def __getattr__(self, name):
        overrides = self.__dict__["_overrides"]
        if name in overrides:
            return overrides[name]
        return getattr(self.__dict__["_model"], name)

    def as_dict(self, names):
        return {n: getattr(self, n) for n in names}


# ------------------------------------------------------------------ memory selection


def select_closest_cond_frames(frame_idx, cond_outputs, max_cond_frame_num):
    """The conditioning frames attention reads (closest before, closest after, then the
    temporally closest others) and the rest."""
    if max_cond_frame_num == -1 or len(cond_outputs) <= max_cond_frame_num:
        return dict(cond_outputs), {}
    if max_cond_frame_num < 2:
        raise ValueError("max_cond_frames_in_attn must be -1 (all) or at least 2")
    selected = {}
    before = max((t for t in cond_outputs if t < frame_idx), default=None)
    if before is not None:
        selected[before] = cond_outputs[before]
    after = min((t for t in cond_outputs if t >= frame_idx), default=None)
    if after is not None:
        selected[after] = cond_outputs[after]
    remaining = max_cond_frame_num - len(selected)
    closest = sorted((t for t in cond_outputs if t not in selected), key=lambda t: abs(t - frame_idx))[:remaining]
    selected.update((t, cond_outputs[t]) for t in closest)
    unselected = {t: v for t, v in cond_outputs.items() if t not in selected}
    return selected, unselected


def memory_frame_positions(opts, frame_idx, reverse):
    """(t_pos, frame) of the non-conditioning memory slots, t_pos 1 (oldest) .. num_maskmem-1."""
    stride = opts.memory_temporal_stride_for_eval
    slots = []
    for t_pos in range(1, opts.num_maskmem):
        t_rel = opts.num_maskmem - t_pos  # frames before the current one
        if t_rel == 1:
            prev = frame_idx + 1 if reverse else frame_idx - 1
        elif not reverse:
            prev = ((frame_idx - 2) // stride) * stride - (t_rel - 2) * stride
        else:
            prev = -(-(frame_idx + 2) // stride) * stride + (t_rel - 2) * stride
        slots.append((t_pos, prev))
    return slots


@dataclass
class MemorySelection:
    """What attention reads for one object on one frame; ``key`` groups objects that
    can be batched (same slots filled by the same frames)."""

    memories: list  # [(t_pos, FrameOutput)]
    pointers: list  # [(temporal position, FrameOutput)]
    key: tuple


def select_memory(opts, bank: ObjectBank, frame_idx, num_frames, reverse) -> MemorySelection:
    if not bank.cond:
        raise RuntimeError("an object without conditioning frames cannot be tracked")
    selected, unselected = select_closest_cond_frames(frame_idx, bank.cond, opts.max_cond_frames_in_attn)
    memories = [(0, t, out) for t, out in selected.items()]
    for t_pos, prev in memory_frame_positions(opts, frame_idx, reverse):
        out = bank.non_cond.get(prev)
        if out is None or out.maskmem_features is None:
            # an unselected conditioning frame among the last frames still counts as memory
            out = unselected.get(prev)
        if out is not None and out.maskmem_features is not None:
            memories.append((t_pos, prev, out))

    pointers = []
    if opts.use_obj_ptrs_in_encoder:
        max_ptrs = min(num_frames, opts.max_obj_ptrs_in_encoder)
        sign = -1 if reverse else 1
        if opts.only_obj_ptrs_in_the_past_for_eval:
            ptr_cond = {t: o for t, o in selected.items() if (t >= frame_idx if reverse else t <= frame_idx)}
        else:
            ptr_cond = selected
        for t, out in ptr_cond.items():
            pos = (frame_idx - t) * sign if opts.use_signed_tpos_enc_to_obj_ptrs else abs(frame_idx - t)
            pointers.append((pos, t, out))
        for t_diff in range(1, max_ptrs):
            t = frame_idx + t_diff if reverse else frame_idx - t_diff
            if t < 0 or t >= num_frames:
                break
            out = bank.non_cond.get(t)
            if out is None or out.obj_ptr is None:
                out = unselected.get(t)
            if out is not None and out.obj_ptr is not None:
                pointers.append((t_diff, t, out))
    key = (tuple((p, t) for p, t, _ in memories), tuple((p, t) for p, t, _ in pointers))
    return MemorySelection([(p, o) for p, _, o in memories], [(p, o) for p, _, o in pointers], key)


# ------------------------------------------------------------------ conditioning


def prepare_memory_conditioned_features(model, opts, is_init_cond_frame, vision_feat, vision_pos, feat_size,
                                        selections, num_frames, maskmem_pos_enc):
    """Fuse the current frame's features [HW, B, C] with the memories of B objects.

    selections: one MemorySelection per object, all with the same ``key``
    (ignored for an initial conditioning frame). Returns [B, C, H, W]."""
    batch = vision_feat.size(1)
    channels = model.hidden_dim
    height, width = feat_size
    if opts.num_maskmem == 0:  # memory disabled: plain SAM
        return vision_feat.permute(1, 2, 0).view(batch, channels, height, width)

    num_ptr_tokens = 0
    if is_init_cond_frame:
        if opts.directly_add_no_mem_embed:
            fused = vision_feat + model.no_mem_embed
            return fused.permute(1, 2, 0).view(batch, channels, height, width)
        memory = [model.no_mem_embed.expand(1, batch, model.mem_dim)]
        memory_pos = [model.no_mem_pos_enc.expand(1, batch, model.mem_dim)]
    else:
        first = selections[0]
        memory, memory_pos = [], []
        spatial_pos = maskmem_pos_enc[-1].expand(batch, -1, -1, -1).flatten(2).permute(2, 0, 1)
        for slot, (t_pos, _) in enumerate(first.memories):
            # stored as bfloat16, read as float32: exactly the official promotion
            feats = torch.cat([sel.memories[slot][1].maskmem_features for sel in selections], dim=0)
            feats = feats.to(device=vision_feat.device, dtype=vision_feat.dtype)
            memory.append(feats.flatten(2).permute(2, 0, 1))
            memory_pos.append(spatial_pos + model.maskmem_tpos_enc[opts.num_maskmem - t_pos - 1])
        if first.pointers:
            ptrs = torch.stack([torch.cat([sel.pointers[i][1].obj_ptr for sel in selections], dim=0)
                                for i in range(len(first.pointers))], dim=0)  # [P, B, C]
            ptrs = ptrs.to(vision_feat.dtype)
            positions = [p for p, _ in first.pointers]
            if opts.add_tpos_enc_to_obj_ptrs:
                max_ptrs = min(num_frames, opts.max_obj_ptrs_in_encoder)
                # official: divides by (max_ptrs - 1); guard the 1-frame clip against 0/0
                t_diff_max = max(max_ptrs - 1, 1)
                tpos_dim = channels if opts.proj_tpos_enc_in_obj_ptrs else model.mem_dim
                obj_pos = torch.tensor(positions, device=vision_feat.device)
                obj_pos = get_1d_sine_pe(obj_pos / t_diff_max, dim=tpos_dim)
                obj_pos = model.obj_ptr_tpos_proj(obj_pos)
                obj_pos = obj_pos.unsqueeze(1).expand(-1, batch, model.mem_dim)
            else:
                obj_pos = ptrs.new_zeros(len(positions), batch, model.mem_dim)
            if model.mem_dim < channels:
                # a C-wide pointer becomes C // mem_dim tokens
                split = channels // model.mem_dim
                ptrs = ptrs.reshape(-1, batch, split, model.mem_dim).permute(0, 2, 1, 3).flatten(0, 1)
                obj_pos = obj_pos.repeat_interleave(split, dim=0)
            memory.append(ptrs)
            memory_pos.append(obj_pos.to(ptrs.dtype))
            num_ptr_tokens = ptrs.shape[0]
        if not memory:
            raise RuntimeError("no memory to attend to (an object without conditioning frames?)")

    memory = torch.cat([m.to(vision_feat.dtype) for m in memory], dim=0)
    memory_pos = torch.cat([m.to(vision_feat.dtype) for m in memory_pos], dim=0)
    fused = model.memory_attention(curr=[vision_feat], curr_pos=[vision_pos], memory=memory,
                                   memory_pos=memory_pos, num_obj_ptr_tokens=num_ptr_tokens)
    return fused.permute(1, 2, 0).view(batch, channels, height, width)


def encode_new_memory(model, opts, vision_feat, feat_size, high_res_masks, object_score_logits,
                      is_mask_from_pts):
    """Memory of a frame from its features [HW, B, C] and predicted masks [B, 1, S, S].
    Returns (maskmem_features [B, mem_dim, h, w] float, maskmem_pos_enc list)."""
    batch = vision_feat.size(1)
    height, width = feat_size
    pix_feat = vision_feat.permute(1, 2, 0).view(batch, model.hidden_dim, height, width)
    masks = high_res_masks
    if opts.non_overlap_masks_for_mem_enc:
        masks = apply_non_overlapping_constraints(masks)
    if opts.binarize_mask_from_pts_for_mem_enc and is_mask_from_pts:
        mask_for_mem = (masks > 0).to(pix_feat.dtype)
    else:
        mask_for_mem = torch.sigmoid(masks)
    if opts.sigmoid_scale_for_mem_enc != 1.0:
        mask_for_mem = mask_for_mem * opts.sigmoid_scale_for_mem_enc
    if opts.sigmoid_bias_for_mem_enc != 0.0:
        mask_for_mem = mask_for_mem + opts.sigmoid_bias_for_mem_enc
    out = model.memory_encoder(pix_feat, mask_for_mem, skip_mask_sigmoid=True)
    features, pos_enc = out["vision_features"], out["vision_pos_enc"]
    if model.no_obj_embed_spatial is not None:
        absent = 1.0 - (object_score_logits > 0).to(features.dtype)
        features = features + absent[..., None, None] * model.no_obj_embed_spatial[..., None, None]
    return features, pos_enc


def apply_non_overlapping_constraints(masks):
    """Where objects overlap keep the highest-scoring one; the others are clamped to <= -10."""
    if masks.size(0) == 1:
        return masks
    best = torch.argmax(masks, dim=0, keepdim=True)
    idx = torch.arange(masks.size(0), device=masks.device)[:, None, None, None]
    return torch.where(best == idx, masks, torch.clamp(masks, max=-10.0))


def use_multimask(opts, is_init_cond_frame, point_inputs):
    num_pts = 0 if point_inputs is None else point_inputs["point_labels"].size(1)
    return bool(opts.multimask_output_in_sam and (is_init_cond_frame or opts.multimask_output_for_tracking)
                and opts.multimask_min_pt_num <= num_pts <= opts.multimask_max_pt_num)


def track_step(model, opts, *, is_init_cond_frame, vision_feats, vision_pos_embeds, feat_sizes, point_inputs,
               mask_inputs, selections, num_frames, run_mem_encoder, maskmem_pos_enc, prev_sam_mask_logits=None):
    """One frame for a batch of objects: condition on memory, SAM heads, optionally the
    memory encoder. Returns a dict of batched tensors: pred_masks, pred_masks_high_res,
    obj_ptr, object_score_logits, maskmem_features (float or None), maskmem_pos_enc."""
    if point_inputs is not None and mask_inputs is not None:
        raise ValueError("points and a mask cannot be given on the same frame at once")
    batch = vision_feats[-1].size(1)
    if len(vision_feats) > 1:
        high_res = [x.permute(1, 2, 0).view(x.size(1), x.size(2), *s) for x, s in zip(vision_feats[:-1], feat_sizes[:-1])]
    else:
        high_res = None
    if mask_inputs is not None and opts.use_mask_input_as_output_without_sam:
        pix_feat = vision_feats[-1].permute(1, 2, 0).view(batch, model.hidden_dim, *feat_sizes[-1])
        sam_out = model.use_mask_as_output(pix_feat, high_res, mask_inputs)
    else:
        pix_feat = prepare_memory_conditioned_features(
            model, opts, is_init_cond_frame, vision_feats[-1], vision_pos_embeds[-1], feat_sizes[-1],
            selections, num_frames, maskmem_pos_enc)
        if prev_sam_mask_logits is not None:
            mask_inputs = prev_sam_mask_logits  # earlier interaction's logits go back in with the clicks
        sam_out = model.forward_sam_heads(pix_feat, point_inputs=point_inputs, mask_inputs=mask_inputs,
                                          high_res_features=high_res,
                                          multimask_output=use_multimask(opts, is_init_cond_frame, point_inputs),
                                          all_high_res=False)
    multimasks, _, ious, low_res, high_res_masks, obj_ptr, score = sam_out
    out = {"pred_masks": low_res, "pred_masks_high_res": high_res_masks, "obj_ptr": obj_ptr,
           "object_score_logits": score, "maskmem_features": None, "maskmem_pos_enc": None,
           # SAM 2's candidates for an ambiguous prompt ([B, 3, h, w] and their predicted IoU
           # [B, 3]) when it made several; pred_masks holds the one with the best IoU
           "multimasks": multimasks if multimasks.size(1) > 1 else None,
           "ious": ious if multimasks.size(1) > 1 else None}
    if run_mem_encoder and opts.num_maskmem > 0:
        out["maskmem_features"], out["maskmem_pos_enc"] = encode_new_memory(
            model, opts, vision_feats[-1], feat_sizes[-1], high_res_masks, score,
            is_mask_from_pts=point_inputs is not None)
    return out


def fill_holes(mask_logits, max_area):
    """SAM 2's fill_hole_area: background regions (logit <= 0, 8-connected) of at most
    ``max_area`` low-res pixels become foreground (logit 0.1). [B, 1, h, w] -> same."""
    if max_area <= 0:
        return mask_logits
    import cv2
    import numpy as np

    background = (mask_logits <= 0).cpu().numpy().astype(np.uint8)
    fill = np.zeros_like(background, dtype=bool)
    for i in range(background.shape[0]):
        count, labels, stats, _ = cv2.connectedComponentsWithStats(background[i, 0], connectivity=8)
        small = np.zeros(count, dtype=bool)
        small[1:] = stats[1:, cv2.CC_STAT_AREA] <= max_area
        fill[i, 0] = small[labels] & (background[i, 0] > 0)
    if not fill.any():
        return mask_logits
    return torch.where(torch.from_numpy(fill).to(mask_logits.device), torch.full_like(mask_logits, 0.1), mask_logits)
