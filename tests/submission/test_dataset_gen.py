"""A tiny generated dataset (DAVIS/MOSE layout and a YouTube-VOS-style one) and predictions for it, shared by the
submission tests; the tests here check the generator produces what the dataset layer reads back."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from data.dataset import VOSDataset
from data.labels import DAVIS_PALETTE
from submission.expected import ExpectedVideo, expected_from_dataset

# name -> (H, W, frames, first-frame ids); 'delta' exists in the root but is not in the split
VIDEOS = {
    "alpha": (24, 32, 5, (1, 2)),
    "beta": (20, 30, 4, (1, 3)),
    "gamma": (16, 16, 3, (2,)),
    "delta": (12, 12, 3, (1,)),
}
SPLIT = ["alpha", "beta", "gamma"]
# beta's annotation carries its own palette (to test --palette dataset); gamma's is grayscale (L)
BETA_PALETTE = bytes((i * 7 + c * 50) % 256 for i in range(256) for c in range(3))


def _frame_names(n: int) -> list[str]:
    return [f"{i:05d}" for i in range(n)]


def blob_labels(h: int, w: int, ids, t: int) -> np.ndarray:
    """A label map with one rectangle per id, moving with frame index ``t`` (deterministic)."""
    lab = np.zeros((h, w), np.uint8)
    for k, oid in enumerate(ids):
        y = (2 + 5 * k + t) % max(1, h - 4)
        x = (1 + 7 * k + 2 * t) % max(1, w - 5)
        lab[y:y + 4, x:x + 5] = oid
    return lab


def _save_p(path: Path, lab: np.ndarray, palette: bytes) -> None:
    im = Image.fromarray(lab, mode="P")
    im.putpalette(palette)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)


def make_dataset(root: Path) -> Path:
    """DAVIS/MOSE-style root with JPEGImages, first-frame Annotations and ImageSets/val.txt."""
    rng = np.random.default_rng(0)
    for name, (h, w, n, ids) in VIDEOS.items():
        for f in _frame_names(n):
            p = root / "JPEGImages" / name / f"{f}.jpg"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(p, quality=90)
        first = blob_labels(h, w, ids, 0)
        ann = root / "Annotations" / name / "00000.png"
        if name == "gamma":
            ann.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(first, mode="L").save(ann)
        else:
            _save_p(ann, first, BETA_PALETTE if name == "beta" else DAVIS_PALETTE)
    (root / "ImageSets").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "val.txt").write_text("".join(f"{v}\n" for v in SPLIT))
    return root


def make_ytvos_dataset(root: Path) -> Path:
    """YouTube-VOS-style root: meta.json, object 2 of 'yt1' first given on frame 2 (not on frame 0)."""
    h, w, n = 18, 26, 5
    rng = np.random.default_rng(1)
    for f in _frame_names(n):
        p = root / "JPEGImages" / "yt1" / f"{f}.jpg"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(p)
    _save_p(root / "Annotations" / "yt1" / "00000.png", blob_labels(h, w, (1,), 0), DAVIS_PALETTE)
    _save_p(root / "Annotations" / "yt1" / "00002.png", blob_labels(h, w, (1, 2), 2), DAVIS_PALETTE)
    meta = {"videos": {"yt1": {"objects": {"1": {"category": "a", "frames": ["00000", "00002"]},
                                           "2": {"category": "b", "frames": ["00002"]}}}}}
    (root / "meta.json").write_text(json.dumps(meta))
    return root


def predictions(expected: dict[str, ExpectedVideo]) -> dict[str, dict[str, np.ndarray]]:
    """Plausible label maps for every frame of every video, using only each video's object ids."""
    out = {}
    for name, ev in expected.items():
        ids = sorted(ev.object_ids)
        out[name] = {f: blob_labels(ev.size[0], ev.size[1], ids, t) for t, f in enumerate(ev.frame_names)}
    return out


def write_label_folder(folder: Path, preds, mode: str = "P", reverse: bool = False) -> Path:
    """Write predictions as <video>/<frame>.png in mode P (a non-DAVIS palette) or L, in either order."""
    items = [(v, f, lab) for v, frames in preds.items() for f, lab in frames.items()]
    if reverse:
        items.reverse()
    grey_palette = bytes(i for i in range(256) for _ in range(3))
    for v, f, lab in items:
        p = folder / v / f"{f}.png"
        if mode == "L":
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(lab, mode="L").save(p)
        else:
            _save_p(p, lab, grey_palette)
    return folder


def test_generated_dataset_reads_back(tmp_path):
    ds = VOSDataset(make_dataset(tmp_path), "val")
    exp = expected_from_dataset(ds)
    assert list(exp) == SPLIT
    assert exp["alpha"] == ExpectedVideo("alpha", ("00000", "00001", "00002", "00003", "00004"), (24, 32),
                                         frozenset({1, 2}))
    assert exp["beta"].object_ids == {1, 3} and exp["gamma"].object_ids == {2}
    preds = predictions(exp)
    assert set(np.unique(preds["beta"]["00003"])) == {0, 1, 3}


def test_generated_ytvos_objects_from_appearance(tmp_path):
    ds = VOSDataset(make_ytvos_dataset(tmp_path))
    assert ds.objects_from == "appearance"
    assert ds["yt1"].first_given == {1: 0, 2: 2}
    assert expected_from_dataset(ds)["yt1"].object_ids == {1, 2}
