"""Fixtures for `masseg train`: a tiny MOSE-layout training root and validation root made from a shared clip, the
shrunk MOSE fine-tune config (image 256, 3 frames, 2 objects, batch 1, 3 steps), and one uninterrupted
`masseg train` run shared by the equality, resume and checkpoint tests (CPU training is the slow part)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[4]
TRAIN_FRAMES = 8
VAL_FRAMES = 3
SEED = 7
EPOCHS = 3          # one step per epoch (multiplier 1, one clip, batch 1): 3 steps, a checkpoint after each


def make_train_root(clips: Path, root: Path) -> Path:
    """libby frames 0-7 in MOSE layout, its dog split at the mask's middle column into objects 1 and 2 (so the
    2-object path of the trainer runs), and a list file."""
    src = clips / "davis2016"
    for sub in ("JPEGImages", "Annotations"):
        (root / sub / "libby").mkdir(parents=True, exist_ok=True)
    for i in range(TRAIN_FRAMES):
        shutil.copyfile(src / "JPEGImages" / "libby" / f"{i:05d}.jpg", root / "JPEGImages" / "libby" / f"{i:05d}.jpg")
        im = Image.open(src / "Annotations" / "libby" / f"{i:05d}.png")
        a = np.array(im)
        cols = np.nonzero(a.any(0))[0]
        mid = (cols.min() + cols.max()) // 2
        b = a.copy()
        b[:, mid:][a[:, mid:] == 1] = 2
        out = Image.fromarray(b, "P")
        out.putpalette(im.getpalette())
        out.save(root / "Annotations" / "libby" / f"{i:05d}.png")
    (root / "train.txt").write_text("libby\n")
    return root


def make_val_root(clips: Path, root: Path) -> Path:
    for sub, ext in (("JPEGImages", "jpg"), ("Annotations", "png")):
        (root / sub / "libby").mkdir(parents=True, exist_ok=True)
        for i in range(VAL_FRAMES):
            (root / sub / "libby" / f"{i:05d}.{ext}").symlink_to(clips / "davis2016" / sub / "libby" / f"{i:05d}.{ext}")
    (root / "val.txt").write_text("libby\n")
    return root


@pytest.fixture(scope="session")
def train_root(clips, tmp_path_factory) -> Path:
    return make_train_root(clips, tmp_path_factory.mktemp("mose_root"))


@pytest.fixture(scope="session")
def val_root(clips, tmp_path_factory) -> Path:
    return make_val_root(clips, tmp_path_factory.mktemp("val_root"))


def tiny_toml(path: Path, out: Path, weights: Path, train_root: Path, val_root: Path | None = None,
              epochs: int = EPOCHS, val_every: int = 2, extra: str = "", multiplier: int = 1,
              list_file: str = "train.txt", val_split: str = "val") -> Path:
    val = f'val_root = "{val_root}"\nval_split = "{val_split}"\n' if val_root else ""
    path.write_text(f"""
[model]
variant = "sam2.1_hiera_t"
checkpoint = "{weights}"
image_size = 256

[[data.train]]
root = "{train_root}"
list = "{list_file}"
multiplier = {multiplier}

[data]
{val}
[train]
out = "{out}"
epochs = {epochs}
batch_size = 1
num_frames = 3
max_objects = 2
workers = 0
seed = {SEED}
log_every = 1
val_every = {val_every if val_root else 0}
{extra}

[augment]
preset = "official"       # the official YAML's transforms: what the official train.py runs in the proof
""")
    return path


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env["OMP_NUM_THREADS"] = "2"     # both trainers, same threads: CPU sums are then bit-reproducible
    return env


def masseg_cmd(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from pipeline.cli import main; sys.exit(main())", *args]


def run_masseg(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(masseg_cmd(*args), env=child_env(), capture_output=True, text=True, timeout=timeout,
                          cwd=REPO)


@pytest.fixture(scope="session")
def reference_run(golden_weights, train_root, val_root, tmp_path_factory) -> Path:
    """One uninterrupted `masseg train` of the tiny config, validation every 2 epochs."""
    d = tmp_path_factory.mktemp("reference_run")
    cfg = tiny_toml(d / "tiny.toml", d / "run", golden_weights, train_root, val_root)
    proc = run_masseg("train", str(cfg))
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    return d / "run"
