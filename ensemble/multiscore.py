"""Per-frame J and F of many predictions at once, for a sweep whose settings differ only on some pixels.

A sweep fuses the same member maps under many settings; the fused label maps are identical wherever the
members agree, and differ only on the disagreement pixels ``V``. Scoring each setting with
``submission.jf.FrameScorer`` would redo the GT side and the full-frame object masks every time. Here each
object is cropped once (the box of its GT and of every pixel any setting gives it), the GT boundary and its
dilation by each footprint are built once, and all settings are scored together as one (h, w, S) stack.

The definitions are the project evaluator's, imported from ``submission.jf``: boundary rule
(``boundary_map`` / ``extended_crop``), footprints and radii per protocol (``disk_footprint``, ``Radii``),
matching by footprint offsets (``dst(p) = max src(p + o)``, as cv2.dilate) and the F case analysis
(``f_from_counts``). The result is one ``FrameScores`` per setting, equal field for field to what
``FrameScorer.score`` returns for that setting's label map (``tests/ensemble/test_multiscore.py``).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from submission.jf.boundary import boundary_map, f_from_counts
from submission.jf.footprints import Footprint, Radii, disk_footprint
from submission.jf.measures import FrameScores

# settings scored together are chunked so that the (h, w, S) int32 prefix table stays below this size
CHUNK_BYTES = 64 << 20


def _span(any_axis: np.ndarray) -> tuple[int, int] | None:
    idx = np.flatnonzero(any_axis)
    return None if idx.size == 0 else (int(idx[0]), int(idx[-1]))


def _prefix(bmap: np.ndarray, pad: int) -> np.ndarray:
    """Row-wise prefix sums of a zero-padded boundary map; works on (h, w) maps and (S, h, w) stacks."""
    shape = bmap.shape[:-2] + (bmap.shape[-2] + 2 * pad, bmap.shape[-1] + 2 * pad)
    padded = np.zeros(shape, np.int32)
    padded[..., pad:pad + bmap.shape[-2], pad:pad + bmap.shape[-1]] = bmap
    return np.cumsum(padded, axis=-1, dtype=np.int32, out=padded)


def _hits_everywhere(prefix: np.ndarray, pad: int, h: int, w: int, fp: Footprint) -> np.ndarray:
    """(h, w) bool: a boundary pixel of ``prefix``'s map lies under the footprint anchored on each pixel."""
    out = np.zeros((h, w), bool)
    for dy, lo, hi in zip(fp.dy.tolist(), fp.lo.tolist(), fp.hi.tolist()):
        rows = prefix[pad + dy:pad + dy + h]
        out |= rows[:, pad + hi:pad + hi + w] > rows[:, pad + lo - 1:pad + lo - 1 + w]
    return out


def _hits_at(prefix: np.ndarray, pad: int, ys: np.ndarray, xs: np.ndarray, fp: Footprint) -> np.ndarray:
    """(S, P) bool: for each stacked map (S, h, w) and point, a boundary pixel lies under the footprint."""
    flat = prefix.reshape(prefix.shape[0], -1)
    width = prefix.shape[-1]
    out = np.zeros((prefix.shape[0], ys.size), bool)
    for dy, lo, hi in zip(fp.dy.tolist(), fp.lo.tolist(), fp.hi.tolist()):
        row = (ys + (pad + dy)) * width + xs
        out |= flat[:, row + (pad + hi)] > flat[:, row + (pad + lo - 1)]
    return out


