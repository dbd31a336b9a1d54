"""Label maps: one uint8 HxW array per frame, pixel value = object id, 0 = background.

Read/write palette PNGs the way the challenge servers expect them. Reading accepts indexed (P) and 8-bit
grayscale (L) PNGs, because both score correctly; RGB is rejected because servers silently score it as
garbage. Writing keeps the input palette (DAVIS palette by default) and is atomic.

One rule for binary masks (:func:`binary_255_as_one`), applied wherever a label PNG is *read as input*
(first-frame masks for infer and fuse, label folders for submit, ground truth and predictions for evaluate):
an 8-bit grayscale (L) PNG whose only values are 0 and 255 is a single-object mask, and 255 means object 1.
Palette PNGs are never reinterpreted (DAVIS uses 255 there as "void"). ``masseg validate`` of a finished zip
reads raw values, as the server does.
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


def binary_255_as_one(im: Image.Image, arr: np.ndarray) -> np.ndarray:
    """A grayscale 0/255 mask (what most tools save for one object) holds object 1, not object 255."""
    if im.mode == "L" and arr.size and arr.max() == 255:
        present = np.flatnonzero(np.bincount(arr.ravel(), minlength=256))
        if set(present.tolist()) <= {0, 255}:
            return (arr == 255).astype(np.uint8)
    return arr


def read_labels(path: str | os.PathLike, with_palette: bool = False):
    """Decode a label PNG into a uint8 (H, W) array of object ids (grayscale 0/255 = object 1, see above).

    Returns ``labels`` or ``(labels, palette_bytes_or_None)`` when ``with_palette``.
    """
    im = _open(path)
    check_mode(im, path)
    arr = binary_255_as_one(im, np.asarray(im, dtype=np.uint8))
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


# ---- SA-V: one folder of binary PNGs per object ---------------------------------------------------------------
def object_folders(video_dir: str | os.PathLike) -> dict[int, Path]:
    """Object id -> folder, for a video stored one folder per object (``<video>/<id>/<frame>.png``, SA-V);
    {} for the usual one label map per frame."""
    try:
        entries = sorted(os.scandir(video_dir), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    return {int(e.name): Path(e.path) for e in entries if e.is_dir() and e.name.isdigit()}


def merge_object_masks(folders: dict[int, Path], frame_name: str) -> np.ndarray | None:
    """One frame's per-object PNGs (value > 0 = object) as a label map; lower ids on top where masks overlap,
    as SAM2's tools/vos_inference.py packs them. None when no object has a PNG for this frame."""
    labels = None
    for oid in sorted(folders, reverse=True):
        path = folders[oid] / f"{frame_name}.png"
        if not path.exists():
            continue
        if not 0 < oid < 256:
            raise LabelFormatError(f"object id {oid} does not fit a label map (1..255)", folders[oid],
                                   "renumber the object folders 001..255")
        im = _open(path)
        check_mode(im, path)
        mask = np.asarray(im) > 0
        if labels is None:
            labels = np.zeros(mask.shape, np.uint8)
        elif mask.shape != labels.shape:
            raise LabelFormatError("object masks of one frame differ in size", path, "re-export the masks")
        labels[mask] = oid
    return labels


def flatten_object_folders(root: str | os.PathLike, dest: str | os.PathLike, videos=None) -> bool:
    """Write ``root``'s per-object videos as label maps under ``dest/<video>/<frame>.png`` (others linked).

    Returns False (and writes nothing) when no video of ``root`` uses per-object folders."""
    root, dest = Path(root), Path(dest)
    names = list(videos) if videos is not None else sorted(
        d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    per_object = {v: object_folders(root / v) for v in names}
    if not any(per_object.values()):
        return False
    for v, folders in per_object.items():
        if not folders:
            if (root / v).is_dir():
                (dest / v).parent.mkdir(parents=True, exist_ok=True)
                os.symlink((root / v).resolve(), dest / v)
            continue
        frames = sorted({p.stem for f in folders.values() for p in f.glob("*.png") if not p.name.startswith(".")})
        for name in frames:
            write_labels(dest / v / f"{name}.png", merge_object_masks(folders, name))
    return True
