"""Per-object statistics of each protocol, checked on hand-computed sequences."""
from __future__ import annotations

import math

import numpy as np
import pytest

from submission.jf.protocols import (davis_statistics, mose_segments, normalize_protocols,
                                     vosb_first_counted)


def test_davis_mean_recall_decay_by_hand():
    # n = 8: bin edges round(linspace(1, 8, 5) + 1e-10) - 1 = [0, 2, 4, 5, 7]; first bin v[0:3], last v[5:8]
    v = np.array([1, 1, 1, 1, 0, 0, 0, 0], float)
    assert davis_statistics(v) == (0.5, 0.5, 1.0)
    v = np.array([0.2, 0.4, 0.9, 0.6, 0.1, 0.7, 0.3, 0.5])
    m, r, d = davis_statistics(v)
    assert m == pytest.approx(v.mean()) and r == 3 / 8
    assert d == pytest.approx(np.mean([0.2, 0.4, 0.9]) - np.mean([0.7, 0.3, 0.5]))


def test_davis_decay_beyond_256_frames():
    # 300 frames: edges [0, 75, 150, 224, 299]; the official uint8 cast wraps 299 -> 43, so the last bin
    # v[224:44] is empty and decay is NaN; the default uses the true edges
    v = np.zeros(300)
    v[:75] = 1.0
    assert davis_statistics(v)[2] == pytest.approx(75 / 76)
    assert math.isnan(davis_statistics(v, strict_compat=True)[2])
    # up to 255 frames both agree
    w = np.random.default_rng(0).random(255)
    assert davis_statistics(w) == davis_statistics(w, strict_compat=True)


def test_mose_disappear_reappear_segments_by_hand():
    empty = np.array([0, 0, 1, 1, 0, 0, 1], bool)
    j = np.arange(7) / 10
    f = j + 0.05
    d_j, d_f, r_j, r_f = mose_segments(j, f, empty)
    # disappear at 2 (until the reappearance at 4) and at 6 (to the end): means 0.25 and 0.6
    assert d_j == pytest.approx((0.25 + 0.6) / 2) and d_f == pytest.approx((0.30 + 0.65) / 2)
    # reappear at 4, until the next disappearance at 6
    assert r_j == pytest.approx(0.45) and r_f == pytest.approx(0.5)


def test_mose_absent_from_the_start_is_not_a_disappearance():
    empty = np.array([1, 1, 0, 0], bool)
    j = np.array([1.0, 1.0, 0.5, 0.7])
    d_j, d_f, r_j, r_f = mose_segments(j, j, empty)
    assert d_j is None and d_f is None
    assert r_j == pytest.approx(0.6)
    assert mose_segments(j, j, np.zeros(4, bool)) == (None, None, None, None)


def test_vosb_start_rule():
    gt = np.array([0, 0, 1, 1], bool)
    assert vosb_first_counted(gt, np.array([0, 1, 0, 0], bool)) == 1
    assert vosb_first_counted(gt, np.zeros(4, bool)) == 2
    assert vosb_first_counted(np.zeros(4, bool), np.ones(4, bool)) is None


def test_protocol_names():
    assert normalize_protocols("all") == ("davis", "mosev2", "vos-benchmark")
    assert normalize_protocols(["vosb", "MOSE"]) == ("mosev2", "vos-benchmark")
    with pytest.raises(ValueError, match="unknown protocol"):
        normalize_protocols("youtube")
