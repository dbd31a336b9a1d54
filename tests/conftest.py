"""Shared fixtures: where ../shared lives, and skipping cleanly when it does not."""
from __future__ import annotations

import os
from pathlib import Path

# Before torch starts OpenMP: spinning idle OpenMP workers make 2-thread runs several times slower whenever the
# 2 cores are shared (another test process, a benchmark).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def shared_path(*parts: str) -> Path:
    """Path under ../shared, skipping the test with a clear reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared test material not found at {path} (only present on the project's machines)")
    return path


@pytest.fixture
def vos_clips() -> Path:
    return shared_path("vos-clips")


GPU_SKIP_REASON = ("needs CUDA: torch.cuda.is_available() is False on this machine "
                   "(run `make gpu-check` on a machine with an NVIDIA GPU)")


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` skip, with the reason, where there is no CUDA device."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu_items:
        return
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason=GPU_SKIP_REASON)
    for item in gpu_items:
        item.add_marker(skip)
