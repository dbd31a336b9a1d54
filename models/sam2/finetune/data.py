"""Training data: MOSE-layout roots (MOSE train, the MOSE+ root `masseg data moseplus` writes) for the official
trainer, checked up front, and the data manifest a run records.

``MoseRootRawDataset`` is the official ``PNGRawDataset`` given a root instead of two folders: it reads the same
files the same way (palette PNGs, ``*.jpg`` frames with integer names), so a run on it equals the official config
run on the same folders. What it adds is a check at construction that names the missing folder or video, since the
official class would only fail inside a data-loader worker, retrying other clips.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from data.dataset import read_split_file
from data.errors import DatasetError

from training.dataset.vos_raw_dataset import PNGRawDataset


def check_root(root: str | os.PathLike, list_file: str | os.PathLike | None = None) -> list[str]:
    """Video names of a MOSE-layout root (the list file's, else every frame folder), or a one-line error."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError("training data root not found", root,
                           "point data.train.root at a MOSE-layout folder with JPEGImages/ and Annotations/ "
                           "(e.g. the output of `masseg data moseplus`)")
    for sub in ("JPEGImages", "Annotations"):
        if not (root / sub).is_dir():
            raise DatasetError(f"no {sub}/ folder in the training data root", root,
                               f"the root must hold {sub}/<video>/ (MOSE layout)")
    if list_file is not None:
        list_file = Path(list_file)
        if not list_file.is_file():
            raise DatasetError("video list file not found", list_file,
                               "give data.train.list as a file under the root (e.g. moseplus.txt) or omit it")
        names = [os.path.splitext(n)[0] for n in read_split_file(list_file)]
    else:
        names = sorted(d.name for d in (root / "JPEGImages").iterdir() if d.is_dir() and not d.name.startswith("."))
    if not names:
        raise DatasetError("no training video", list_file or root / "JPEGImages", "check the root and list")
    for n in names:
        if not (root / "JPEGImages" / n).is_dir():
            raise DatasetError(f"video {n!r} has no frame folder", root / "JPEGImages" / n,
                               "remove it from the list or add its frames")
        if not (root / "Annotations" / n).is_dir():
            raise DatasetError(f"video {n!r} has no annotation folder", root / "Annotations" / n,
                               "every training video needs its masks")
    return names


class MoseRootRawDataset(PNGRawDataset):
    """``PNGRawDataset`` over ``<root>/JPEGImages`` and ``<root>/Annotations`` (optionally a video list)."""

    def __init__(self, root: str, list_file: str | None = None, **kwargs):
        check_root(root, list_file)
        super().__init__(img_folder=os.path.join(root, "JPEGImages"), gt_folder=os.path.join(root, "Annotations"),
                         file_list_txt=list_file, **kwargs)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def data_manifest(sources, val_root=None, val_split=None) -> dict:
    """What a run trained on: per source the root, list file (+ sha256), clip count and the hash of the sorted clip
    list with each clip's frame/mask file names; a MOSE+ root's own manifest is hashed too when present."""
    out = {"sources": []}
    for src in sources:
        names = check_root(src.root, src.list)
        h = hashlib.sha256()
        frames = 0
        for n in sorted(names):
            jpgs = sorted(p.name for p in (Path(src.root) / "JPEGImages" / n).glob("*.jpg"))
            pngs = sorted(p.name for p in (Path(src.root) / "Annotations" / n).glob("*.png"))
            frames += len(jpgs)
            h.update(json.dumps([n, jpgs, pngs]).encode() + b"\n")
        entry = {"root": str(Path(src.root).resolve()), "list": str(src.list) if src.list else None,
                 "list_sha256": _sha256(Path(src.list)) if src.list else None, "multiplier": src.multiplier,
                 "clips": len(names), "frames": frames, "clips_sha256": h.hexdigest()}
        for extra in ("manifest.json", "moseplus.json", "stats.csv"):
            p = Path(src.root) / extra
            if p.is_file():
                entry.setdefault("root_files", {})[extra] = _sha256(p)
        out["sources"].append(entry)
    out["clips_sha256"] = hashlib.sha256("".join(s["clips_sha256"] for s in out["sources"]).encode()).hexdigest()
    if val_root is not None:
        out["validation"] = {"root": str(Path(val_root).resolve()), "split": val_split}
    return out