class MultiScorer:
    """Scores S predictions of one frame that share a base label map outside the pixels ``var_idx``.

    Same flags as ``FrameScorer``: ``davis_f`` computes ``F`` (ceil radius), ``mose_f`` ``F_mose`` and ``Fdot``.
    """

    def __init__(self, shape: tuple[int, int], davis_f: bool = True, mose_f: bool = True):
        self.shape = (int(shape[0]), int(shape[1]))
        self.radii = Radii.for_shape(self.shape)
        self.davis_f = davis_f
        self.mose_f = mose_f
        self._fp_ceil = disk_footprint(self.radii.ceil_radius)

    def score(self, gt: np.ndarray, base: np.ndarray, var_idx: np.ndarray, var_labels: np.ndarray,
              object_ids: Sequence[int]) -> list[FrameScores]:
        """``base`` (H, W) uint8 ids, ``var_idx`` (P,) flat pixel indices, ``var_labels`` (S, P) uint8: setting
        s predicts ``base`` everywhere except ``var_labels[s]`` at ``var_idx``. Returns S ``FrameScores``."""
        if gt.shape != self.shape or base.shape != self.shape:
            raise ValueError(f"label maps must be {self.shape}, got GT {gt.shape} and base {base.shape}")
        var_idx = np.asarray(var_idx, np.int64)
        var_labels = np.asarray(var_labels, np.uint8)
        if var_labels.ndim != 2 or var_labels.shape[1] != var_idx.size:
            raise ValueError(f"var_labels must be (S, {var_idx.size}), got {var_labels.shape}")
        S = var_labels.shape[0]
        ids = np.asarray(sorted(int(o) for o in object_ids), np.int64)
        n = ids.size
        outs = [FrameScores(ids, np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64),
                            np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)) for _ in range(S)]
        vy, vx = np.divmod(var_idx, self.shape[1])
        for k, oid in enumerate(ids):
            self._object(gt, base, vy, vx, var_labels, int(oid), outs, k)
        return outs

    def _object(self, gt, base, vy, vx, var_labels, oid, outs, k) -> None:
        H, W = self.shape
        S = var_labels.shape[0]
        g_full = gt == oid
        p_base = base == oid
        lab = var_labels == oid                                        # (S, P)
        some = lab.any(axis=0)
        union = g_full | p_base
        union[vy[some], vx[some]] = True
        rows = _span(union.any(axis=1))
        if rows is None:                     # absent from GT and from every prediction
            for o in outs:
                o.F[k] = o.F_mose[k] = o.Fdot[k] = 1.0
            return
        y0, y1 = rows
        x0, x1 = _span(union[y0:y1 + 1].any(axis=0))
        # boundary pixels lie in the box grown by one up/left; the rule also reads one row/column south/east
        by0, bx0 = max(y0 - 1, 0), max(x0 - 1, 0)
        ey, ex = min(y1 + 2, H), min(x1 + 2, W)
        pad_s, pad_e = int(y1 + 1 >= H), int(x1 + 1 >= W)
        inside = (vy >= by0) & (vy < ey) & (vx >= bx0) & (vx < ex)
        cy, cx, clab = vy[inside] - by0, vx[inside] - bx0, lab[:, inside]   # variable pixels in the region

        g = g_full[by0:ey, bx0:ex]
        gt_area = int(np.count_nonzero(g))
        p0 = p_base[by0:ey, bx0:ex]
        # J counts: base part outside V plus each setting's part on V
        fixed = p0.copy()
        fixed[cy, cx] = False
        inter_fixed = int(np.count_nonzero(fixed & g))
        area_fixed = int(np.count_nonzero(fixed))
        g_on_v = g[cy, cx]
        inter = inter_fixed + clab[:, g_on_v].sum(axis=1)
        area = area_fixed + clab.sum(axis=1)

        g_ext = np.pad(g, ((0, pad_s), (0, pad_e)), mode="edge") if (pad_s or pad_e) else g
        gb = boundary_map(g_ext)
        h, w = gb.shape
        footprints = []
        if self.davis_f:
            footprints.append(("F", self._fp_ceil))
        if self.mose_f:
            r_f, r_dot = self.radii.mose_radii(gt_area)
            footprints += [("F_mose", disk_footprint(r_f)), ("Fdot", disk_footprint(r_dot))]
        reach = max(fp.reach for _, fp in footprints)
        pad = reach + 1
        n_gt = int(np.count_nonzero(gb))
        gys, gxs = np.nonzero(gb)
        g_prefix = _prefix(gb, pad)
        g_dil = {fp.radius: _hits_everywhere(g_prefix, pad, h, w, fp) for _, fp in footprints}

        for o, i_, a_ in zip(outs, inter, area):
            o.gt_area[k] = gt_area
            o.inter[k] = int(i_)
            o.pred_area[k] = int(a_)

        per_setting = max(1, (h + 2 * pad) * (w + 2 * pad) * 4)
        chunk = max(1, CHUNK_BYTES // per_setting)
        for s0 in range(0, S, chunk):
            s1 = min(S, s0 + chunk)
            stack = np.repeat(p0[None], s1 - s0, axis=0)                 # (s, rh, rw)
            stack[:, cy, cx] = clab[s0:s1]
            if pad_s or pad_e:
                stack = np.pad(stack, ((0, 0), (0, pad_s), (0, pad_e)), mode="edge")
            # the evaluator's boundary rule works on the first two axes: give it an (rh, rw, s) view
            pb = np.ascontiguousarray(np.moveaxis(boundary_map(np.moveaxis(stack, 0, -1)), -1, 0))   # (s, h, w)
            n_fg = pb.sum(axis=(1, 2))
            p_prefix = _prefix(pb, pad) if n_gt else None
            cache: dict[float, np.ndarray] = {}
            for field, fp in footprints:
                vals = cache.get(fp.radius)
                if vals is None:
                    fg_match = (pb & g_dil[fp.radius][None]).sum(axis=(1, 2))
                    if n_gt:
                        gt_match = _hits_at(p_prefix, pad, gys, gxs, fp).sum(axis=1)
                    else:
                        gt_match = np.zeros(s1 - s0, np.int64)
                    vals = np.array([f_from_counts(int(nf), n_gt, int(fm), int(gm)) if (nf and n_gt)
                                     else f_from_counts(int(nf), n_gt, 0, 0)
                                     for nf, fm, gm in zip(n_fg, fg_match, gt_match)])
                    cache[fp.radius] = vals
                for j, s in enumerate(range(s0, s1)):
                    getattr(outs[s], field)[k] = vals[j]
        if gt_area == 0:                     # settings where the object is absent from both: every F is 1
            for o, a_ in zip(outs, area):
                if a_ == 0:
                    o.F[k] = o.F_mose[k] = o.Fdot[k] = 1.0
