"""The shared synthetic J&F benchmark (../shared/golden/jf), generated on demand into the git-ignored .cache/.

``gen_synthetic.py`` writes all 30 videos (about 75 s here); tests need only a few, so ``ensure_synthetic``
drives the generator's own functions for the chosen videos (same seeds, same names, same files) and checks
every PNG against the golden ``data_png_md5.txt``. Results are cached per video set; a lock keeps concurrent
test sessions from generating the same set twice.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[3]
SHARED = REPO.parent / "shared"
GOLDEN = SHARED / "golden" / "jf"
CACHE = REPO / ".cache" / "jf"
RESOLUTIONS = {"720p": (720, 1280), "480p": (480, 854)}
N_VIDEOS = 30

# CI subset: late vos-benchmark starts (objects gone right after frame 0), id swaps, tiny objects, objects that
# leave for good, disappear/reappear segments, big objects (MOSEv2 float radius), 2-4 objects
SUBSET = (1, 2, 8, 26)


class SyntheticUnavailable(RuntimeError):
    """The shared material or the generator's pinned dependencies are missing."""


def _generator():
    path = GOLDEN / "gen_synthetic.py"
    if not path.exists():
        raise SyntheticUnavailable(f"generator not found at {path}")
    try:
        import cv2  # noqa: F401  (the generator draws with OpenCV)
    except ImportError:
        raise SyntheticUnavailable("opencv-python-headless is not installed (pip install -e .[test])") from None
    spec = importlib.util.spec_from_file_location("jf_gen_synthetic", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def video_names() -> list[str]:
    """The 30 video names, drawn exactly as gen_synthetic.main() draws them."""
    rng = np.random.default_rng(12345)
    return ["".join(rng.choice(list("0123456789abcdefghijklmnopqrstuvwxyz"), 8)) for _ in range(N_VIDEOS)]


def expected_md5() -> dict[str, str]:
    path = GOLDEN / "data_png_md5.txt"
    if not path.exists():
        raise SyntheticUnavailable(f"md5 list not found at {path}")
    out = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, rel = line.split(None, 1)
            out[rel.strip()] = digest
    return out


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def verify(root: Path, names: list[str]) -> list[str]:
    """Relative paths whose md5 differs from the golden list (empty when all match)."""
    md5 = expected_md5()
    bad = []
    for rel, digest in md5.items():
        if rel.split("/")[-2] in names:
            p = root / rel
            if not p.exists() or _md5(p) != digest:
                bad.append(rel)
    return bad


def _generate(gen, out: Path, indices: tuple[int, ...]) -> None:
    import cv2
    names = video_names()
    nobj = {}
    for v in indices:
        name = names[v]
        rng = np.random.default_rng(1000 + v)
        n_obj = v % 5 + 1
        blobs, gt = gen.make_gt(rng, n_obj)
        preds, _, _ = gen.make_pred(np.random.default_rng(2000 + v), blobs, gt)
        nobj[name] = n_obj
        for res, (h, w) in RESOLUTIONS.items():
            gd = out / res / "GT" / "Annotations" / name
            pd_ = out / res / "pred" / name
            gd.mkdir(parents=True)
            pd_.mkdir(parents=True)
            for t, (g, p) in enumerate(zip(gt, preds)):
                if res == "480p":
                    g = cv2.resize(g, (w, h), interpolation=cv2.INTER_NEAREST)
                    p = cv2.resize(p, (w, h), interpolation=cv2.INTER_NEAREST)
                gen.save_png(str(gd / f"{t:05d}.png"), g)
                gen.save_png(str(pd_ / f"{t:05d}.png"), p)
    chosen = [names[v] for v in indices]
    for res, (h, w) in RESOLUTIONS.items():
        gen.write_meta(str(out / res / "meta.json"), chosen, nobj, h, w)


@contextlib.contextmanager
def _lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_synthetic(indices: tuple[int, ...] | None = None) -> Path:
    """Root holding ``720p/`` and ``480p/`` (GT/Annotations, pred, meta.json) with at least the chosen videos,
    every PNG md5-checked. ``indices=None``: all 30 videos."""
    indices = tuple(range(N_VIDEOS)) if indices is None else tuple(sorted(indices))
    names = [video_names()[v] for v in indices]
    full = CACHE / "synth"
    tag = "synth" if len(indices) == N_VIDEOS else "synth-" + "-".join(map(str, indices))
    root = CACHE / tag
    with _lock(CACHE / f".{tag}.lock"):
        for candidate in dict.fromkeys([root, full]):
            if (candidate / ".verified").exists() and all(
                    (candidate / "720p" / "GT" / "Annotations" / n).is_dir() for n in names):
                if not verify(candidate, names):
                    return candidate
        gen = _generator()
        tmp = Path(tempfile.mkdtemp(prefix=f".{tag}.", dir=CACHE))
        try:
            _generate(gen, tmp, indices)
            bad = verify(tmp, names)
            if bad:
                raise AssertionError(f"{len(bad)} generated PNGs differ from {GOLDEN / 'data_png_md5.txt'} "
                                     f"(first: {bad[0]}); check numpy/opencv/pillow versions against "
                                     f"{GOLDEN / 'pip_freeze.txt'}")
            (tmp / ".verified").write_text(json.dumps({"videos": names}))
            if root.exists():
                shutil.rmtree(root)
            os.replace(tmp, root)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return root


def golden(res: str, table: str):
    import pandas as pd
    return pd.read_csv(GOLDEN / res / f"{table}.csv")


def golden_global(res: str) -> dict:
    return json.loads((GOLDEN / res / "global.json").read_text())
