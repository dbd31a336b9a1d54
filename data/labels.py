"""Label maps: one uint8 HxW array per frame, pixel value = object id, 0 = background.

Read/write palette PNGs the way the challenge servers expect them. Reading accepts indexed (P) and 8-bit
grayscale (L) PNGs, because both score correctly; RGB is rejected because servers silently score it as
garbage. Writing keeps the input palette (DAVIS palette by default) and is atomic.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from .atomic import atomic_write_bytes
from .errors import LabelFormatError


def davis_palette() -> bytes:
    """The DAVIS/PASCAL VOC colour map (768 bytes): bit-interleaved colours, id 1 = dark red."""
    pal = bytearray(768)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[3 * i: 3 * i + 3] = bytes((r, g, b))
    return bytes(pal)


DAVIS_PALETTE = davis_palette()


def _open(path: str | os.PathLike) -> Image.Image:
    try:
        im = Image.open(path)
        im.load()
    except FileNotFoundError:
        raise LabelFormatError("label PNG not found", path, "check the folder and frame name") from None
    except Exception as exc:  # PIL raises many types for corrupt files
        raise LabelFormatError(f"cannot decode label PNG ({exc})", path, "re-export it as an indexed PNG") from None
    return im


def check_mode(im: Image.Image, path: str | os.PathLike) -> None:
    if im.mode not in ("P", "L"):
        raise LabelFormatError(
            f"label PNG has mode {im.mode}; object ids must be stored as an indexed (P) or 8-bit grayscale (L) image",
            path, "convert it to a palette PNG whose pixel values are object ids (0 = background)")


def read_labels(path: str | os.PathLike, with_palette: bool = False):
    """Decode a label PNG into a uint8 (H, W) array of object ids.

    Returns ``labels`` or ``(labels, palette_bytes_or_None)`` when ``with_palette``.
    """
    im = _open(path)
    check_mode(im, path)
    arr = np.asarray(im, dtype=np.uint8)
    if not with_palette:
        return arr
    pal = None
    if im.mode == "P":
        raw = im.getpalette()
        if raw is not None:
            pal = bytes(raw[:768]).ljust(768, b"\0")
    return arr, pal


def encode_labels(labels: np.ndarray, palette: bytes | None = None) -> bytes:
    """Encode a uint8 (H, W) id map as an indexed PNG (deterministic bytes for identical inputs)."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"label map must be 2-D, got shape {labels.shape}")
    if labels.dtype != np.uint8:
        if labels.size and (labels.min() < 0 or labels.max() > 255):
            raise ValueError("object ids must fit in 0..255")
        labels = labels.astype(np.uint8)
    im = Image.frombytes("P", (labels.shape[1], labels.shape[0]), np.ascontiguousarray(labels).tobytes())
    im.putpalette(palette if palette is not None else DAVIS_PALETTE)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def write_labels(path: str | os.PathLike, labels: np.ndarray, palette: bytes | None = None) -> None:
    """Atomically write a palette PNG (parent folders created)."""
    atomic_write_bytes(Path(path), encode_labels(labels, palette))


def png_size(path: str | os.PathLike) -> tuple[int, int]:
    """(H, W) of an image from its header only (no pixel decode)."""
    try:
        with Image.open(path) as im:
            w, h = im.size
    except FileNotFoundError:
        raise LabelFormatError("image not found", path) from None
    except Exception as exc:
        raise LabelFormatError(f"cannot read image header ({exc})", path) from None
    return h, w
