"""The stride-4 logits recipe: geometry helpers and the pure logits -> probabilities function."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from models.cutie import make_recipe, soft_aggregate, stride4_logits_to_prob
from models.cutie.recipe import pad_amounts, pad_to_multiple, unpad, with_resize


def test_pad_amounts_floor_half_top_left():
    assert pad_amounts(232, 420) == (6, 6, 4, 4)
    assert pad_amounts(240, 432) == (0, 0, 0, 0)
    assert pad_amounts(481, 855) == (4, 5, 7, 8)
    x = torch.arange(5 * 7, dtype=torch.float32).view(1, 5, 7)
    padded, pad = pad_to_multiple(x)
    assert padded.shape[-2:] == (16, 16) and torch.equal(unpad(padded, pad), x)


def test_soft_aggregate_clamps_and_has_background_first():
    prob = torch.tensor([[[0.0]], [[1.0]]])  # two objects, one pixel
    logits = soft_aggregate(prob, dim=0)
    p = torch.sigmoid(logits)[:, 0, 0]
    assert torch.allclose(p, torch.tensor([1e-7, 1e-7, 1 - 1e-7]), rtol=1e-3, atol=0)


def test_recipe_is_json_and_derives_sizes():
    r = make_recipe(padded_hw=[240, 432], pad=[6, 6, 4, 4], resize_hw=[[464, 840]])
    assert json.loads(json.dumps(r)) == r
    assert r["internal_hw"] == [232, 420] and r["video_hw"] == [464, 840]
    assert with_resize(r, (464, 840)) is r
    assert with_resize(r, (100, 200))["resize_hw"] == [[464, 840], [100, 200]]


def test_manual_formula_matches():
    """The documented steps, spelled out with numpy/torch primitives, give the same probabilities."""
    rs = np.random.RandomState(0)
    logits = rs.randn(3, 8, 12).astype(np.float32) * 4
    recipe = make_recipe(padded_hw=[32, 48], pad=[1, 2, 3, 4], resize_hw=[[40, 50]])
    ours = stride4_logits_to_prob(logits, recipe)
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    full = np.concatenate([np.prod(1 - p, 0, keepdims=True), p]).clip(1e-7, 1 - 1e-7)
    agg = torch.from_numpy(np.log(full / (1 - full))).float()[None]
    up = torch.nn.functional.interpolate(agg, size=(32, 48), mode="bilinear", align_corners=False)
    q = torch.softmax(up, 1)[:, :, 3:32 - 4, 1:48 - 2]
    q = torch.nn.functional.interpolate(q, size=(40, 50), mode="bilinear", align_corners=False)[0].numpy()
    assert ours.shape == (4, 40, 50) and ours.dtype == np.float32
    # float64 reference: float32 rounding of log(P / (1 - P)) near the clamp bounds stays below 1e-4
    np.testing.assert_allclose(ours, q, atol=1e-4)
    np.testing.assert_allclose(ours.sum(0), 1, atol=1e-5)


def test_flip_variants():
    rs = np.random.RandomState(1)
    logits = rs.randn(2, 4, 4).astype(np.float32)
    plain = make_recipe(padded_hw=[16, 16], pad=[0, 0, 0, 0])
    mirrored = dict(plain, hflip=True)
    a = stride4_logits_to_prob(logits, plain)
    b = stride4_logits_to_prob(logits[:, :, ::-1].copy(), mirrored)
    np.testing.assert_allclose(a, b, atol=1e-6)
    aug = dict(plain, flip_aug=True)
    both = stride4_logits_to_prob(np.stack([logits, logits[:, :, ::-1]]), aug)
    np.testing.assert_allclose(both, a, atol=1e-6)
    with pytest.raises(ValueError, match="flip_aug"):
        stride4_logits_to_prob(logits, aug)
    with pytest.raises(ValueError, match="padded_hw"):
        stride4_logits_to_prob(logits[:, :3], plain)
