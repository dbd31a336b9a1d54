"""Boundary maps, disk footprints and boundary F on arrays small enough to check by hand."""
from __future__ import annotations

import numpy as np
import pytest

from submission.jf.boundary import BoundaryPair, boundary_map, extended_crop, f_from_counts
from submission.jf.footprints import Radii, disk_footprint, skimage_disk


def bmap(mask: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    return boundary_map(extended_crop(mask.astype(bool), 0, h - 1, 0, w - 1))


def test_boundary_map_of_a_square_by_hand():
    seg = np.zeros((4, 4), bool)
    seg[1:3, 1:3] = True
    # a pixel is boundary when it differs from E, S or SE; last row: E only; last column: S only
    expected = np.array([[1, 1, 1, 0],
                         [1, 0, 1, 0],
                         [1, 1, 1, 0],
                         [0, 0, 0, 0]], bool)
    assert np.array_equal(bmap(seg), expected)


def test_image_border_never_counts():
    assert not bmap(np.ones((3, 5), bool)).any()
    seg = np.zeros((3, 3), bool)
    seg[:, 2] = True  # touches the right border: only its left edge is a boundary
    assert np.array_equal(bmap(seg), np.array([[0, 1, 0], [0, 1, 0], [0, 1, 0]], bool))


def test_boundary_on_a_crop_equals_full_image():
    rng = np.random.default_rng(3)
    seg = rng.random((30, 40)) < 0.3
    full = bmap(seg)
    y0, y1, x0, x1 = 5, 29, 7, 39   # crop touching the bottom-right corner
    assert np.array_equal(boundary_map(extended_crop(seg, y0, y1, x0, x1)), full[y0:y1 + 1, x0:x1 + 1])


def test_disk_footprints_by_hand():
    plus = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)
    assert np.array_equal(disk_footprint(1.0).mask(), plus)
    assert disk_footprint(2.0).mask().sum() == 13
    assert disk_footprint(12.0).mask().sum() == 441
    # float radius: grid arange(-1.5, 2.5) = [-1.5, -0.5, 0.5, 1.5], anchor 2 -> the 2x2 block up-left
    fp = disk_footprint(1.5)
    assert fp.dy.tolist() == [-1, 0] and fp.lo.tolist() == [-1, -1] and fp.hi.tolist() == [0, 0]
    assert fp.box == 0 and disk_footprint(12.0).box == 8


def test_skimage_disk_formula_matches_skimage():
    morphology = pytest.importorskip("skimage.morphology")
    for r in (1.0, 2.0, 5.0, 12.0, 18.0, 7.836974, 11.748838240438925, 17.62, 1.5, 2.5):
        assert np.array_equal(skimage_disk(r), morphology.disk(r).astype(bool)), r


def test_radii_rules():
    r = Radii.for_shape((720, 1280))
    assert r.ceil_radius == 12.0 and abs(r.diag_radius - 11.748838240438925) < 1e-12
    assert Radii.for_shape((480, 854)).ceil_radius == 8.0
    assert Radii.for_shape((1080, 1920)).ceil_radius == 18.0
    assert r.mose_radii(12100) == (12.0, 11.0)          # ceil(0.1 * 110) = 11 < 11.75: F 12, F-dot 11
    assert r.mose_radii(12101) == (r.diag_radius,) * 2   # ceil(11.0005) = 12 >= 11.75: float radius for both
    assert r.mose_radii(1) == (12.0, 1.0)
    assert r.mose_radii(0) == (r.diag_radius,) * 2       # empty GT: F decided without the radius anyway


def test_f_from_counts_cases():
    assert f_from_counts(0, 0, 0, 0) == 1.0
    assert f_from_counts(0, 5, 0, 0) == 0.0
    assert f_from_counts(5, 0, 0, 0) == 0.0
    assert f_from_counts(4, 4, 2, 2) == 0.5
    assert f_from_counts(4, 2, 0, 0) == 0.0
    assert f_from_counts(4, 2, 4, 1) == pytest.approx(2 * 1 * 0.5 / 1.5)


def test_boundary_f_of_two_dots_by_hand():
    # dots at (5,5) and (5,8): boundaries {(4,4),(4,5),(5,4),(5,5)} and {(4,7),(4,8),(5,7),(5,8)}
    g = np.zeros((12, 12), bool)
    p = np.zeros((12, 12), bool)
    g[5, 5] = p[5, 8] = True
    pair = BoundaryPair(bmap(g), bmap(p), reach=3)
    assert pair.n_gt == pair.n_fg == 4
    assert pair.f_measure(disk_footprint(1.0)) == 0.0   # nearest pairs (x=5 vs x=7) are 2 apart
    # radius 2: pred x=7 pixels match gt x=5 (P = 2/4); gt x=5 pixels match pred x=7 (R = 2/4)
    assert pair.f_measure(disk_footprint(2.0)) == 0.5
    assert pair.f_measure(disk_footprint(3.0)) == 1.0   # x=4<->7 and x=5<->8 are 3 apart


def test_boundary_f_partial_match_by_hand():
    g = np.zeros((12, 12), bool)
    p = np.zeros((12, 12), bool)
    g[5, 5] = p[5, 7] = True
    # gt boundary x in {4,5}, pred boundary x in {6,7} on rows 4 and 5: with radius 1 only x=5<->6 match
    pair = BoundaryPair(bmap(g), bmap(p), reach=2)
    assert pair.f_measure(disk_footprint(1.0)) == 0.5
    assert pair.f_measure(disk_footprint(2.0)) == 1.0
