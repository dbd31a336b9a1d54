"""The agreement rules of the CUDA checks (tests/gpu/agreement.py) on CPU data: they accept rounding-sized
differences and reject the failures they are meant to catch, so a gpu test built on them can fail."""
from __future__ import annotations

import numpy as np

from tests.gpu.agreement import cutie_agreement, sam2_agreement


def _sam2_like(seed=0, T=4, N=2, hw=32):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:hw, :hw]
    logits = np.empty((T, N, hw, hw), np.float32)
    for t in range(T):
        for n in range(N):
            cy, cx = 8 + 4 * n + t, 10 + 6 * n
            logits[t, n] = np.clip(20 - 2.0 * np.hypot(yy - cy, xx - cx), -20, 20) + rng.normal(0, 0.5, (hw, hw))
    scores = np.full((T, N), 3.0, np.float32)
    return logits, scores


def test_sam2_rules_accept_bf16_sized_noise_and_reject_real_failures():
    ref, scores = _sam2_like()
    rng = np.random.default_rng(1)
    bf16ish = ref * (1 + rng.normal(0, 2 ** -8, ref.shape)) + rng.normal(0, 0.02, ref.shape)
    assert sam2_agreement(ref, ref, scores, scores).ok
    assert sam2_agreement(ref, bf16ish.astype(np.float32), scores, scores + 0.1).ok
    swapped = ref[:, ::-1].copy()
    assert not sam2_agreement(ref, swapped, scores, scores).ok
    lost = scores.copy()
    lost[2:, 1] = -2.0
    assert "changed sign" in " ".join(sam2_agreement(ref, ref, scores, lost).problems)
    nan = ref.copy()
    nan[1, 0, 0, 0] = np.nan
    assert not sam2_agreement(ref, nan, scores, scores).ok
    shifted = np.roll(ref, 3, axis=-1)
    assert not sam2_agreement(ref, shifted, scores, scores).ok


def test_cutie_rules_accept_fp16_sized_noise_and_reject_argmax_changes():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (3, 3, 40, 60))
    prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    fp16ish = prob + rng.normal(0, 2.4e-4, prob.shape) * prob
    assert cutie_agreement(prob, fp16ish).ok
    flipped = prob.copy()
    idx = rng.choice(flipped[:, 0].size, size=int(0.005 * flipped[:, 0].size), replace=False)
    t, y, x = np.unravel_index(idx, flipped[:, 0].shape)
    flipped[t, :, y, x] = flipped[t, :, y, x][:, ::-1]        # reorder the channels at 0.5 % of the pixels
    report = cutie_agreement(prob, flipped)
    assert not report.ok and "argmax differs" in report.problems[0]
    assert not cutie_agreement(prob, np.full_like(prob, np.nan)).ok
