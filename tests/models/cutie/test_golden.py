"""Exactness against the official Cutie outputs (../shared/golden/cutie): variants A-D and t=0 intermediates.

Weights come from the fixture's deterministic recipe (sha256-checked) and are loaded strictly; the frame
protocol is the README's. Tolerances are check_outputs.py's (max |d prob|, max |d logits|, argmax mismatch).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.cutie import CutieNetwork, CutieSettings, InferenceCore, soft_aggregate

VARIANTS = ["A_small_mose_default", "B_small_fifo_stagger_pad", "C_small_long_term", "D_base_mose_default"]


def _network(variant_model, recipe_state_dict):
    net = CutieNetwork(variant_model)
    net.load_state_dict(recipe_state_dict(variant_model), strict=True)
    return net.eval()


def _run_protocol(net, variant, video):
    """The README frame protocol; returns prob (T,K+1,H,W) and logits (T,K,h4,w4) (NaN at t=0)."""
    settings = dict(variant["settings"])
    settings.pop("save_aux")
    core = InferenceCore(net, CutieSettings.from_dict(settings))
    y0, y1, x0, x1 = variant["crop"]
    T = variant["T"]
    probs, logits = [], []
    for t in range(T):
        image = torch.from_numpy(video["frames"][t, y0:y1, x0:x1]).permute(2, 0, 1).float() / 255
        if t == 0:
            mask = torch.from_numpy(video["first_mask"][y0:y1, x0:x1]).long()
            result = core.step(image, mask, [1, 2], end=False)
        else:
            result = core.step(image, end=(t == T - 1))
        probs.append(result.prob.numpy())
        logits.append(result.logits.numpy())
    return np.stack(probs), np.stack(logits)


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_matches_official(name, golden_dir, variants, recipe_state_dict, check_outputs):
    variant = variants[name]
    net = _network(variant["model"], recipe_state_dict)
    video = np.load(golden_dir / "video.npz")
    prob, logits = _run_protocol(net, variant, video)
    golden = np.load(golden_dir / f"{name}.npz")

    assert prob.shape == golden["prob"].shape
    assert logits.shape == golden["obj_logits_s4"].shape
    # t=0: no network prediction, exactly like the golden's NaN
    assert np.isnan(logits[0]).all() and not np.isnan(logits[1:]).any()
    tol = check_outputs.TOL
    d_prob = np.abs(prob.astype(np.float64) - golden["prob"]).max()
    finite = ~np.isnan(golden["obj_logits_s4"])
    d_logits = np.abs(logits[finite].astype(np.float64) - golden["obj_logits_s4"][finite]).max()
    mismatch = (prob.argmax(1) != golden["mask"]).mean()
    print(f"{name}: max|d prob| {d_prob:.2e}  max|d logits| {d_logits:.2e}  argmax mismatch {mismatch:.2e}")
    assert d_prob <= tol["prob"], d_prob
    assert d_logits <= tol["obj_logits_s4"], d_logits
    assert mismatch <= tol["argmax_mismatch_frac"], mismatch
    assert check_outputs.check(name, {"prob": prob, "obj_logits_s4": logits}, golden_dir=str(golden_dir))


def test_first_frame_intermediates(golden_dir, recipe_state_dict):
    """Module outputs at t=0 of variant A (encoders, key projection, mask encoder, summarizer)."""
    net = _network("small", recipe_state_dict)
    video = np.load(golden_dir / "video.npz")
    inter = np.load(golden_dir / "A_small_mose_default_intermediates.npz")
    image = torch.from_numpy(video["frames"][0]).permute(2, 0, 1).float()[None] / 255
    mask = torch.from_numpy(video["first_mask"]).long()
    with torch.inference_mode():
        normed = net.normalize(image)
        (f16, f8, f4), pix_feat, key, shrinkage, selection = net.encode_image(normed)
        one_hot = torch.stack([mask == 1, mask == 2])[None]
        prob = torch.softmax(soft_aggregate(one_hot, dim=1), dim=1)[:, 1:]
        # the mask encoder is fed the golden's inputs so that its check is independent of ``prob``
        in_masks = torch.from_numpy(inter["t0/mask_encoder.in_masks"])
        in_sensory = torch.from_numpy(inter["t0/mask_encoder.in_sensory"])
        value, new_sensory, summaries = net.encode_mask(normed, pix_feat, in_sensory, in_masks)
    ours = {
        "pixel_encoder.f16": f16, "pixel_encoder.f8": f8, "pixel_encoder.f4": f4,
        "pix_feat_proj.pix_feat": pix_feat, "key_proj.key": key, "key_proj.shrinkage": shrinkage,
        "key_proj.selection": selection, "mask_encoder.in_masks": prob, "mask_encoder.mask_value": value,
        "mask_encoder.new_sensory": new_sensory, "object_summarizer.summaries": summaries,
    }
    for name, tensor in ours.items():
        ref = inter[f"t0/{name}"]
        scale = max(1.0, float(np.abs(ref).max()))
        err = float(np.abs(tensor.numpy() - ref).max())
        assert err <= 1e-4 * scale, f"{name}: max abs diff {err:.3e} (scale {scale:.1f})"
