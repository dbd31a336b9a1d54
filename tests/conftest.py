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
