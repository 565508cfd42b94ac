"""SAM2Model: the official SAM2Base module tree, its options, and the single-frame heads.

The memory side of tracking (conditioning a frame on the memory bank, encoding new
memories, track_step) lives in ``samroto.core.video``; every component it needs is here.
"""

import torch
from torch import nn
import torch.nn.functional as F

from .common import MLP
from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder
from .transformer import TwoWayTransformer

# Mask logit given to every pixel when the object-score head says "no object".
NO_OBJ_SCORE = -1024.0

# Official SAM2Base / SAM2VideoPredictor constructor options and their official defaults.
MODEL_OPTION_DEFAULTS = {
    "num_maskmem": 7,
    "image_size": 512,
    "backbone_stride": 16,
    "sigmoid_scale_for_mem_enc": 1.0,
    "sigmoid_bias_for_mem_enc": 0.0,
    "binarize_mask_from_pts_for_mem_enc": False,
    "use_mask_input_as_output_without_sam": False,
    "max_cond_frames_in_attn": -1,
    "directly_add_no_mem_embed": False,
    "use_high_res_features_in_sam": False,
    "multimask_output_in_sam": False,
    "multimask_min_pt_num": 1,
    "multimask_max_pt_num": 1,
    "multimask_output_for_tracking": False,
    "use_multimask_token_for_obj_ptr": False,
    "iou_prediction_use_sigmoid": False,
    "memory_temporal_stride_for_eval": 1,
    "non_overlap_masks_for_mem_enc": False,
    "use_obj_ptrs_in_encoder": False,
    "max_obj_ptrs_in_encoder": 16,
    "add_tpos_enc_to_obj_ptrs": True,
    "proj_tpos_enc_in_obj_ptrs": False,
    "use_signed_tpos_enc_to_obj_ptrs": False,
    "only_obj_ptrs_in_the_past_for_eval": False,
    "pred_obj_scores": False,
    "pred_obj_scores_mlp": False,
    "fixed_no_obj_ptr": False,
    "soft_no_obj_ptr": False,
    "use_mlp_for_obj_ptr_proj": False,
    "no_obj_embed_spatial": False,
    "sam_mask_decoder_extra_args": None,
    "compile_image_encoder": False,
}
# SAM2VideoPredictor's own options (kept on the model; used by samroto.core.video).
VIDEO_OPTION_DEFAULTS = {
    "fill_hole_area": 0,
    "non_overlap_masks": False,
    "clear_non_cond_mem_around_input": False,
    "clear_non_cond_mem_for_multi_obj": False,
    "add_all_frames_to_correct_as_cond": False,
}
MASK_DECODER_EXTRA_ARGS = (
    "dynamic_multimask_via_stability",
    "dynamic_multimask_stability_delta",
    "dynamic_multimask_stability_thresh",
)


