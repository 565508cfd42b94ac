"""SAM2Model vs Meta's sam2 1.1.0 on the random-weight fixture (CPU, float32):
trunk, neck, embeddings, SAM heads and memory encoder, array by array."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from samroto.core.image_predictor import preprocess_image
from samroto.core.model.build import build_model
from samroto.core.model.common import get_1d_sine_pe

PARITY = Path(__file__).parent / "data" / "sam2_parity"
ATOL = 1e-3  # the bound; the official code moves by 7.6e-5 between thread counts


@pytest.fixture(scope="module")
def model():
    return build_model(PARITY / "config_image_predictor.yaml", PARITY / "checkpoint.pt", device="cpu")


@pytest.fixture(scope="module")
def image_data():
    return np.load(PARITY / "image_predictor.npz")


@pytest.fixture(scope="module")
def video_data():
    return np.load(PARITY / "video_predictor.npz")


def close(ours, recorded, atol=ATOL):
    ours = ours.detach().float().cpu().numpy() if torch.is_tensor(ours) else np.asarray(ours)
    assert ours.shape == recorded.shape
    diff = float(np.abs(ours - recorded).max())
    assert diff <= atol, f"max abs diff {diff} > {atol}"


def test_preprocessing_equals_the_official_input_tensor(model, image_data):
    ours = preprocess_image(image_data["image"], model.image_size)
    close(ours, image_data["input_tensor"], atol=1e-6)
    second = preprocess_image(image_data["batch_image_1"], model.image_size)
    close(second, image_data["batch_input_tensor_1"], atol=1e-6)


def test_trunk_outputs(model, image_data):
    with torch.inference_mode():
        outs = model.image_encoder.trunk(torch.from_numpy(image_data["input_tensor"]))
    assert len(outs) == 4
    for i, out in enumerate(outs):
        close(out, image_data[f"trunk_out_{i}"])


def _features(model, input_tensor):
    with torch.inference_mode():
        backbone_out = model.forward_image(torch.from_numpy(input_tensor))
        _, feats, pos, sizes = model.prepare_backbone_features(backbone_out)
    return backbone_out, feats, pos, sizes


def test_image_embedding_and_high_res_features(model, image_data):
    backbone_out, feats, pos, sizes = _features(model, image_data["input_tensor"])
    s = model.image_size
    # feature sizes follow the model's image size (256 here), not a hard-coded 1024
    assert sizes == [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]
    assert [tuple(p.shape) for p in pos] == [(h * w, 1, model.hidden_dim) for h, w in sizes]
    embed = (feats[-1] + model.no_mem_embed).permute(1, 2, 0).reshape(1, -1, *sizes[-1])
    close(embed, image_data["image_embed"])
    for i in range(2):
        close(feats[i].permute(1, 2, 0).reshape(1, -1, *sizes[i]), image_data[f"high_res_feat_{i}"])
    assert backbone_out["vision_features"].shape == (1, model.hidden_dim, *sizes[-1])


def _click_on_first_video_frame(model, video_data):
    """Scenario A's first call: one positive click on frame 0 of a fresh video session
    (first frame: no memory, no_mem_embed added, multimask output on one click)."""
    ops = json.loads((PARITY / "video_predictor_ops.json").read_text())["scenarios"]["A"]["ops"]
    kwargs = ops[0]["kwargs"]
    assert ops[0]["call"] == "add_new_points_or_box" and kwargs["frame_idx"] == 0
    height, width = video_data["frames_uint8"].shape[1:3]
    points = torch.tensor([kwargs["points"]], dtype=torch.float32)
    points = points / torch.tensor([width, height]) * model.image_size
    labels = torch.tensor([kwargs["labels"]], dtype=torch.int32)
    frame = video_data["frames_input"][0:1]
    _, feats, _, sizes = _features(model, frame)
    pix_feat = (feats[-1] + model.no_mem_embed).permute(1, 2, 0).reshape(1, model.hidden_dim, *sizes[-1])
    high_res = [f.permute(1, 2, 0).reshape(1, -1, *s) for f, s in zip(feats[:-1], sizes[:-1])]
    with torch.inference_mode():
        out = model.forward_sam_heads(pix_feat, point_inputs={"point_coords": points, "point_labels": labels},
                                      high_res_features=high_res, multimask_output=True)
    return out, feats, sizes


def test_sam_heads_on_a_video_click(model, video_data):
    (low_multi, high_multi, ious, low, high, obj_ptr, score), _, _ = _click_on_first_video_frame(model, video_data)
    assert low_multi.shape == (1, 3, 64, 64) and high_multi.shape == (1, 3, 256, 256)
    assert low.shape == (1, 1, 64, 64) and high.shape == (1, 1, 256, 256) and ious.shape == (1, 3)
    close(low[0], video_data["A00_low_res_logits"][0])
    close(obj_ptr, video_data["A00_obj_ptr"][0])
    close(score[:, 0], video_data["A00_object_score_logits"][0])


def test_memory_encoder_on_the_first_conditioning_frame(model, video_data):
    """A02_maskmem_features[0]: each object's frame-0 mask (binarized: it came from clicks)
    encoded with frame 0's features; stored by Meta as bfloat16."""
    _, feats, _, sizes = _features(model, video_data["frames_input"][0:1])
    pix_feat = feats[-1].permute(1, 2, 0).reshape(1, model.hidden_dim, *sizes[-1])
    n_obj = video_data["A02_low_res_logits"].shape[1]
    for obj in range(n_obj):
        low = torch.from_numpy(video_data["A02_low_res_logits"][0, obj])[None, None]
        high = F.interpolate(low, size=(model.image_size,) * 2, mode="bilinear", align_corners=False)
        mask = (high > 0).float() * model.sigmoid_scale_for_mem_enc + model.sigmoid_bias_for_mem_enc
        with torch.inference_mode():
            out = model.memory_encoder(pix_feat, mask, skip_mask_sigmoid=True)
            score = float(video_data["A02_object_score_logits"][0, obj])
            features = out["vision_features"] + (1.0 - float(score > 0)) * model.no_obj_embed_spatial[..., None, None]
        recorded = video_data["A02_maskmem_features"][0, obj][None]
        ours = features.to(torch.bfloat16).float().numpy()
        # one bfloat16 step where a value's rounding flips (see the fixture README)
        step = np.maximum(np.abs(recorded), 1e-3) * 2.0 ** -7
        assert np.all(np.abs(ours - recorded) <= step + 1e-4)
        assert out["vision_pos_enc"][0].shape == (1, model.mem_dim, *sizes[-1])


