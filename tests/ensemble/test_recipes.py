"""The ensemble's own Cutie mapping (it may not import models) against the Cutie stage's ``models.cutie.recipe``,
and the SAM2 footing's exactness at the float32 rounding edge of sigmoid(z) = 0.5."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ensemble import recipes
from ensemble.ops import first_argmax
from tests.conftest import shared_path

cutie_recipe = pytest.importorskip("models.cutie.recipe", reason="the Cutie stage's recipe module is not present")


@pytest.mark.parametrize("variant", ["A_small_mose_default", "B_small_fifo_stagger_pad", "D_base_mose_default"])
def test_cutie_mapping_equals_the_cutie_stage_on_golden_logits(variant):
    cdir = shared_path("golden", "cutie")
    z = np.load(cdir / f"{variant}.npz")
    crop = json.loads((cdir / "variants.json").read_text())[variant]["crop"]
    h, w = crop[1] - crop[0], crop[3] - crop[2]
    hp, wp = (int(s) * 4 for s in z["obj_logits_s4"].shape[-2:])
    pad = cutie_recipe.pad_amounts(h, w)
    theirs_recipe = cutie_recipe.make_recipe(padded_hw=[hp, wp], pad=pad)
    for t in range(1, z["mask"].shape[0]):
        logits = z["obj_logits_s4"][t]
        theirs = cutie_recipe.stride4_logits_to_prob(logits, theirs_recipe)
        ours = recipes.cutie_video_prob(torch.from_numpy(logits.copy()), theirs_recipe).numpy()
        assert np.array_equal(ours, theirs)


@pytest.mark.parametrize("resize", [[], [[50, 70]], [[50, 70], [45, 61]]])
def test_cutie_mapping_equals_the_cutie_stage_with_resizes(resize):
    rng = np.random.default_rng(3)
    pad = cutie_recipe.pad_amounts(37, 53)                     # odd sizes: asymmetric padding
    hp, wp = 37 + pad[2] + pad[3], 53 + pad[0] + pad[1]
    rec = cutie_recipe.make_recipe(padded_hw=[hp, wp], pad=pad, resize_hw=resize)
    for n in (0, 1, 3):
        logits = rng.normal(0, 5, (n, hp // 4, wp // 4)).astype(np.float32)
        theirs = cutie_recipe.stride4_logits_to_prob(logits, rec)
        ours = recipes.cutie_video_prob(torch.from_numpy(logits), rec).numpy()
        assert ours.shape == theirs.shape == (n + 1, *rec["video_hw"])
        assert np.array_equal(ours, theirs)


def test_cutie_output_scaling_applies_to_object_logits_before_aggregation():
    rng = np.random.default_rng(4)
    rec = cutie_recipe.make_recipe(padded_hw=[32, 48], pad=[0, 0, 0, 0])
    logits = rng.normal(0, 3, (2, 8, 12)).astype(np.float32)
    scaled = cutie_recipe.stride4_logits_to_prob(2.0 * logits - 1.0, rec)
    ours = recipes.cutie_video_prob(torch.from_numpy(logits), rec, scale=2.0, bias=-1.0).numpy()
    assert np.array_equal(ours, scaled)


def test_sam2_footing_is_exact_at_the_sigmoid_rounding_edge():
    """float32 sigmoid(z) is exactly 0.5 for tiny z > 0; SAM2 says object (z > 0), and so must we."""
    z = torch.tensor([[[1e-9, 0.0, -1e-9, 3e-8, -3e-8, 5.0, -5.0]]], dtype=torch.float32)
    assert torch.sigmoid(z)[0, 0, 0].item() == 0.5          # the premise: rounding really happens
    m = recipes.sam2_channels(z[0][None], [1], 2)           # one object, already at video resolution
    assert first_argmax(m).tolist() == [[1, 0, 0, 1, 0, 1, 0]]
    two = torch.stack([z[0, 0], torch.full((7,), -20.0)])[:, None, :]
    m2 = recipes.sam2_channels(two, [1, 2], 3)
    assert first_argmax(m2).tolist() == [[1, 0, 0, 1, 0, 1, 0]]


def test_cutie_flipped_member_mirrors_after_unpadding_on_both_sides():
    """A flipped member mirrors the unpadded frame, so with odd (asymmetric) padding the mirror must come after
    unpad and resize: the ensemble and the Cutie stage's recipe must agree on that."""
    rng = np.random.default_rng(5)
    pad = cutie_recipe.pad_amounts(37, 53)
    assert pad[0] != pad[1]
    hp, wp = 37 + pad[2] + pad[3], 53 + pad[0] + pad[1]
    rec = cutie_recipe.make_recipe(padded_hw=[hp, wp], pad=pad, resize_hw=[[50, 70]])
    logits = rng.normal(0, 3, (2, hp // 4, wp // 4)).astype(np.float32)
    theirs = cutie_recipe.stride4_logits_to_prob(logits, dict(rec, hflip=True))
    ours = recipes.hflip(recipes.cutie_video_prob(torch.from_numpy(logits), rec)).numpy()
    assert np.array_equal(ours, theirs)
    assert np.array_equal(theirs, cutie_recipe.stride4_logits_to_prob(logits, rec)[:, :, ::-1])