class SAM2Model(nn.Module):
    """Same submodules, parameter names and options as the official ``SAM2Base``."""

    def __init__(self, image_encoder, memory_attention, memory_encoder, **options):
        super().__init__()
        unknown = sorted(set(options) - set(MODEL_OPTION_DEFAULTS) - set(VIDEO_OPTION_DEFAULTS))
        if unknown:
            raise TypeError(
                f"SAM2Model: unknown option(s) {unknown}; known options: "
                f"{sorted(MODEL_OPTION_DEFAULTS) + sorted(VIDEO_OPTION_DEFAULTS)}"
            )
        opts = {**MODEL_OPTION_DEFAULTS, **VIDEO_OPTION_DEFAULTS, **options}
        extra = opts["sam_mask_decoder_extra_args"] or {}
        bad_extra = sorted(set(extra) - set(MASK_DECODER_EXTRA_ARGS))
        if bad_extra:
            raise TypeError(
                f"SAM2Model: unknown sam_mask_decoder_extra_args {bad_extra}; known: {list(MASK_DECODER_EXTRA_ARGS)}"
            )
        if opts["proj_tpos_enc_in_obj_ptrs"] and not opts["add_tpos_enc_to_obj_ptrs"]:
            raise ValueError("proj_tpos_enc_in_obj_ptrs needs add_tpos_enc_to_obj_ptrs")
        if opts["fixed_no_obj_ptr"] and not (opts["pred_obj_scores"] and opts["use_obj_ptrs_in_encoder"]):
            raise ValueError("fixed_no_obj_ptr needs pred_obj_scores and use_obj_ptrs_in_encoder")
        for name, value in opts.items():
            setattr(self, name, value)
        if self.soft_no_obj_ptr and not self.pred_obj_scores:
            raise ValueError("soft_no_obj_ptr needs pred_obj_scores")

        self.image_encoder = image_encoder
        self.num_feature_levels = 3 if self.use_high_res_features_in_sam else 1
        if self.use_obj_ptrs_in_encoder:
            # turns an input mask into a mask-prompt for the SAM heads (to get an object pointer)
            self.mask_downsample = nn.Conv2d(1, 1, kernel_size=4, stride=4)
        self.memory_attention = memory_attention
        self.hidden_dim = image_encoder.neck.d_model
        self.memory_encoder = memory_encoder
        self.mem_dim = self.hidden_dim
        out_proj = getattr(memory_encoder, "out_proj", None)
        if out_proj is not None and hasattr(out_proj, "weight"):
            self.mem_dim = out_proj.weight.shape[0]

        # temporal encoding of the memories, and the "no memory" embedding of a first frame
        self.maskmem_tpos_enc = nn.Parameter(torch.zeros(self.num_maskmem, 1, 1, self.mem_dim))
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, self.hidden_dim))
        self.no_mem_pos_enc = nn.Parameter(torch.zeros(1, 1, self.hidden_dim))
        if self.pred_obj_scores and self.use_obj_ptrs_in_encoder:
            self.no_obj_ptr = nn.Parameter(torch.zeros(1, self.hidden_dim))
        if opts["no_obj_embed_spatial"]:
            self.no_obj_embed_spatial = nn.Parameter(torch.zeros(1, self.mem_dim))
        else:
            self.no_obj_embed_spatial = None
        for p in (self.maskmem_tpos_enc, self.no_mem_embed, self.no_mem_pos_enc):
            nn.init.trunc_normal_(p, std=0.02)

        self._build_sam_heads()
        if self.compile_image_encoder:
            self.image_encoder.forward = torch.compile(
                self.image_encoder.forward, mode="max-autotune", fullgraph=True, dynamic=False
            )

    def _build_sam_heads(self):
        self.sam_prompt_embed_dim = self.hidden_dim
        self.sam_image_embedding_size = self.image_size // self.backbone_stride
        size = self.sam_image_embedding_size
        self.sam_prompt_encoder = PromptEncoder(
            embed_dim=self.sam_prompt_embed_dim,
            image_embedding_size=(size, size),
            input_image_size=(self.image_size, self.image_size),
            mask_in_chans=16,
        )
        self.sam_mask_decoder = MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=self.sam_prompt_embed_dim, mlp_dim=2048, num_heads=8),
            transformer_dim=self.sam_prompt_embed_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
            use_high_res_features=self.use_high_res_features_in_sam,
            iou_prediction_use_sigmoid=self.iou_prediction_use_sigmoid,
            pred_obj_scores=self.pred_obj_scores,
            pred_obj_scores_mlp=self.pred_obj_scores_mlp,
            use_multimask_token_for_obj_ptr=self.use_multimask_token_for_obj_ptr,
            **(self.sam_mask_decoder_extra_args or {}),
        )
        if self.use_obj_ptrs_in_encoder:
            self.obj_ptr_proj = (
                MLP(self.hidden_dim, self.hidden_dim, self.hidden_dim, 3) if self.use_mlp_for_obj_ptr_proj
                else nn.Linear(self.hidden_dim, self.hidden_dim)
            )
        else:
            self.obj_ptr_proj = nn.Identity()
        self.obj_ptr_tpos_proj = (
            nn.Linear(self.hidden_dim, self.mem_dim) if self.proj_tpos_enc_in_obj_ptrs else nn.Identity()
        )

    @property
    def device(self):
        return self.no_mem_embed.device

    def forward(self, *args, **kwargs):
        raise NotImplementedError(
            "SAM2Model has no single forward; use ImagePredictor or samroto.core.video.VideoSession"
        )

    # --- image features -------------------------------------------------------------

    def forward_image(self, img_batch):
        """Normalised images [B, 3, S, S] -> backbone_out dict (vision_features,
        vision_pos_enc, backbone_fpn), high-res FPN levels already through conv_s0/conv_s1."""
        backbone_out = self.image_encoder(img_batch)
        if self.use_high_res_features_in_sam:
            fpn = backbone_out["backbone_fpn"]
            fpn[0] = self.sam_mask_decoder.conv_s0(fpn[0])
            fpn[1] = self.sam_mask_decoder.conv_s1(fpn[1])
        return backbone_out

    def prepare_backbone_features(self, backbone_out):
        """Flatten the last ``num_feature_levels`` levels to the (HW)BC layout.
        Returns (backbone_out, vision_feats, vision_pos_embeds, feat_sizes). A level's
        position encoding may be None (tracking reads only the last level's); it stays None."""
        backbone_out = backbone_out.copy()
        levels = self.num_feature_levels
        if len(backbone_out["backbone_fpn"]) != len(backbone_out["vision_pos_enc"]):
            raise ValueError("backbone_out: backbone_fpn and vision_pos_enc differ in length")
        feature_maps = backbone_out["backbone_fpn"][-levels:]
        pos_maps = backbone_out["vision_pos_enc"][-levels:]
        feat_sizes = [(x.shape[-2], x.shape[-1]) for x in feature_maps]
        vision_feats = [x.flatten(2).permute(2, 0, 1) for x in feature_maps]
        vision_pos_embeds = [None if x is None else x.flatten(2).permute(2, 0, 1) for x in pos_maps]
        return backbone_out, vision_feats, vision_pos_embeds, feat_sizes

    _prepare_backbone_features = prepare_backbone_features  # the official name

    # --- SAM heads ------------------------------------------------------------------

    def forward_sam_heads(self, backbone_features, point_inputs=None, mask_inputs=None,
                          high_res_features=None, multimask_output=False, all_high_res=True):
        """Prompt encoder + mask decoder on [B, C, h, w] features.

        point_inputs: {"point_coords": [B, N, 2] in model-input pixels, "point_labels": [B, N]};
        mask_inputs: [B, 1, H, W] logits (resized to the prompt encoder's mask size).
        Returns (low_res_multimasks, high_res_multimasks, ious, low_res_masks,
        high_res_masks, obj_ptr, object_score_logits). ``all_high_res=False`` upsamples
        only the chosen mask (the same values) and gives None for high_res_multimasks:
        tracking needs one S x S mask per object, not three."""
        batch = backbone_features.size(0)
        device = backbone_features.device
        size = self.sam_image_embedding_size
        if backbone_features.size(1) != self.sam_prompt_embed_dim or tuple(backbone_features.shape[2:]) != (size, size):
            raise ValueError(
                f"forward_sam_heads: features {tuple(backbone_features.shape)} do not match "
                f"[B, {self.sam_prompt_embed_dim}, {size}, {size}]"
            )

        if point_inputs is not None:
            coords = point_inputs["point_coords"]
            labels = point_inputs["point_labels"]
            if coords.size(0) != batch or labels.size(0) != batch:
                raise ValueError("forward_sam_heads: point_inputs batch differs from the features'")
        else:
            # a single padding point: "no point prompt"
            coords = torch.zeros(batch, 1, 2, device=device)
            labels = -torch.ones(batch, 1, dtype=torch.int32, device=device)

        if mask_inputs is not None:
            if mask_inputs.dim() != 4 or tuple(mask_inputs.shape[:2]) != (batch, 1):
                raise ValueError(f"forward_sam_heads: mask_inputs must be [B, 1, H, W], got {tuple(mask_inputs.shape)}")
            if tuple(mask_inputs.shape[-2:]) != self.sam_prompt_encoder.mask_input_size:
                mask_prompt = F.interpolate(mask_inputs.float(), size=self.sam_prompt_encoder.mask_input_size,
                                            align_corners=False, mode="bilinear", antialias=True)
            else:
                mask_prompt = mask_inputs
        else:
            mask_prompt = None

        sparse, dense = self.sam_prompt_encoder(points=(coords, labels), boxes=None, masks=mask_prompt)
        low_res_multimasks, ious, sam_output_tokens, object_score_logits = self.sam_mask_decoder(
            image_embeddings=backbone_features,
            image_pe=self.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask_output,
            repeat_image=False,
            high_res_features=high_res_features,
        )
        if self.pred_obj_scores:
            is_obj_appearing = object_score_logits > 0
            low_res_multimasks = torch.where(is_obj_appearing[:, None, None], low_res_multimasks, NO_OBJ_SCORE)

        low_res_multimasks = low_res_multimasks.float()
        full_size = (self.image_size, self.image_size)
        high_res_multimasks = None
        if all_high_res:
            high_res_multimasks = F.interpolate(low_res_multimasks, size=full_size, mode="bilinear",
                                                align_corners=False)
        sam_output_token = sam_output_tokens[:, 0]
        if multimask_output:
            best = torch.argmax(ious, dim=-1)
            rows = torch.arange(batch, device=device)
            low_res_masks = low_res_multimasks[rows, best].unsqueeze(1)
            if sam_output_tokens.size(1) > 1:
                sam_output_token = sam_output_tokens[rows, best]
        else:
            low_res_masks = low_res_multimasks
        if high_res_multimasks is None:
            # bilinear resizing works channel by channel: resizing the chosen mask alone is exact
            high_res_masks = F.interpolate(low_res_masks, size=full_size, mode="bilinear", align_corners=False)
        elif multimask_output:
            high_res_masks = high_res_multimasks[rows, best].unsqueeze(1)
        else:
            high_res_masks = high_res_multimasks

        obj_ptr = self.obj_ptr_proj(sam_output_token)
        if self.pred_obj_scores:
            if self.soft_no_obj_ptr:
                lambda_is_obj_appearing = object_score_logits.sigmoid()
            else:
                lambda_is_obj_appearing = is_obj_appearing.float()
            if self.fixed_no_obj_ptr:
                obj_ptr = lambda_is_obj_appearing * obj_ptr
            obj_ptr = obj_ptr + (1 - lambda_is_obj_appearing) * self.no_obj_ptr

        return (low_res_multimasks, high_res_multimasks, ious, low_res_masks, high_res_masks,
                obj_ptr, object_score_logits)

    _forward_sam_heads = forward_sam_heads  # the official name

    def use_mask_as_output(self, backbone_features, high_res_features, mask_inputs):
        """Take a binary input mask [B, 1, S, S] directly as the output (mask-prompted frames).
        Same 7-tuple as :meth:`forward_sam_heads`."""
        out_scale, out_bias = 20.0, -10.0  # sigmoid(-10) ~ 0, sigmoid(10) ~ 1
        mask_float = mask_inputs.float()
        high_res_masks = mask_float * out_scale + out_bias
        low_res_masks = F.interpolate(
            high_res_masks, size=(high_res_masks.size(-2) // 4, high_res_masks.size(-1) // 4),
            align_corners=False, mode="bilinear", antialias=True,
        )
        ious = mask_inputs.new_ones(mask_inputs.size(0), 1).float()
        if not self.use_obj_ptrs_in_encoder:
            obj_ptr = torch.zeros(mask_inputs.size(0), self.hidden_dim, device=mask_inputs.device)
        else:
            # the object pointer comes from the SAM heads prompted with the (downsampled) mask
            obj_ptr = self.forward_sam_heads(
                backbone_features=backbone_features,
                mask_inputs=self.mask_downsample(mask_float),
                high_res_features=high_res_features,
                all_high_res=False,
            )[5]
        is_obj_appearing = torch.any(mask_inputs.flatten(1).float() > 0.0, dim=1)[..., None]
        lambda_is_obj_appearing = is_obj_appearing.float()
        object_score_logits = out_scale * lambda_is_obj_appearing + out_bias
        if self.pred_obj_scores:
            if self.fixed_no_obj_ptr:
                obj_ptr = lambda_is_obj_appearing * obj_ptr
            obj_ptr = obj_ptr + (1 - lambda_is_obj_appearing) * self.no_obj_ptr
        return (low_res_masks, high_res_masks, ious, low_res_masks, high_res_masks, obj_ptr, object_score_logits)

    _use_mask_as_output = use_mask_as_output  # the official name
