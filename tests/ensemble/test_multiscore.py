"""The sweep's many-settings scorer must agree exactly with the project evaluator's FrameScorer."""
from __future__ import annotations

import numpy as np
import pytest

from ensemble.multiscore import MultiScorer
from submission.jf.measures import FrameScorer

FIELDS = ("gt_area", "pred_area", "inter", "F", "F_mose", "Fdot")


def _blob(h, w, cy, cx, ry, rx):
    yy, xx = np.mgrid[:h, :w]
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1


def _case(rng, h, w, n_obj, touch_border):
    gt = np.zeros((h, w), np.uint8)
    base = np.zeros((h, w), np.uint8)
    for o in range(1, n_obj + 1):
        cy, cx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
        if touch_border and o == 1:
            cy, cx = h - 3, w - 4          # crosses the south-east corner: exercises the edge replication
        ry, rx = rng.uniform(0.08, 0.3) * h, rng.uniform(0.08, 0.3) * w
        gt[_blob(h, w, cy, cx, ry, rx)] = o
        base[_blob(h, w, cy + rng.normal(0, 3), cx + rng.normal(0, 3), ry * 1.05, rx * 0.95)] = o
    # variable pixels: a band where GT and base disagree, plus random speckle and a far-away blob
    var = (gt != base) | (rng.random((h, w)) < 0.02) | _blob(h, w, 0.1 * h, 0.9 * w, 6, 9)
    idx = np.flatnonzero(var)
    return gt, base, idx


@pytest.mark.parametrize("seed,n_obj,touch", [(0, 1, False), (1, 3, True), (2, 2, False)])
@pytest.mark.parametrize("flags", [(True, True), (True, False)])
def test_multiscorer_equals_framescorer(seed, n_obj, touch, flags):
    rng = np.random.default_rng(seed)
    h, w = 120, 200
    gt, base, idx = _case(rng, h, w, n_obj, touch)
    S = 7
    var_labels = rng.integers(0, n_obj + 2, size=(S, idx.size)).astype(np.uint8)   # includes an unknown id
    var_labels[0] = base.ravel()[idx]                        # setting 0 = the base itself
    var_labels[1] = 0                                        # setting 1 erases every variable pixel
    ids = list(range(1, n_obj + 2))                          # the last id is absent from GT (and often pred)
    multi = MultiScorer((h, w), *flags).score(gt, base, idx, var_labels, ids)
    single = FrameScorer((h, w), *flags)
    for s in range(S):
        pred = base.copy().ravel()
        pred[idx] = var_labels[s]
        ref = single.score(gt, pred.reshape(h, w), ids)
        for f in FIELDS:
            np.testing.assert_array_equal(getattr(multi[s], f), getattr(ref, f), err_msg=f"setting {s} field {f}")


def test_multiscorer_large_object_uses_mose_float_radius():
    """A large object switches MOSEv2's F to the off-centre float-radius disk: must still match."""
    h, w = 240, 427
    gt = np.zeros((h, w), np.uint8)
    gt[_blob(h, w, 120, 200, 100, 170)] = 1
    base = np.zeros_like(gt)
    base[_blob(h, w, 123, 205, 98, 165)] = 1
    idx = np.flatnonzero(gt != base)
    rng = np.random.default_rng(5)
    var_labels = (rng.random((4, idx.size)) < 0.5).astype(np.uint8)
    multi = MultiScorer((h, w)).score(gt, base, idx, var_labels, [1])
    single = FrameScorer((h, w))
    for s in range(4):
        pred = base.copy().ravel()
        pred[idx] = var_labels[s]
        ref = single.score(gt, pred.reshape(h, w), [1])
        for f in FIELDS:
            np.testing.assert_array_equal(getattr(multi[s], f), getattr(ref, f))


def test_multiscorer_without_variable_pixels():
    gt = np.zeros((50, 60), np.uint8)
    gt[10:30, 10:40] = 2
    base = np.roll(gt, 3, axis=1)
    multi = MultiScorer(gt.shape).score(gt, base, np.zeros(0, np.int64), np.zeros((2, 0), np.uint8), [2])
    ref = FrameScorer(gt.shape).score(gt, base, [2])
    for s in range(2):
        for f in FIELDS:
            np.testing.assert_array_equal(getattr(multi[s], f), getattr(ref, f))
