"""build_model: official names and configs, key/shape parity with Meta's checkpoints,
clear errors for bad configs, options and checkpoints."""

import json
from pathlib import Path

import pytest
import torch

from samroto.core.model.build import (CheckpointError, ConfigError, build_model, check_state_dict,
                                      guess_official_model, load_checkpoint, pick_device)
from samroto.core.model.config import KNOWN_CONFIGS, canonical_name

DATA = Path(__file__).parent / "data"
PARITY = DATA / "sam2_parity"
OFFICIAL = json.loads((DATA / "sam2_checkpoint_keys.json").read_text())["configs"]
# json keys are the official yaml stems; our names are the checkpoint stems
STEM_TO_NAME = {Path(f).stem: name for name, f in KNOWN_CONFIGS.items()}


def shapes(model):
    return {k: list(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("stem", sorted(OFFICIAL))
def test_official_configs_have_exactly_the_official_keys_and_shapes(stem):
    model = build_model(STEM_TO_NAME[stem], device="meta")
    assert shapes(model) == OFFICIAL[stem]


def test_every_known_name_is_covered_by_the_official_key_list():
    assert sorted(STEM_TO_NAME) == sorted(OFFICIAL)


@pytest.mark.parametrize("alias, name", [
    ("sam2.1_hiera_t", "sam2.1_hiera_tiny"),
    ("sam2.1_hiera_b+", "sam2.1_hiera_base_plus"),
    ("configs/sam2.1/sam2.1_hiera_l.yaml", "sam2.1_hiera_large"),
    ("sam2_hiera_small.pt", "sam2_hiera_small"),
    ("sam2_hiera_s", "sam2_hiera_small"),
])
def test_aliases_resolve_to_official_names(alias, name):
    assert canonical_name(alias) == name
    assert build_model(alias, device="meta").config_name == name


def test_model_options_keep_official_names_and_values():
    model = build_model("sam2.1_hiera_tiny", device="meta")
    assert model.image_size == 1024 and model.num_maskmem == 7
    assert model.hidden_dim == 256 and model.mem_dim == 64
    assert model.max_cond_frames_in_attn == -1  # official default (not in the yaml)
    assert model.use_obj_ptrs_in_encoder and model.pred_obj_scores
    # build_sam2 / build_sam2_video_predictor post-processing, as Meta applies it
    assert model.sam_mask_decoder.dynamic_multimask_via_stability
    assert model.binarize_mask_from_pts_for_mem_enc and model.fill_hole_area == 8
    raw = build_model("sam2.1_hiera_tiny", device="meta", apply_postprocessing=False)
    assert not raw.sam_mask_decoder.dynamic_multimask_via_stability
    assert raw.fill_hole_area == 0 and not raw.binarize_mask_from_pts_for_mem_enc


def test_options_override_the_config_by_official_name():
    model = build_model("sam2.1_hiera_tiny", device="meta", fill_hole_area=0, max_cond_frames_in_attn=4,
                        add_all_frames_to_correct_as_cond=True)
    assert model.fill_hole_area == 0
    assert model.max_cond_frames_in_attn == 4
    assert model.add_all_frames_to_correct_as_cond is True


def test_unknown_option_is_a_clear_error():
    with pytest.raises(TypeError, match="fill_hole_aera"):
        build_model("sam2.1_hiera_tiny", device="meta", fill_hole_aera=3)


def test_video_predictor_config_with_its_extras_builds():
    model = build_model(PARITY / "config_video_predictor.yaml", device="meta", apply_postprocessing=False)
    assert model.fill_hole_area == 8 and model.binarize_mask_from_pts_for_mem_enc
    assert model.image_size == 256


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match="sam2.1_hiera_tiny"):
        build_model("sam3_hiera_huge", device="meta")


def _write_config(tmp_path, edit):
    text = (PARITY / "config.yaml").read_text()
    path = tmp_path / "custom.yaml"
    path.write_text(edit(text))
    return path


def test_unknown_target_is_named(tmp_path):
    path = _write_config(tmp_path, lambda t: t.replace("sam2.modeling.backbones.hieradet.Hiera", "my.fancy.Trunk"))
    with pytest.raises(ConfigError, match=r"my\.fancy\.Trunk"):
        build_model(path, device="meta")


def test_unknown_key_is_named_with_its_place(tmp_path):
    path = _write_config(tmp_path, lambda t: t.replace("      embed_dim: 8\n", "      embed_dim: 8\n      embed_dims: 9\n", 1))
    with pytest.raises(ConfigError, match=r"model\.image_encoder\.trunk.*embed_dims"):
        build_model(path, device="meta")


def test_file_without_model_tree_is_rejected(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("trainer: {}\n")
    with pytest.raises(ConfigError, match="model:"):
        build_model(path, device="meta")


def test_fixture_checkpoint_loads_strictly():
    model = build_model(PARITY / "config.yaml", PARITY / "checkpoint.pt", device="cpu")
    state = torch.load(PARITY / "checkpoint.pt", weights_only=True)["model"]
    assert set(model.state_dict()) == set(state)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    assert not model.training


def test_a_model_built_under_inference_mode_encodes_like_one_built_outside():
    # Meta's README runs everything under torch.inference_mode(); weights made there are
    # inference tensors, which keep no version counter (the position-embedding cache keyed on it)
    image = torch.rand(1, 3, 64, 64)
    outside = build_model(PARITY / "config.yaml", PARITY / "checkpoint.pt", device="cpu")
    with torch.inference_mode():
        inside = build_model(PARITY / "config.yaml", PARITY / "checkpoint.pt", device="cpu")
        expected = outside.image_encoder(image)["vision_features"]
        for _ in range(2):  # twice: the second run is where a cache would answer
            assert torch.equal(inside.image_encoder(image)["vision_features"], expected)


def _tampered(tmp_path, edit):
    state = torch.load(PARITY / "checkpoint.pt", weights_only=True)["model"]
    edit(state)
    path = tmp_path / "tampered.pt"
    torch.save({"model": state}, path)
    return path


def test_checkpoint_missing_key_is_named(tmp_path):
    path = _tampered(tmp_path, lambda sd: sd.pop("sam_mask_decoder.iou_token.weight"))
    with pytest.raises(CheckpointError, match=r"missing keys \(1\): sam_mask_decoder\.iou_token\.weight"):
        build_model(PARITY / "config.yaml", path, device="cpu")


def test_checkpoint_wrong_shape_is_named(tmp_path):
    def edit(sd):
        sd["no_mem_embed"] = torch.zeros(1, 1, 65)
    path = _tampered(tmp_path, edit)
    model = build_model(PARITY / "config.yaml", device="cpu")
    with pytest.raises(CheckpointError, match=r"wrong shapes \(1\): no_mem_embed \[1, 1, 65\] \(model: \[1, 1, 64\]\)"):
        load_checkpoint(model, path)


def test_checkpoint_unexpected_key_is_named(tmp_path):
    def edit(sd):
        sd["extra.weight"] = torch.zeros(2)
    path = _tampered(tmp_path, edit)
    with pytest.raises(CheckpointError, match=r"unexpected keys \(1\): extra\.weight"):
        build_model(PARITY / "config.yaml", path, device="cpu")


def test_mismatch_message_guesses_the_official_model():
    small = build_model("sam2_hiera_small", device="meta").state_dict()
    assert guess_official_model(small) == "sam2_hiera_small"
    tiny = build_model("sam2.1_hiera_tiny", device="meta")
    with pytest.raises(CheckpointError, match=r"looks like the official 'sam2_hiera_small'"):
        check_state_dict(tiny, small, source="sam2_hiera_small.pt")


def test_not_a_checkpoint_file(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="junk.pt"):
        build_model(PARITY / "config.yaml", path, device="cpu")
    with pytest.raises(FileNotFoundError, match="nothere.pt"):
        build_model(PARITY / "config.yaml", tmp_path / "nothere.pt", device="cpu")


def test_pick_device_prefers_accelerators():
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if torch.backends.mps.is_available() else "cpu")
    assert pick_device().type == expected
    assert pick_device("cpu").type == "cpu"


def test_lazy_exports_from_core():
    import samroto.core as core
    assert core.build_model is build_model
    assert core.load_checkpoint is load_checkpoint


def test_half_precision_checkpoint_gives_a_float32_model(tmp_path):
    def edit(sd):
        for k in sd:
            sd[k] = sd[k].half()
    path = _tampered(tmp_path, edit)
    model = build_model(PARITY / "config.yaml", path, device="cpu")
    assert {p.dtype for p in model.parameters()} == {torch.float32}
