"""Carving a local validation split out of a training split with full ground truth.

MOSE's validation ground truth is not public, so weights and scaling are tuned on videos held out from train.
The carve is a seeded permutation of the sorted names, so it depends only on (names, seed, size).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .errors import MassegError


def carve_split(videos: Sequence[str], *, fraction: float | None = None, count: int | None = None,
                seed: int = 0) -> tuple[list[str], list[str]]:
    """Return (held_out, rest), both sorted by name."""
    names = sorted(set(videos))
    if len(names) != len(videos):
        raise MassegError("the video list has duplicates", fix="deduplicate the split list")
    if (fraction is None) == (count is None):
        raise MassegError("give exactly one of --fraction or --count")
    if count is None:
        if not 0 < fraction < 1:
            raise MassegError(f"fraction {fraction} must be in (0, 1)")
        count = max(1, int(round(fraction * len(names))))
    if not 0 < count < len(names):
        raise MassegError(f"count {count} must be between 1 and {len(names) - 1} for {len(names)} videos")
    perm = np.random.default_rng(seed).permutation(len(names))
    held = sorted(names[i] for i in perm[:count])
    held_set = set(held)
    return held, [v for v in names if v not in held_set]
