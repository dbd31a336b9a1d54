"""Fixtures for the SAM2 stage tests: golden weights (regenerated from the recipe, sha256-checked), the golden
checker, and small DAVIS-layout roots made of symlinks to the shared clips."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

# Must precede torch's OpenMP start-up to take effect (running these tests alone): on a shared 2-core machine
# spinning OpenMP workers make a 2-thread run several times slower than a 1-thread one.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402

from tests.conftest import shared_path  # noqa: E402

GOLDEN_SHA256 = "b146d6bfd72af7eb774633f52e66441ce288207e9c9df6d6e779b5f6528a17a0"
CONFIG = "sam2.1_hiera_t"


def import_file(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


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
    proc = subprocess.run([sys.executable, str(golden_dir / "make_weights.py"), "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    recipe = import_file(golden_dir / "make_weights.py", "sam2_make_weights")
    sd = torch.load(out, map_location="cpu", weights_only=True)["model"]
    assert recipe.torch_state_dict_sha256(sd) == GOLDEN_SHA256
    return out


@pytest.fixture(scope="session")
def clips() -> Path:
    return shared_path("vos-clips")


def link_video(root: Path, video: str, clip_root: Path, frames: list[str], anns=(), src_video: str | None = None,
               rename: dict[str, str] | None = None) -> None:
    """Make ``root/{JPEGImages,Annotations}/<video>/`` hold exactly the listed frames and annotations of
    ``clip_root``'s video ``src_video`` (default: same name), as symlinks; ``rename`` maps source stems to new ones."""
    rename = rename or {}
    src = src_video or video
    for sub, names, ext in (("JPEGImages", frames, "jpg"), ("Annotations", anns, "png")):
        folder = root / sub / video
        folder.mkdir(parents=True, exist_ok=True)
        for f in names:
            (folder / f"{rename.get(f, f)}.{ext}").symlink_to(clip_root / sub / src / f"{f}.{ext}")


def frames_range(n: int, start: int = 0) -> list[str]:
    return [f"{i:05d}" for i in range(start, start + n)]


@pytest.fixture(scope="session")
def golden_root(clips, tmp_path_factory) -> Path:
    """The golden's inputs: bmx-trees frames 0-3 (davis2017_firstframe) and libby frames 0-11 (davis2016)."""
    root = tmp_path_factory.mktemp("golden_root")
    link_video(root, "bmx-trees", clips / "davis2017_firstframe", frames_range(4), ["00000"])
    link_video(root, "libby", clips / "davis2016", frames_range(12), ["00000"])
    return root
