"""Disk footprints and the tolerance radii of the boundary measure, exactly as the official evaluators build them.

The evaluators dilate boundary maps with ``cv2.dilate(bmap, skimage.morphology.disk(r))``. We never dilate; we
only need, for every boundary pixel of one mask, whether a boundary pixel of the other lies under the footprint
anchored on it. A disk's rows are contiguous runs, so a footprint is stored as one column interval per row
offset, relative to the anchor cv2 uses (``size // 2``). Building the interval table from the same float
formula skimage uses keeps float radii exact too: MOSEv2 passes the un-rounded ``0.008 * diagonal`` for large
objects, which gives an off-centre disk whose centre sits a fraction of a pixel up-left of the anchor.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

BOUND_TH = 0.008        # tolerance as a fraction of the image diagonal (all three evaluators)
ADAPTIVE_TH = 0.1       # MOSEv2 F-dot: radius ceil(0.1 * sqrt(GT area)), capped at BOUND_TH * diagonal


class Footprint:
    """Row offsets ``dy`` (relative to the anchor) with their inclusive column interval ``[lo, hi]``.

    ``box`` is the half-size ``k`` of the largest square ``[-k, k]^2`` inside the footprint (-1 if none): a
    pixel of the other boundary inside that square is a match without looking at the rows one by one.
    ``reach`` is the largest |offset| in any direction: how far lookup tables must be padded.
    """

    def __init__(self, radius: float, dy: np.ndarray, lo: np.ndarray, hi: np.ndarray):
        self.radius = float(radius)
        self.dy, self.lo, self.hi = dy, lo, hi
        self.reach = int(max(np.abs(dy).max(), np.abs(lo).max(), np.abs(hi).max()))
        k = -1
        while k + 1 <= self.reach:
            n = k + 1
            rows = (dy >= -n) & (dy <= n)
            if np.count_nonzero(rows) < 2 * n + 1 or np.any(lo[rows] > -n) or np.any(hi[rows] < n):
                break
            k = n
        self.box = k

    def __repr__(self) -> str:
        return f"Footprint(radius={self.radius!r}, rows={self.dy.size}, box={self.box})"

    def mask(self) -> np.ndarray:
        """The footprint as a boolean array centred on the anchor (for tests and documentation)."""
        r = self.reach
        out = np.zeros((2 * r + 1, 2 * r + 1), bool)
        for dy, lo, hi in zip(self.dy, self.lo, self.hi):
            out[r + dy, r + lo: r + hi + 1] = True
        return out


def skimage_disk(radius: float) -> np.ndarray:
    """``skimage.morphology.disk(radius)`` (skimage >= 0.19, default arguments) without importing skimage:
    grid ``np.arange(-radius, radius + 1)`` in both axes, keep ``x**2 + y**2 <= radius**2``."""
    grid = np.arange(-radius, radius + 1)
    x, y = np.meshgrid(grid, grid)
    return (x ** 2 + y ** 2) <= radius ** 2


@lru_cache(maxsize=256)
def disk_footprint(radius: float) -> Footprint:
    """Interval table of the disk of ``radius`` as cv2 anchors it (anchor = size // 2 on both axes)."""
    k = skimage_disk(float(radius))
    anchor = k.shape[0] // 2
    dys, los, his = [], [], []
    for row in range(k.shape[0]):
        cols = np.flatnonzero(k[row])
        if cols.size == 0:
            continue
        if cols[-1] - cols[0] + 1 != cols.size:  # cannot happen for a disk; guard the interval encoding
            raise AssertionError(f"disk({radius}) row {row} is not contiguous")
        dys.append(row - anchor)
        los.append(cols[0] - anchor)
        his.append(cols[-1] - anchor)
    if not dys:
        # radius below ~0.7 px (images under ~90 px diagonal): skimage's disk is all zeros, and cv2.dilate
        # then behaves as if only the kernel's top-left element were set
        dys, los, his = [-anchor], [-anchor], [-anchor]
    return Footprint(float(radius), np.array(dys, np.int64), np.array(los, np.int64), np.array(his, np.int64))


@dataclass(frozen=True)
class Radii:
    """Tolerance radii of one image size.

    ``diag_radius`` is the un-rounded ``0.008 * ||(H, W)||``; DAVIS, vos-benchmark (and MOSEv2 for small
    objects) use its ceiling ``ceil_radius``.
    """

    shape: tuple[int, int]
    norm: float
    diag_radius: float
    ceil_radius: float

    @classmethod
    def for_shape(cls, shape: tuple[int, int]) -> "Radii":
        norm = float(np.linalg.norm(tuple(shape)))   # the evaluators call np.linalg.norm(mask.shape)
        diag = BOUND_TH * norm
        return cls((int(shape[0]), int(shape[1])), norm, diag, float(np.ceil(diag)))

    def mose_radii(self, gt_area: int) -> tuple[float, float]:
        """MOSEv2 (F radius, F-dot radius) for an object whose GT has ``gt_area`` pixels.

        score.py: ``b = ceil(0.1 * sqrt(area))`` (or ``ceil(0.1 * diagonal)`` for an empty GT), capped at the
        float ``0.008 * diagonal``; if ``b`` is below the cap, F uses the ceiled cap and F-dot uses ``b``;
        otherwise both use the float cap itself.
        """
        if gt_area > 0:
            b = float(np.ceil(ADAPTIVE_TH * math.sqrt(gt_area)))
        else:
            b = float(np.ceil(ADAPTIVE_TH * self.norm))
        b = min(self.diag_radius, b)
        if b < self.diag_radius:
            return self.ceil_radius, b
        return self.diag_radius, self.diag_radius
