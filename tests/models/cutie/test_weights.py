"""Checkpoint layout and loading: key-for-key with the official files, clear errors, accepted wrappers."""
from __future__ import annotations

import pytest
import torch

from models.cutie import CheckpointMismatchError, CutieNetwork, build_cutie, load_weights, read_checkpoint


@pytest.mark.parametrize("variant", ["small", "base"])
def test_layout_matches_official_keys(variant, keys_json):
    """Every key of the official state dict, with the same shape and dtype, and nothing else."""
    expected = {e["key"]: (tuple(e["shape"]), e["dtype"]) for e in keys_json[variant]["keys"]}
    ours = {k: (tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in CutieNetwork(variant).state_dict().items()}
    assert sorted(set(expected) - set(ours)) == []
    assert sorted(set(ours) - set(expected)) == []
    assert {k: v for k, v in ours.items() if expected[k] != v} == {}
    assert len(ours) == keys_json[variant]["num_keys"]
    params = sum(p.numel() for p in CutieNetwork(variant).parameters())
    assert params == keys_json[variant]["num_parameters"]


def test_recipe_weights_load_strictly_through_a_file(tmp_path, recipe_state_dict):
    """The official way of reading a file (weights_only, CPU), also as fp16 and nested under 'model'."""
    sd = recipe_state_dict("small")
    half = {k: (v.half() if v.is_floating_point() and not k.endswith("inv_freq") else v) for k, v in sd.items()}
    path = tmp_path / "cutie-small-fp16.pth"
    torch.save({"model": half}, path)
    net = build_cutie("small", path, device="cpu")
    for k, v in net.state_dict().items():
        assert torch.equal(v, sd[k]), k  # every float weight of the recipe is exact in fp16


@pytest.fixture(scope="module")
def own_sd():
    return CutieNetwork("small").state_dict()


def test_missing_keys_are_named(own_sd):
    sd = dict(own_sd)
    del sd["mask_decoder.pred.weight"]
    del sd["object_transformer.blocks.1.ffn.linear1.bias"]
    with pytest.raises(CheckpointMismatchError) as err:
        load_weights(CutieNetwork("small"), sd)
    assert err.value.missing == ["mask_decoder.pred.weight", "object_transformer.blocks.1.ffn.linear1.bias"]
    assert "mask_decoder.pred.weight" in str(err.value) and "missing" in str(err.value)


def test_misshaped_keys_are_named(own_sd):
    sd = dict(own_sd)
    sd["pixel_fuser.sensory_compress.weight"] = torch.zeros(256, 257, 1, 1)  # single-object layout
    with pytest.raises(CheckpointMismatchError) as err:
        load_weights(CutieNetwork("small"), sd)
    assert [m[0] for m in err.value.mismatched] == ["pixel_fuser.sensory_compress.weight"]
    assert "pixel_fuser.sensory_compress.weight (expected [256, 258, 1, 1], found [256, 257, 1, 1])" in str(err.value)


def test_base_checkpoint_into_small_network_fails_clearly():
    with pytest.raises(CheckpointMismatchError) as err:
        load_weights(CutieNetwork("small"), CutieNetwork("base").state_dict())
    assert "pixel_encoder.layer2.0.conv3.weight" in err.value.unexpected
    assert any(k == "pix_feat_proj.weight" for k, _, _ in err.value.mismatched)


def test_unknown_keys_are_rejected(own_sd):
    sd = dict(own_sd)
    sd["some_other_model.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointMismatchError, match="some_other_model.weight"):
        load_weights(CutieNetwork("small"), sd)


def test_training_only_keys_accepted_and_optional(own_sd):
    net = CutieNetwork("small")
    reference = {k: v.clone() for k, v in own_sd.items()}
    # absent training-only head: fine
    without = {k: v for k, v in reference.items() if not k.startswith("aux_computer.")}
    load_weights(net, without)
    # extra training-only entries: accepted and unused
    extra = dict(reference, **{"aux_computer.query_aux.projection.weight": torch.zeros(1, 256, 1, 1)})
    load_weights(net, extra)
    assert torch.equal(net.state_dict()["mask_decoder.pred.weight"], reference["mask_decoder.pred.weight"])


def test_wrappers_and_prefixes(tmp_path, own_sd):
    for wrapped in ({"weights": own_sd}, {"model": own_sd}, {f"module.{k}": v for k, v in own_sd.items()}):
        path = tmp_path / "ckpt.pth"
        torch.save(wrapped, path)
        assert set(read_checkpoint(path)) == set(own_sd)
