"""Fixtures for the J&F tests: the shared synthetic benchmark subset, generated once into .cache/."""
from __future__ import annotations

import pytest

from tests.submission.jf.synthetic import GOLDEN, SUBSET, SyntheticUnavailable, ensure_synthetic


@pytest.fixture(scope="session")
def synth_root():
    if not GOLDEN.exists():
        pytest.skip(f"shared golden J&F material not found at {GOLDEN} (only present on the project's machines)")
    try:
        return ensure_synthetic(SUBSET)
    except SyntheticUnavailable as exc:
        pytest.skip(f"cannot generate the synthetic J&F benchmark: {exc}")
