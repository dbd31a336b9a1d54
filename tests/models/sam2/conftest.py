"""Fixtures for the SAM2 stage tests: golden weights (regenerated from the recipe, sha256-checked), the golden
checker, and small DAVIS-layout roots made of symlinks to the shared clips."""
from __future__ import annotations

import os
from pathlib import Path

# Must precede torch's OpenMP start-up to take effect (running these tests alone): on a shared 2-core machine
# spinning OpenMP workers make a 2-thread run several times slower than a 1-thread one.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402

from tests.conftest import shared_path  # noqa: E402
from tests.helpers.golden import SAM2_CONFIG, frames_range, import_file, link_video, sam2_golden_weights  # noqa: E402

CONFIG = SAM2_CONFIG


@pytest.fixture(scope="session", autouse=True)
def _two_threads():
    """The golden was made with 2 threads; the machine has 2 cores shared by several engineers."""
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    return shared_path("golden", "sam2")


@pytest.fixture(scope="session")
def golden(golden_dir):
    return import_file(golden_dir / "golden.py", "sam2_golden")


@pytest.fixture(scope="session")
def golden_weights(golden_dir, tmp_path_factory) -> Path:
    """sam2.1-tiny synthetic weights from the fixture's recipe; the state-dict sha256 must match the README."""
    out = tmp_path_factory.mktemp("sam2_weights") / "synthetic_sam2.1_hiera_t.pt"
    return sam2_golden_weights(golden_dir, out, "sam2_make_weights")


@pytest.fixture(scope="session")
def clips() -> Path:
    return shared_path("vos-clips")


@pytest.fixture(scope="session")
def golden_root(clips, tmp_path_factory) -> Path:
    """The golden's inputs: bmx-trees frames 0-3 (davis2017_firstframe) and libby frames 0-11 (davis2016)."""
    root = tmp_path_factory.mktemp("golden_root")
    link_video(root, "bmx-trees", clips / "davis2017_firstframe", frames_range(4), ["00000"])
    link_video(root, "libby", clips / "davis2016", frames_range(12), ["00000"])
    return root