def test_no_object_fill_and_pointer(model, video_data):
    """With the object-score head forced negative, masks become -1024 and the pointer is
    no_obj_ptr (fixed_no_obj_ptr)."""
    head = model.sam_mask_decoder.pred_obj_score_head.layers[-1]
    saved = head.bias.detach().clone()
    try:
        with torch.no_grad():
            head.bias.fill_(-1e6)
        (low_multi, _, _, low, high, obj_ptr, score), _, _ = _click_on_first_video_frame(model, video_data)
    finally:
        with torch.no_grad():
            head.bias.copy_(saved)
    assert float(score) < 0
    assert torch.all(low_multi == -1024.0) and torch.all(low == -1024.0) and torch.all(high == -1024.0)
    close(obj_ptr, model.no_obj_ptr.detach().numpy(), atol=0)


def test_mask_as_output(model, video_data):
    """Mask prompts skip the decoder for the masks; the pointer still comes from the heads."""
    mask = torch.from_numpy(video_data["C_mask_obj2"]).float()[None, None]
    _, feats, sizes = _click_on_first_video_frame(model, video_data)
    pix_feat = (feats[-1] + model.no_mem_embed).permute(1, 2, 0).reshape(1, model.hidden_dim, *sizes[-1])
    high_res = [f.permute(1, 2, 0).reshape(1, -1, *s) for f, s in zip(feats[:-1], sizes[:-1])]
    with torch.inference_mode():
        low, high, ious, low2, high2, obj_ptr, score = model.use_mask_as_output(pix_feat, high_res, mask)
        empty = model.use_mask_as_output(pix_feat, high_res, torch.zeros_like(mask))
    assert torch.equal(high, mask * 20 - 10) and low.shape == (1, 1, 64, 64)
    assert float(score) == 10.0 and float(empty[6]) == -10.0
    assert torch.allclose(empty[5], model.no_obj_ptr)
    assert obj_ptr.shape == (1, model.hidden_dim) and not torch.allclose(obj_ptr, model.no_obj_ptr)


def test_memory_attention_on_the_second_frame(model, video_data):
    """A02, frame 1: the memory is frame 0's (conditioning) memory and object pointer,
    assembled by hand the way Meta's tracker does; then the SAM heads without prompts."""
    frames = video_data["frames_input"]
    with torch.inference_mode():
        _, feats, pos, sizes = _features(model, frames[1:2])
        hidden, mem_dim = model.hidden_dim, model.mem_dim
        for obj in range(video_data["A02_low_res_logits"].shape[1]):
            # Meta stores memories as bfloat16; torch.cat with the float32 pointers promotes
            memory_map = torch.from_numpy(video_data["A02_maskmem_features"][0, obj])[None].to(torch.bfloat16)
            memory_pos = model.memory_encoder.position_encoding(memory_map.float())
            spatial = memory_map.flatten(2).permute(2, 0, 1)
            spatial_pos = memory_pos.flatten(2).permute(2, 0, 1) + model.maskmem_tpos_enc[model.num_maskmem - 1]
            pointer = torch.from_numpy(video_data["A02_obj_ptr"][0, obj])[None]
            # one frame away; distances are normalised by min(T, max_obj_ptrs_in_encoder) - 1
            t_norm = min(len(frames), model.max_obj_ptrs_in_encoder) - 1
            pointer_pos = model.obj_ptr_tpos_proj(get_1d_sine_pe(torch.tensor([1.0]) / t_norm, hidden))
            split = hidden // mem_dim  # a pointer becomes `split` memory tokens
            pointer_tokens = pointer[None].reshape(-1, 1, split, mem_dim).permute(0, 2, 1, 3).flatten(0, 1)
            pointer_pos = pointer_pos.unsqueeze(1).expand(-1, 1, mem_dim).repeat_interleave(split, dim=0)
            out = model.memory_attention(
                curr=feats[-1:], curr_pos=pos[-1:],
                memory=torch.cat([spatial, pointer_tokens], dim=0),
                memory_pos=torch.cat([spatial_pos, pointer_pos], dim=0),
                num_obj_ptr_tokens=pointer_tokens.shape[0],
            )
            pix_feat = out.permute(1, 2, 0).reshape(1, hidden, *sizes[-1])
            high_res = [f.permute(1, 2, 0).reshape(1, -1, *s) for f, s in zip(feats[:-1], sizes[:-1])]
            result = model.forward_sam_heads(pix_feat, high_res_features=high_res, multimask_output=True)
            close(result[3][0, 0], video_data["A02_low_res_logits"][1, obj])
            close(result[5][0], video_data["A02_obj_ptr"][1, obj])
            close(result[6][:, 0], video_data["A02_object_score_logits"][1, obj:obj + 1])
