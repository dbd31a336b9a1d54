"""Per-frame J and F of every requested object, for all protocols in one pass over a pair of label maps.

``FrameScorer`` is the in-memory entry point: give it a GT and a predicted label map (uint8 ids) and the
object ids, get back per object the pixel counts (J of any protocol follows from them) and the boundary
F-measures each protocol needs. F work is done on the object's crop (union box of GT and prediction, one
pixel wider for the boundary rule), never on the full frame, so its cost follows the object's perimeter.

Which F variants are computed:

* ``F``: radius ``ceil(0.008 * diagonal)``, centred disk: DAVIS, vos-benchmark, and MOSEv2 for small objects.
* ``F_mose``: MOSEv2 score.py's ``F``: the float radius ``0.008 * diagonal`` (an off-centre disk) when the GT
  area exceeds the adaptive threshold, else the same as ``F``.
* ``Fdot``: MOSEv2's F-dot: the adaptive radius ``ceil(0.1 * sqrt(GT area))`` when it is below the cap, else
  ``F_mose``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from .boundary import BoundaryPair, boundary_map, extended_crop
from .footprints import Radii, disk_footprint


@dataclass
class FrameScores:
    """Per-object results of one frame; arrays are aligned with ``ids``. Unrequested F variants are NaN."""

    ids: np.ndarray
    gt_area: np.ndarray
    pred_area: np.ndarray
    inter: np.ndarray
    F: np.ndarray
    F_mose: np.ndarray
    Fdot: np.ndarray

    @property
    def union(self) -> np.ndarray:
        return self.gt_area + self.pred_area - self.inter

    @property
    def J(self) -> np.ndarray:
        """DAVIS / vos-benchmark J: I/U, 1 when both masks are empty."""
        return jaccard(self.inter, self.union)

    @property
    def J_mose(self) -> np.ndarray:
        """MOSEv2 J: (I+1)/(U+1), 1 when both masks are empty."""
        return jaccard_mose(self.inter, self.union)

    def as_dict(self) -> dict[int, dict[str, float]]:
        j, jm = self.J, self.J_mose
        return {int(o): dict(J=float(j[k]), J_mose=float(jm[k]), F=float(self.F[k]), F_mose=float(self.F_mose[k]),
                             Fdot=float(self.Fdot[k]), gt_area=int(self.gt_area[k]),
                             pred_area=int(self.pred_area[k]), inter=int(self.inter[k]))
                for k, o in enumerate(self.ids)}


def jaccard(inter, union) -> np.ndarray:
    inter = np.asarray(inter, np.float64)
    union = np.asarray(union, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        j = inter / union
    return np.where(union == 0, 1.0, j)


def jaccard_mose(inter, union) -> np.ndarray:
    inter = np.asarray(inter, np.float64)
    union = np.asarray(union, np.float64)
    j = np.clip((inter + 1) / (union + 1), 0, 1)
    return np.where(union == 0, 1.0, j)


def _row_span(any_rows: np.ndarray) -> tuple[int, int] | None:
    idx = np.flatnonzero(any_rows)
    if idx.size == 0:
        return None
    return int(idx[0]), int(idx[-1])


class FrameScorer:
    """Scores label maps of one image size (not thread-safe: it reuses scratch buffers).

    ``davis_f`` enables ``F`` (DAVIS / vos-benchmark), ``mose_f`` enables ``F_mose`` and ``Fdot``. Reuse one
    scorer for all frames of a size: footprints are built once.
    """

    def __init__(self, shape: tuple[int, int], davis_f: bool = True, mose_f: bool = True):
        self.shape = (int(shape[0]), int(shape[1]))
        self.radii = Radii.for_shape(self.shape)
        self.davis_f = davis_f
        self.mose_f = mose_f
        self._fp_ceil = disk_footprint(self.radii.ceil_radius)
        # full-frame scratch buffers, reused: fresh megabyte arrays cost page faults on every object
        self._mg = np.empty(self.shape, np.bool_)
        self._mp = np.empty(self.shape, np.bool_)
        self._union = np.empty(self.shape, np.bool_)

    def score(self, gt: np.ndarray, pred: np.ndarray, object_ids: Iterable[int]) -> FrameScores:
        if gt.shape != self.shape or pred.shape != self.shape:
            raise ValueError(f"label maps must be {self.shape}, got GT {gt.shape} and prediction {pred.shape}")
        ids = np.asarray(sorted(int(o) for o in object_ids), np.int64)
        n = ids.size
        out = FrameScores(ids, np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64),
                          np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan))
        # every object lies inside the box of non-zero pixels of either map: per-object passes run on that
        # window, grown by one pixel (real zero neighbours; where it meets the image edge, the edge rule holds)
        nz = np.logical_or(gt, pred, out=self._union)
        rows = _row_span(nz.any(axis=1))
        if rows is None:
            out.F[:] = out.F_mose[:] = out.Fdot[:] = 1.0
            return out
        cols = _row_span(nz[rows[0]:rows[1] + 1].any(axis=0))
        h, w = self.shape
        y0, y1 = max(rows[0] - 1, 0), min(rows[1] + 1, h - 1)
        x0, x1 = max(cols[0] - 1, 0), min(cols[1] + 1, w - 1)
        gt_w, pred_w = gt[y0:y1 + 1, x0:x1 + 1], pred[y0:y1 + 1, x0:x1 + 1]
        size = (y1 - y0 + 1) * (x1 - x0 + 1)
        bufs = [b.reshape(-1)[:size].reshape(gt_w.shape) for b in (self._mg, self._mp, self._union)]
        for k, oid in enumerate(ids):
            self._score_object(gt_w, pred_w, int(oid), out, k, bufs)
        return out

    def _score_object(self, gt, pred, oid, out: FrameScores, k: int, bufs) -> None:
        mg = np.equal(gt, oid, out=bufs[0])
        mp = np.equal(pred, oid, out=bufs[1])
        union = np.logical_or(mg, mp, out=bufs[2])
        rows = _row_span(union.any(axis=1))
        if rows is None:   # absent from both: J = 1 and every F = 1 in all evaluators
            out.F[k] = out.F_mose[k] = out.Fdot[k] = 1.0
            return
        y0, y1 = rows
        x0, x1 = _row_span(union[y0:y1 + 1].any(axis=0))
        g = mg[y0:y1 + 1, x0:x1 + 1]
        p = mp[y0:y1 + 1, x0:x1 + 1]
        gt_area = int(np.count_nonzero(g))
        out.gt_area[k] = gt_area
        out.pred_area[k] = int(np.count_nonzero(p))
        out.inter[k] = int(np.count_nonzero(g & p))

        # boundary pixels lie in the box grown by one pixel up/left (a pixel above/left of the mask differs
        # from its south/east neighbour)
        by0, bx0 = max(y0 - 1, 0), max(x0 - 1, 0)
        gb = boundary_map(extended_crop(mg, by0, y1, bx0, x1))
        pb = boundary_map(extended_crop(mp, by0, y1, bx0, x1))

        footprints = []
        if self.davis_f:
            footprints.append(self._fp_ceil)
        if self.mose_f:
            r_f, r_dot = self.radii.mose_radii(gt_area)
            fp_f, fp_dot = disk_footprint(r_f), disk_footprint(r_dot)
            footprints += [fp_f, fp_dot]
        pair = BoundaryPair(gb, pb, max(fp.reach for fp in footprints))
        cache: dict[float, float] = {}

        def f_of(fp):
            if fp.radius not in cache:
                cache[fp.radius] = pair.f_measure(fp)
            return cache[fp.radius]

        if self.davis_f:
            out.F[k] = f_of(self._fp_ceil)
        if self.mose_f:
            out.F_mose[k] = f_of(fp_f)
            out.Fdot[k] = f_of(fp_dot)
