"""Fixtures of the ensemble tests: synthetic members built once per session (they take a few seconds)."""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import shared_path
from tests.ensemble import synthetic


def moving_ellipses(n_frames: int = 10, hw=(72, 96), n_obj: int = 2, seed: int = 0) -> np.ndarray:
    """Programmatic GT (no shared data needed): ellipses moving across the frame, one id each."""
    rng = np.random.default_rng(seed)
    H, W = hw
    yy, xx = np.mgrid[:H, :W]
    out = np.zeros((n_frames, H, W), np.uint8)
    params = [(rng.uniform(0.3, 0.7) * H, rng.uniform(0.2, 0.5) * W, rng.uniform(0.12, 0.25) * H,
               rng.uniform(0.1, 0.2) * W, rng.uniform(-1.5, 1.5), rng.uniform(0.5, 2.0)) for _ in range(n_obj)]
    for t in range(n_frames):
        for o, (cy, cx, ry, rx, vy, vx) in enumerate(params, 1):
            m = ((yy - cy - vy * t) / ry) ** 2 + ((xx - cx - vx * t) / rx) ** 2 <= 1
            out[t][m] = o
    return out


@pytest.fixture(scope="session")
def small_members(tmp_path_factory):
    """Three synthetic members on two programmatic videos: (tmp folder, {member: store}, dataset root)."""
    tmp = tmp_path_factory.mktemp("small_members")
    videos = {"ell2": moving_ellipses(10, (72, 96), 2, 0), "ell1": moving_ellipses(8, (64, 80), 1, 1)}
    stores = synthetic.build_members(tmp, videos)
    return tmp, stores, tmp / "data"


@pytest.fixture(scope="session")
def proof_members(tmp_path_factory):
    """Members on two shared clips (libby, chair) and two synthetic-benchmark videos, 24 frames each."""
    clips = shared_path("vos-clips")
    gen = shared_path("golden", "jf", "gen_synthetic.py")
    pytest.importorskip("cv2", reason="gen_synthetic.py needs opencv (the project's test extra)")
    tmp = tmp_path_factory.mktemp("proof_members")
    videos = synthetic.clip_videos(clips, frames=24, factor=2)
    videos.update(synthetic.synthetic_videos(gen, [2, 6], frames=24))
    stores = synthetic.build_members(tmp, videos)
    return tmp, stores, tmp / "data", {"clips": ["libby", "chair"], "synthetic": ["synth02", "synth06"]}
