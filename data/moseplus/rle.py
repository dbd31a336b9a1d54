"""COCO run-length masks (SA-V, OVIS, BURST): checked before pycocotools decodes them.

pycocotools' C decoder trusts the counts: a truncated or garbled string decodes to a wrong mask (or writes past
the buffer) without complaint. So the counts are parsed here first (the compressed-string format of COCO's
``maskApi.c``: 5 bits per character, continuation bit 0x20, sign bit 0x10, counts after the second stored as
differences) and must be non-negative and sum to height*width; only then does pycocotools decode.
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from ..errors import DatasetError


def _mask_utils():
    try:
        from pycocotools import mask as mask_utils
    except ImportError:  # pragma: no cover - an install problem, not a data one
        raise DatasetError("pycocotools is not installed; it decodes the COCO RLE masks of SA-V, OVIS and BURST",
                           None, "pip install pycocotools (or make install)") from None
    return mask_utils


def string_counts(s: str) -> list[int]:
    """Run lengths of a COCO compressed RLE string; ValueError when the string is malformed."""
    counts: list[int] = []
    p, n = 0, len(s)
    while p < n:
        x, k, more = 0, 0, True
        while more:
            if p >= n:
                raise ValueError("string ends inside a count")
            c = ord(s[p]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"character {s[p]!r} at {p} is not an RLE digit")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def check_counts(counts, h: int, w: int) -> None:
    total = 0
    for c in counts:
        if c < 0:
            raise ValueError("negative run length")
        total += c
    if total != h * w:
        raise ValueError(f"run lengths cover {total} pixels, the mask has {h}x{w} = {h * w}")


def decode(rle: dict, path: str | os.PathLike, what: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode one RLE dict (``{"size": [h, w], "counts": str | list}``) to a bool (H, W) mask.

    ``size`` is the frame size the mask must have; ``what`` names the object/frame in the error message.
    """
    try:
        h, w = (int(v) for v in rle["size"])
        counts = rle["counts"]
    except (KeyError, TypeError, ValueError):
        raise DatasetError(f"corrupt RLE for {what}: needs 'size' [h, w] and 'counts'", path,
                           "re-export the annotation file") from None
    if size is not None and (h, w) != tuple(size):
        raise DatasetError(f"RLE for {what} is {w}x{h} but the frames are {size[1]}x{size[0]}", path,
                           "the masks must have the frame size")
    try:
        if isinstance(counts, (bytes, str)):
            text = counts.decode("ascii") if isinstance(counts, bytes) else counts
            check_counts(string_counts(text), h, w)
            obj = {"size": [h, w], "counts": text.encode("ascii")}
        elif isinstance(counts, list):
            check_counts([int(c) for c in counts], h, w)
            obj = _mask_utils().frPyObjects({"size": [h, w], "counts": [int(c) for c in counts]}, h, w)
        else:
            raise ValueError(f"counts is a {type(counts).__name__}")
    except (ValueError, UnicodeError) as exc:
        raise DatasetError(f"corrupt RLE for {what} ({exc})", path,
                           "re-download or re-export the annotation file") from None
    with warnings.catch_warnings():  # pycocotools' NumPy 2 copy-keyword deprecation, harmless here
        warnings.simplefilter("ignore", DeprecationWarning)
        return _mask_utils().decode(obj).astype(bool)
