"""Realistic logit maps made from real masks, for measuring codecs without a trained model.

Trained segmenters emit logits that grow roughly linearly with the distance to the object boundary and saturate
(SAM2 clamps to +-32); we model that as ``slope * signed_distance + smooth noise``, clipped. Used by the store
benchmark and the codec fidelity test; the ensemble tests build synthetic members the same way.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """Euclidean signed distance in pixels: > 0 inside, <= 0 outside (float32)."""
    mask = mask.astype(bool)
    if not mask.any():
        return -np.full(mask.shape, np.hypot(*mask.shape), np.float32)
    if mask.all():
        return np.full(mask.shape, np.hypot(*mask.shape), np.float32)
    inside = ndimage.distance_transform_edt(mask)
    outside = ndimage.distance_transform_edt(~mask)
    return np.where(mask, inside - 0.5, 0.5 - outside).astype(np.float32)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int = 12) -> np.ndarray:
    """Band-limited unit-variance noise (a coarse Gaussian grid, cubic-zoomed)."""
    coarse = rng.normal(0, 1, (cells, cells))
    return ndimage.zoom(coarse, (shape[0] / cells, shape[1] / cells), order=3)[: shape[0], : shape[1]].astype(
        np.float32)


def logits_from_mask(mask: np.ndarray, out_hw: tuple[int, int], rng: np.random.Generator, slope: float = 2.0,
                     noise: float = 1.0, clip: float = 32.0) -> np.ndarray:
    """A native-resolution logit map for ``mask`` (video resolution) at ``out_hw``."""
    sd = signed_distance(mask)
    zoom = (out_hw[0] / mask.shape[0], out_hw[1] / mask.shape[1])
    sd_small = ndimage.zoom(sd, zoom, order=1)[: out_hw[0], : out_hw[1]] * min(zoom)
    x = slope * sd_small + noise * smooth_noise(rng, out_hw)
    return np.clip(x, -clip, clip).astype(np.float32)
