"""Building the predictor: config names, checkpoint checks with clear errors, member settings in the manifest."""
from __future__ import annotations

import shutil

import pytest
import torch

from data.errors import MassegError
from models.sam2 import CheckpointError, Sam2Segmenter, resolve_config
from models.sam2.build import _package_config_dir, guess_variant

from .conftest import CONFIG


@pytest.mark.parametrize("text,name", [
    ("sam2.1_hiera_t", "configs/sam2.1/sam2.1_hiera_t.yaml"),
    ("sam2.1_hiera_tiny", "configs/sam2.1/sam2.1_hiera_t.yaml"),
    ("sam2.1_hiera_large", "configs/sam2.1/sam2.1_hiera_l.yaml"),
    ("sam2.1_hiera_b+", "configs/sam2.1/sam2.1_hiera_b+.yaml"),
    ("sam2_hiera_s", "configs/sam2/sam2_hiera_s.yaml"),
    ("configs/sam2.1/sam2.1_hiera_l.yaml", "configs/sam2.1/sam2.1_hiera_l.yaml"),
])
def test_variant_names_resolve_to_packaged_configs(text, name):
    ref = resolve_config(text)
    assert ref.name == name and ref.path is None


def test_packaged_file_path_resolves_to_its_name():
    path = _package_config_dir() / "sam2.1" / "sam2.1_hiera_s.yaml"
    assert resolve_config(str(path)).name == "configs/sam2.1/sam2.1_hiera_s.yaml"


def test_unknown_config_lists_the_variants():
    with pytest.raises(MassegError, match=r"unknown SAM2 config.*sam2\.1_hiera_t"):
        resolve_config("sam3_hiera_t")


def test_external_config_file_builds_and_hydra_is_restored(golden_weights, tmp_path):
    cfg = tmp_path / "my_tiny.yaml"
    shutil.copy(_package_config_dir() / "sam2.1" / "sam2.1_hiera_t.yaml", cfg)
    seg = Sam2Segmenter(golden_weights, config=str(cfg), image_size=256, device="cpu")
    assert seg.manifest()["config"] == str(cfg.resolve()) and seg.manifest()["variant"] == "my_tiny"
    # the package's own config names still work afterwards
    assert Sam2Segmenter(golden_weights, config=CONFIG, image_size=256, device="cpu").image_size == 256


def test_not_a_model_config_is_a_clear_error(golden_weights, tmp_path):
    cfg = tmp_path / "train.yaml"
    cfg.write_text("trainer:\n  max_epochs: 1\n")
    with pytest.raises(MassegError, match="cannot build SAM2 from config"):
        Sam2Segmenter(golden_weights, config=str(cfg), device="cpu")


def test_manifest_records_the_member(golden_weights):
    seg = Sam2Segmenter(golden_weights, config="sam2.1_hiera_tiny", image_size=256, mem_scale=15, mem_bias=-7,
                        device="cpu", objects_from="first_frame")
    man = seg.manifest()
    assert man["model"] == "sam2" and man["variant"] == "sam2.1_hiera_t"
    assert man["config"] == "configs/sam2.1/sam2.1_hiera_t.yaml"
    assert man["checkpoint"] == str(golden_weights.resolve()) and len(man["checkpoint_sha256"]) == 64
    assert man["scale"] == 256 and man["flip"] is False
    assert man["settings"] == {"config": "configs/sam2.1/sam2.1_hiera_t.yaml", "image_size": 256,
                               "sigmoid_scale_for_mem_enc": 15.0, "sigmoid_bias_for_mem_enc": -7.0,
                               "dtype": "float32", "hflip": False, "objects_from": "first_frame"}
    assert man["code_version"] and man["sam2_version"] == "1.1.0"
    # the overrides reach the model itself
    assert seg.predictor.sigmoid_scale_for_mem_enc == 15.0 and seg.predictor.sigmoid_bias_for_mem_enc == -7.0
    assert seg.predictor.image_size == 256 and not seg.predictor.training


def test_tiny_checkpoint_into_small_config_names_keys_and_the_fitting_config(golden_weights):
    with pytest.raises(CheckpointError) as info:
        Sam2Segmenter(golden_weights, config="sam2.1_hiera_s", image_size=256, device="cpu")
    msg = str(info.value)
    assert "does not match config configs/sam2.1/sam2.1_hiera_s.yaml" in msg
    assert "keys missing from the checkpoint" in msg and "image_encoder.trunk.blocks.12." in msg
    assert "--config sam2.1_hiera_t" in msg and str(golden_weights) in msg


def test_shape_mismatch_names_key_and_shapes(golden_weights, tmp_path):
    sd = torch.load(golden_weights, map_location="cpu", weights_only=True)["model"]
    sd["sam_mask_decoder.iou_prediction_head.layers.2.bias"] = torch.zeros(3)
    bad = tmp_path / "bad.pt"
    torch.save({"model": sd}, bad)
    with pytest.raises(CheckpointError, match=r"iou_prediction_head\.layers\.2\.bias checkpoint \(3,\) vs model "
                                              r"\(4,\)"):
        Sam2Segmenter(bad, config=CONFIG, image_size=256, device="cpu")


def test_sam2_1_checkpoint_into_sam2_config_lists_unexpected_keys(golden_weights):
    with pytest.raises(CheckpointError, match=r"unexpected keys \(.*no_obj_embed_spatial"):
        Sam2Segmenter(golden_weights, config="sam2_hiera_t", image_size=256, device="cpu")


def test_guess_variant_from_weights(golden_weights):
    sd = torch.load(golden_weights, map_location="cpu", weights_only=True)["model"]
    assert guess_variant(sd) == "sam2.1_hiera_t"


def test_missing_and_unreadable_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        Sam2Segmenter(tmp_path / "nope.pt", config=CONFIG, image_size=256, device="cpu")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a torch file")
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint.*junk\.pt|junk\.pt.*cannot read checkpoint"):
        Sam2Segmenter(junk, config=CONFIG, image_size=256, device="cpu")
    empty = tmp_path / "empty.pt"
    torch.save({"optimizer": {}}, empty)
    with pytest.raises(CheckpointError, match="no state dict"):
        Sam2Segmenter(empty, config=CONFIG, image_size=256, device="cpu")


def test_bad_member_options(golden_weights):
    with pytest.raises(MassegError, match="multiple of 32"):
        Sam2Segmenter(golden_weights, config=CONFIG, image_size=500, device="cpu")
    with pytest.raises(MassegError, match="needs CUDA"):
        Sam2Segmenter(golden_weights, config=CONFIG, device="cpu", vos_optimized=True)
    with pytest.raises(MassegError, match="unknown device"):
        Sam2Segmenter(golden_weights, config=CONFIG, device="tpu:7")
    if not torch.cuda.is_available():
        with pytest.raises(MassegError, match="CUDA is not available"):
            Sam2Segmenter(golden_weights, config=CONFIG, device="cuda")

