"""Fixtures of the CUDA checks: the shared deterministic weight recipes (sha256-checked, as in the CPU golden
tests) and DAVIS-layout roots linked to the shared clips. Every test here is marked ``gpu`` and skips with the
reason where CUDA is absent (tests/conftest.py); fixtures build nothing before that."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.conftest import shared_path
from tests.helpers.golden import (SAM2_CONFIG, cutie_recipe_state_dicts, frames_range, import_file, link_video,
                                  sam2_golden_weights)

__all__ = ["SAM2_CONFIG"]


@pytest.fixture(scope="session")
def cuda():
    if not torch.cuda.is_available():   # the marker already skips; this guards a direct call
        pytest.skip("needs CUDA")
    from models.cutie import disable_tf32
    disable_tf32()    # fp32 references must be real fp32 (Ampere+ would otherwise use 10-bit TF32 mantissas)
    return torch.device("cuda")


@pytest.fixture(scope="session")
def sam2_golden_dir() -> Path:
    return shared_path("golden", "sam2")


@pytest.fixture(scope="session")
def sam2_golden(sam2_golden_dir):
    return import_file(sam2_golden_dir / "golden.py", "sam2_golden_gpu")


@pytest.fixture(scope="session")
def sam2_weights(sam2_golden_dir, tmp_path_factory) -> Path:
    """sam2.1-tiny weights from the shared recipe; the state-dict sha256 must be the golden's."""
    out = tmp_path_factory.mktemp("sam2_weights_gpu") / "synthetic_sam2.1_hiera_t.pt"
    return sam2_golden_weights(sam2_golden_dir, out, "sam2_make_weights_gpu")


@pytest.fixture(scope="session")
def clip_root(tmp_path_factory) -> Path:
    """libby frames 0-11 (davis2016, 1 object) and bmx-trees frames 0-3 (davis2017_firstframe, 2 objects),
    the SAM2 golden's inputs."""
    clips = shared_path("vos-clips")
    root = tmp_path_factory.mktemp("gpu_clips")
    link_video(root, "libby", clips / "davis2016", frames_range(12), ["00000"])
    link_video(root, "bmx-trees", clips / "davis2017_firstframe", frames_range(4), ["00000"])
    return root


@pytest.fixture(scope="session")
def cutie_golden_dir() -> Path:
    return shared_path("golden", "cutie")


@pytest.fixture(scope="session")
def cutie_golden(cutie_golden_dir):
    import json
    make = import_file(cutie_golden_dir / "make_weights.py", "cutie_make_weights_gpu")
    check = import_file(cutie_golden_dir / "check_outputs.py", "cutie_check_outputs_gpu")
    variants = json.loads((cutie_golden_dir / "variants.json").read_text())
    return make, check, variants


@pytest.fixture(scope="session")
def cutie_state_dict(cutie_golden_dir, cutie_golden):
    """size -> the shared recipe's weights, checked against the sha256 the fixture records."""
    make, _, variants = cutie_golden
    return cutie_recipe_state_dicts(cutie_golden_dir, make, variants)
