"""How far a reduced-precision or compiled run may be from its reference, and why (pure numpy: the rules are
tested on CPU by test_agreement.py, the runs themselves need CUDA).

SAM2 (bf16 autocast, as the official evaluation runs on CUDA; compiled ``vos_optimized`` vs eager)
-------------------------------------------------------------------------------------------------
bf16 keeps 8 significant bits: every rounding moves a value by up to 2^-9 (0.2 %) of its size. The golden
clip's low-res logits reach |z| ~ 20, so one rounding is worth up to ~0.04 and the ~40 matmul/norm stages of
sam2.1-tiny plus the memory loop accumulate a few of those: errors of O(0.1-0.3) on a logit are expected,
O(1) are not. Hence:

* decisions far from the threshold never flip: among pixels whose reference logit has |z| > ``SAM2_BAND`` (1.0,
  3-10x the expected error), at most ``SAM2_FLIPS_OUTSIDE_BAND`` (1e-4) change sign;
* the mask (z > 0) differs on at most ``SAM2_MASK_DIFF`` (0.5 %) of the pixels of any frame: flips can only
  happen in the thin band of near-zero logits along the boundaries; for scale, changing the mask-scaling knobs
  (a real setting change, logits moved by <= 0.037) flips up to 0.23 % of a frame (golden README section 5),
  so 0.5 % leaves room for bf16 noise a few times larger than that, and none for a lost or shifted object;
* the mean |dz| is at most ``SAM2_REL_MEAN`` (3 %) of the mean |z| (a few roundings of 0.2 % each, compounded
  over 12 frames of memory, stays well below);
* object scores (~+3 while tracked) keep their sign and move by at most ``SAM2_SCORE_ATOL`` (0.5).

What this catches: an object swapped or lost (|dz| ~ 20 on a whole object, score sign), NaN/inf from an fp16 or
bf16 overflow, autocast leaking into the stored float32 logits, a compiled graph that computes something else.
What it cannot catch: a change as small as the MASSeg mask-scaling knobs (their effect on these logits is 0.004-0.037,
below bf16's own noise); the fp32 CPU golden tests (tests/models/sam2) catch those.

Compiled vs eager runs in the same dtype (bf16) with the same rules: inductor fuses element-wise ops and keeps
fused intermediates in fp32, so it rounds less often than eager bf16 and the two differ by bf16 roundings, not by
less; bitwise equality is not a property torch.compile offers.

Cutie (AMP, fp16 autocast, vs fp32 with TF32 off)
------------------------------------------------
fp16 keeps 11 significant bits (rounding 2^-12 ~ 2.4e-4 relative). The golden's fp32 tolerance (2e-4 on prob)
is the size of a single fp16 rounding, so it cannot apply. The golden README's negative controls (one deliberate
bug each: top_k 29 instead of 30, no attention mask, align_corners, shrinkage ignored, a zeroed channel) change
the argmax of 0.31 %-1.78 % of the pixels and the probabilities by 0.38-0.88 at most. The AMP bound sits well
below the smallest of them:

* argmax differs on at most ``CUTIE_ARGMAX`` (0.1 %) of the pixels (3x below the smallest control, 0.31 %);
* mean |d prob| at most ``CUTIE_MEAN_PROB`` (2e-3; ~8 fp16 roundings);
* no NaN or inf anywhere.
The maximum |d prob| is not bounded: at a pixel where two channels tie, any rounding flips it by up to ~1.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAM2_BAND = 1.0
SAM2_FLIPS_OUTSIDE_BAND = 1e-4
SAM2_MASK_DIFF = 5e-3
SAM2_REL_MEAN = 0.03
SAM2_SCORE_ATOL = 0.5

CUTIE_ARGMAX = 1e-3
CUTIE_MEAN_PROB = 2e-3


@dataclass
class Report:
    ok: bool
    numbers: dict
    problems: list

    def line(self, name: str) -> str:
        nums = ", ".join(f"{k} {v:.3g}" for k, v in self.numbers.items())
        return f"{name}: {'OK' if self.ok else 'FAIL'} ({nums})" + ("; " + "; ".join(self.problems)
                                                                     if self.problems else "")


def sam2_agreement(ref_logits: np.ndarray, logits: np.ndarray, ref_scores: np.ndarray, scores: np.ndarray
                   ) -> Report:
    """Low-res logits (T, N, h, w) and object scores (T, N) of a run against its reference (rules above)."""
    ref = np.asarray(ref_logits, np.float64)
    got = np.asarray(logits, np.float64)
    problems = []
    if ref.shape != got.shape:
        return Report(False, {}, [f"logits shape {got.shape} != reference {ref.shape}"])
    if not np.isfinite(got).all() or not np.isfinite(np.asarray(scores, np.float64)).all():
        return Report(False, {}, ["non-finite logits or scores"])
    outside = np.abs(ref) > SAM2_BAND
    flips = (np.sign(ref) != np.sign(got)) & outside
    flip_frac = flips.sum() / max(1, outside.sum())
    mask_diff = ((ref > 0) != (got > 0)).reshape(ref.shape[0], -1).mean(axis=1).max()
    rel_mean = np.abs(ref - got).mean() / max(1e-12, np.abs(ref).mean())
    ds = np.abs(np.asarray(ref_scores, np.float64) - np.asarray(scores, np.float64))
    sign = np.sign(np.asarray(ref_scores)) == np.sign(np.asarray(scores))
    numbers = {"flips_outside_band": flip_frac, "max_frame_mask_diff": mask_diff, "rel_mean_abs_diff": rel_mean,
               "max_score_diff": float(ds.max(initial=0.0)), "max_abs_diff": float(np.abs(ref - got).max())}
    if flip_frac > SAM2_FLIPS_OUTSIDE_BAND:
        problems.append(f"{flip_frac:.2e} of the pixels with |z| > {SAM2_BAND} flipped (> {SAM2_FLIPS_OUTSIDE_BAND})")
    if mask_diff > SAM2_MASK_DIFF:
        problems.append(f"a frame's mask differs on {mask_diff:.2%} of its pixels (> {SAM2_MASK_DIFF:.1%})")
    if rel_mean > SAM2_REL_MEAN:
        problems.append(f"mean |dz| is {rel_mean:.2%} of mean |z| (> {SAM2_REL_MEAN:.0%})")
    if not sign.all():
        problems.append("an object score changed sign (object lost or found)")
    if ds.size and ds.max() > SAM2_SCORE_ATOL:
        problems.append(f"object scores moved by {ds.max():.3f} (> {SAM2_SCORE_ATOL})")
    return Report(not problems, numbers, problems)


def cutie_agreement(ref_prob: np.ndarray, prob: np.ndarray) -> Report:
    """Probabilities (T, K+1, H, W) of an AMP run against fp32 (rules above)."""
    ref = np.asarray(ref_prob, np.float64)
    got = np.asarray(prob, np.float64)
    if ref.shape != got.shape:
        return Report(False, {}, [f"prob shape {got.shape} != reference {ref.shape}"])
    if not np.isfinite(got).all():
        return Report(False, {}, ["non-finite probabilities"])
    argmax = (ref.argmax(1) != got.argmax(1)).mean()
    mean = np.abs(ref - got).mean()
    numbers = {"argmax_mismatch": argmax, "mean_abs_prob_diff": mean, "max_abs_prob_diff": np.abs(ref - got).max()}
    problems = []
    if argmax > CUTIE_ARGMAX:
        problems.append(f"argmax differs on {argmax:.3%} of the pixels (> {CUTIE_ARGMAX:.1%})")
    if mean > CUTIE_MEAN_PROB:
        problems.append(f"mean |d prob| {mean:.2e} (> {CUTIE_MEAN_PROB})")
    return Report(not problems, numbers, problems)
