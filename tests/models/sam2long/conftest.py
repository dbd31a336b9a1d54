"""Fixtures for the SAM2Long member tests: the golden's weights (regenerated from its recipe, sha256-checked), its
checker module, and DAVIS-layout roots of symlinks to the shared clips (the golden's exact 30-frame inputs)."""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts OpenMP (see tests/conftest.py)

import pytest  # noqa: E402
import torch  # noqa: E402

from tests.conftest import shared_path  # noqa: E402
from tests.helpers.golden import SAM2_CONFIG, frames_range, import_file, link_video, run_weights_recipe  # noqa: E402

RECIPE_SHA256 = "2d2f845e96854cc472af321c9435b5510229f4b9fbe4ff60174d99b3b8ded6c4"
CONFIG = SAM2_CONFIG


@pytest.fixture(scope="session", autouse=True)
def _two_threads():
    """The golden was made with 2 threads (thread count changes the last bits of CPU reductions)."""
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def sl_golden_dir() -> Path:
    shared_path("golden", "sam2", "make_weights.py")  # the recipe extends the sam2 fixture's
    return shared_path("golden", "sam2long")


@pytest.fixture(scope="session")
def sl_golden(sl_golden_dir):
    return import_file(sl_golden_dir / "golden.py", "sam2long_golden")


@pytest.fixture(scope="session")
def sl_weights(sl_golden_dir, tmp_path_factory) -> Path:
    """sam2.1-tiny weights of recipe sam2long-golden-v1; the recipe itself checks the state-dict sha256."""
    out = tmp_path_factory.mktemp("sam2long_weights") / "synthetic_sam2long_v1.pt"
    proc = run_weights_recipe(sl_golden_dir / "make_weights.py", out)
    assert RECIPE_SHA256 in proc.stdout, proc.stdout + proc.stderr
    return out


@pytest.fixture(scope="session")
def sl_root(tmp_path_factory) -> Path:
    """libby frames 0-29 (davis2016) and bmx-trees frames 0-29 with the 2-object davis2017 prompt."""
    clips = shared_path("vos-clips")
    root = tmp_path_factory.mktemp("sam2long_root")
    link_video(root, "libby", clips / "davis2016", frames_range(30), ["00000"])
    link_video(root, "bmx-trees", clips / "davis2016", frames_range(30))
    (root / "Annotations" / "bmx-trees" / "00000.png").symlink_to(
        clips / "davis2017_firstframe" / "Annotations" / "bmx-trees" / "00000.png")
    return root
