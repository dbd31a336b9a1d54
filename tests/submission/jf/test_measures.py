"""FrameScorer: J and every F variant per object, by hand and against a full-image OpenCV reference."""
from __future__ import annotations

import numpy as np
import pytest

from submission.jf import FrameScorer
from submission.jf.footprints import Radii


def test_two_dots_by_hand():
    # 100x100: DAVIS radius ceil(0.008 * 141.4) = 2; MOSEv2: GT area 1 -> F-dot radius ceil(0.1) = 1 (plus)
    gt = np.zeros((100, 100), np.uint8)
    pred = np.zeros((100, 100), np.uint8)
    gt[50, 50] = 1
    pred[50, 53] = 1
    s = FrameScorer(gt.shape).score(gt, pred, [1])
    assert s.inter[0] == 0 and s.gt_area[0] == 1 and s.pred_area[0] == 1
    assert s.J[0] == 0.0
    assert s.J_mose[0] == pytest.approx(1 / 3)      # (0 + 1) / (2 + 1)
    # boundaries x in {49,50} vs {52,53}: radius 2 matches half of each -> P = R = F = 0.5
    assert s.F[0] == 0.5 and s.F_mose[0] == 0.5
    assert s.Fdot[0] == 0.0                          # plus footprint: nothing within 1 px


def test_empty_and_identical_cases():
    gt = np.zeros((60, 80), np.uint8)
    gt[10:30, 20:50] = 1
    gt[40:50, 5:15] = 2
    pred = gt.copy()
    pred[pred == 2] = 0          # object 2 lost
    pred[0:5, 70:80] = 3         # object 3 only predicted
    s = FrameScorer(gt.shape).score(gt, pred, [1, 2, 3, 4])
    d = s.as_dict()
    assert d[1]["J"] == 1.0 and d[1]["F"] == 1.0 and d[1]["Fdot"] == 1.0 and d[1]["J_mose"] == 1.0
    assert d[2]["J"] == 0.0 and d[2]["F"] == 0.0 and d[2]["J_mose"] == pytest.approx(1 / 101)
    assert d[3]["J"] == 0.0 and d[3]["F"] == 0.0 and d[3]["J_mose"] == pytest.approx(1 / 51)
    assert d[4] == dict(J=1.0, J_mose=1.0, F=1.0, F_mose=1.0, Fdot=1.0, gt_area=0, pred_area=0, inter=0)


def test_only_requested_variants_are_computed():
    gt = np.zeros((100, 100), np.uint8)
    gt[10:20, 10:20] = 1
    s = FrameScorer(gt.shape, davis_f=False).score(gt, gt, [1])
    assert np.isnan(s.F[0]) and s.Fdot[0] == 1.0
    s = FrameScorer(gt.shape, mose_f=False).score(gt, gt, [1])
    assert s.F[0] == 1.0 and np.isnan(s.Fdot[0])


def _reference(gt, pred, oid, radius):
    """Full-image reference: seg2bmap rules with numpy shifts, cv2.dilate with skimage's disk."""
    cv2 = pytest.importorskip("cv2")
    morphology = pytest.importorskip("skimage.morphology")

    def bmap(seg):
        e = np.zeros_like(seg)
        s = np.zeros_like(seg)
        se = np.zeros_like(seg)
        e[:, :-1], s[:-1, :], se[:-1, :-1] = seg[:, 1:], seg[1:, :], seg[1:, 1:]
        b = (seg ^ e) | (seg ^ s) | (seg ^ se)
        b[-1, :] = seg[-1, :] ^ e[-1, :]
        b[:, -1] = seg[:, -1] ^ s[:, -1]
        b[-1, -1] = False
        return b.astype(np.uint8)

    fb, gb = bmap(pred == oid), bmap(gt == oid)
    k = morphology.disk(radius).astype(np.uint8)
    fd, gd = cv2.dilate(fb, k), cv2.dilate(gb, k)
    n_fg, n_gt = int(fb.sum()), int(gb.sum())
    if n_fg == 0 and n_gt == 0:
        return 1.0
    if n_fg == 0 or n_gt == 0:
        return 0.0
    p, r = (fb & gd).sum() / n_fg, (gb & fd).sum() / n_gt
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


@pytest.mark.parametrize("shape", [(120, 200), (480, 854)])
def test_random_scenes_match_full_image_reference(shape):
    rng = np.random.default_rng(sum(shape))
    h, w = shape
    yy, xx = np.ogrid[:h, :w]
    radii = Radii.for_shape(shape)
    scorer = FrameScorer(shape)
    for _ in range(6):
        gt = np.zeros(shape, np.uint8)
        pred = np.zeros(shape, np.uint8)
        for oid in (1, 2, 3):
            for lab, jitter in ((gt, 0), (pred, 8)):
                cy, cx = rng.integers(-10, h + 10) + jitter, rng.integers(-10, w + 10)
                ry, rx = rng.integers(2, h // 3), rng.integers(2, w // 3)
                lab[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = oid
            if rng.random() < 0.3:
                pred[rng.random(shape) < 0.002] = oid
        s = scorer.score(gt, pred, [1, 2, 3, 4])
        for k, oid in enumerate(s.ids):
            area = int((gt == oid).sum())
            r_f, r_dot = radii.mose_radii(area)
            assert s.F[k] == pytest.approx(_reference(gt, pred, oid, radii.ceil_radius), abs=1e-12)
            assert s.F_mose[k] == pytest.approx(_reference(gt, pred, oid, r_f), abs=1e-12)
            assert s.Fdot[k] == pytest.approx(_reference(gt, pred, oid, r_dot), abs=1e-12)
            inter = int(((gt == oid) & (pred == oid)).sum())
            union = int(((gt == oid) | (pred == oid)).sum())
            assert s.J[k] == (1.0 if union == 0 else inter / union)


@pytest.mark.parametrize("shape", [(50, 50), (40, 60), (12, 20)])
def test_tiny_images_with_degenerate_footprints_match_reference(shape):
    # 0.008 * diagonal < 1: MOSEv2's float radius gives an all-zero skimage disk, which cv2 treats as the
    # kernel's top-left element only
    rng = np.random.default_rng(shape[0])
    for _ in range(5):
        gt = (rng.random(shape) < 0.3).astype(np.uint8)
        pred = (rng.random(shape) < 0.3).astype(np.uint8)
        radii = Radii.for_shape(shape)
        s = FrameScorer(shape).score(gt, pred, [1])
        r_f, r_dot = radii.mose_radii(int(gt.sum()))
        assert s.F[0] == pytest.approx(_reference(gt, pred, 1, radii.ceil_radius), abs=1e-12)
        assert s.F_mose[0] == pytest.approx(_reference(gt, pred, 1, r_f), abs=1e-12)
        assert s.Fdot[0] == pytest.approx(_reference(gt, pred, 1, r_dot), abs=1e-12)
