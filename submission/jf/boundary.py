"""Boundary maps and boundary F-measure on small crops, exact to the official ``seg2bmap`` + ``cv2.dilate``.

Boundary map (``seg2bmap``): a pixel is on the boundary when it differs from its east, south or south-east
neighbour. On the last row only the east neighbour counts, on the last column only the south one, and the
bottom-right pixel never counts; padding the image's bottom/right edge by replicating it reproduces exactly
that, which lets us compute the map on a crop that touches the image border.

Matching: a boundary pixel ``p`` of one mask is matched when the other mask has a boundary pixel at ``p + o``
for some footprint offset ``o`` (``cv2.dilate`` correlates: ``dst(p) = max src(p + o)``). Each footprint row is
a column interval, so the test is a range count on row prefix sums, done only at boundary pixels (a few
thousand) instead of dilating whole images. F is then computed with the evaluators' own case analysis.
"""
from __future__ import annotations

import numpy as np

from .footprints import Footprint


def boundary_map(ext: np.ndarray) -> np.ndarray:
    """Boundary of ``ext[:-1, :-1]`` given one extra row/column of true (or edge-replicated) neighbours."""
    c = ext[:-1, :-1]
    return (c ^ ext[:-1, 1:]) | (c ^ ext[1:, :-1]) | (c ^ ext[1:, 1:])


def extended_crop(mask: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """``mask[y0:y1+1, x0:x1+1]`` plus the south row and east column; past the image edge they replicate it."""
    h, w = mask.shape
    ext = mask[y0:min(y1 + 2, h), x0:min(x1 + 2, w)]
    pad_s = 1 if y1 + 1 >= h else 0
    pad_e = 1 if x1 + 1 >= w else 0
    if pad_s or pad_e:
        ext = np.pad(ext, ((0, pad_s), (0, pad_e)), mode="edge")
    return ext


def f_from_counts(n_fg: int, n_gt: int, fg_match: int, gt_match: int) -> float:
    """The evaluators' F: empty/empty = 1, exactly one empty = 0, else 2PR/(P+R) (0 when P+R = 0)."""
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1.0, 0.0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0.0, 1.0
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1.0, 1.0
    else:
        precision = fg_match / float(n_fg)
        recall = gt_match / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


class BoundaryPair:
    """Boundary maps of a GT and a predicted mask on one crop, ready to be matched with any footprint.

    Each map gets a zero-padded integral image (padding ``reach + 1`` >= every footprint offset, so lookups
    never leave the table; the padding holds no boundary pixel, like cv2's dilation border). A point is first
    tested against the largest square inside the footprint (4 lookups; most points match there), and only the
    rest against every footprint row (4 lookups per row).

    The integral image is stored transposed (x-major): numpy accumulates fast only along the contiguous axis,
    so the second pass runs on a transposed copy, and lookups use ``x * rows + y`` flat indices.
    """

    def __init__(self, gt_bmap: np.ndarray, fg_bmap: np.ndarray, reach: int):
        self.pad = reach + 1
        h, w = gt_bmap.shape
        self.rows = h + 2 * self.pad     # stride of one x step in the transposed tables
        self.n_gt = int(np.count_nonzero(gt_bmap))
        self.n_fg = int(np.count_nonzero(fg_bmap))
        self._gt = self._fg = None
        if self.n_gt and self.n_fg:
            self._gt = self._prepare(gt_bmap)
            self._fg = self._prepare(fg_bmap)

    def _prepare(self, bmap: np.ndarray):
        pad, rows = self.pad, self.rows
        h, w = bmap.shape
        padded = np.zeros((rows, w + 2 * pad), np.bool_)
        padded[pad:pad + h, pad:pad + w] = bmap
        row_prefix = np.cumsum(padded, axis=1, dtype=np.int32)
        integral_t = np.cumsum(row_prefix.T.copy(), axis=1, dtype=np.int32).ravel()
        ys, xs = np.divmod(np.flatnonzero(bmap), w)   # 2-D np.nonzero is several times slower
        points = (xs + pad) * rows + (ys + pad)
        return points, integral_t

    def _matched(self, points: np.ndarray, integral_t: np.ndarray, fp: Footprint) -> int:
        """How many of ``points`` have a pixel of the other map (``integral_t``) under the footprint."""
        sx = self.rows   # flat step of +1 column; +1 row is +1
        matched = 0
        k = fp.box
        if k >= 0:
            y_hi, y_lo, x_hi, x_lo = k, -k - 1, k * sx, (-k - 1) * sx
            s = (np.take(integral_t, points + (y_hi + x_hi)) - np.take(integral_t, points + (y_lo + x_hi))
                 - np.take(integral_t, points + (y_hi + x_lo)) + np.take(integral_t, points + (y_lo + x_lo)))
            inside = s > 0
            matched = int(np.count_nonzero(inside))
            points = points[~inside]
        if points.size:
            hi = fp.hi * sx + fp.dy
            lo = (fp.lo - 1) * sx + fp.dy
            offsets = np.concatenate([hi, hi - 1, lo, lo - 1])
            v = np.take(integral_t, points[:, None] + offsets).reshape(points.size, 4, fp.dy.size)
            counts = (v[:, 0] - v[:, 1]) - (v[:, 2] - v[:, 3])
            matched += int(np.count_nonzero((counts > 0).any(axis=1)))
        return matched

    def f_measure(self, fp: Footprint) -> float:
        if self._gt is None:
            return f_from_counts(self.n_fg, self.n_gt, 0, 0)
        gt_points, gt_integral = self._gt
        fg_points, fg_integral = self._fg
        fg_match = self._matched(fg_points, gt_integral, fp)
        gt_match = self._matched(gt_points, fg_integral, fp)
        return f_from_counts(self.n_fg, self.n_gt, fg_match, gt_match)
