"""Fixtures for the Cutie tests: golden material from ../shared (skipped cleanly when absent),
recipe weights (sha256-checked), and a small synthetic video for the unit tests."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from models.cutie import build_cutie, disable_tf32
from tests.conftest import shared_path
from tests.helpers.golden import cutie_recipe_state_dicts, import_file

torch.set_num_threads(2)
disable_tf32()  # the tests compare numbers; TF32 would only matter on a GPU

GOLDEN = ("golden", "cutie")


@pytest.fixture(scope="session")
def golden_dir():
    return shared_path(*GOLDEN)


@pytest.fixture(scope="session")
def make_weights(golden_dir):
    return import_file(golden_dir / "make_weights.py", "cutie_make_weights")


@pytest.fixture(scope="session")
def check_outputs(golden_dir):
    return import_file(golden_dir / "check_outputs.py", "cutie_check_outputs")


@pytest.fixture(scope="session")
def variants(golden_dir):
    return json.loads((golden_dir / "variants.json").read_text())


@pytest.fixture(scope="session")
def keys_json(golden_dir):
    return {v: json.loads((golden_dir / f"keys_{v}.json").read_text()) for v in ("small", "base")}


@pytest.fixture(scope="session")
def recipe_state_dict(golden_dir, make_weights, variants):
    """variant -> golden recipe weights, checked against the sha256 the fixture records."""
    return cutie_recipe_state_dicts(golden_dir, make_weights, variants)


@pytest.fixture(scope="session")
def small_net():
    """cutie-small with seeded random weights: enough for behavioural tests, no shared material needed."""
    torch.manual_seed(0)
    return build_cutie("small", device="cpu")


@pytest.fixture(scope="session")
def make_video():
    return synthetic_video


def synthetic_video(t: int = 6, h: int = 64, w: int = 112, num_objects: int = 2, seed: int = 0):
    """Textured frames with moving rectangles; returns (frames uint8 (T,H,W,3), labels (T,H,W))."""
    rs = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = rs.randint(0, 256, (h // 4 + 1, w // 4 + 1, 3)).repeat(4, 0).repeat(4, 1)[:h, :w]
    frames = np.zeros((t, h, w, 3), np.uint8)
    labels = np.zeros((t, h, w), np.uint8)
    for i in range(t):
        img = np.roll(base, i, axis=1).astype(np.float64)
        for k in range(num_objects):
            y0, x0 = 6 + 12 * k, 8 + 22 * k + 3 * i
            box = (yy >= y0) & (yy < y0 + 18) & (xx >= x0) & (xx < x0 + 20)
            img[box] = (60 * k + 40, 200 - 50 * k, 120)
            labels[i][box] = k + 1
        frames[i] = np.clip(img + rs.randint(-10, 10, img.shape), 0, 255).astype(np.uint8)
    return frames, labels
