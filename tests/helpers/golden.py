"""Golden material of ../shared as several test packages use it (the CPU golden tests, tests/gpu): recipe weights
regenerated and sha256-checked one way everywhere, and DAVIS-layout roots made of symlinks to the shared clips.

torch is imported lazily: the SAM2 conftests set OMP_WAIT_POLICY before torch starts and import this module."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Callable

# sam2.1-tiny weights of ../shared/golden/sam2/make_weights.py (the state-dict sha256 its README records)
SAM2_GOLDEN_SHA256 = "b146d6bfd72af7eb774633f52e66441ce288207e9c9df6d6e779b5f6528a17a0"
SAM2_CONFIG = "sam2.1_hiera_t"


def import_file(path: Path, name: str):
    """A fixture's script (golden.py, make_weights.py, ...) as a module; the shared folder is no package."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_weights_recipe(recipe: Path, out: Path) -> subprocess.CompletedProcess:
    """Run a shared ``make_weights.py --out OUT`` in its own interpreter, as its README does; fail with its output."""
    proc = subprocess.run([sys.executable, str(recipe), "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def sam2_golden_weights(golden_dir: Path, out: Path, module_name: str) -> Path:
    """The SAM2 golden's synthetic weights written to ``out``; their state-dict sha256 must be the README's."""
    import torch

    run_weights_recipe(golden_dir / "make_weights.py", out)
    recipe = import_file(golden_dir / "make_weights.py", module_name)
    sd = torch.load(out, map_location="cpu", weights_only=True)["model"]
    assert recipe.torch_state_dict_sha256(sd) == SAM2_GOLDEN_SHA256
    return out


def cutie_recipe_state_dicts(golden_dir: Path, make_weights, variants: dict) -> Callable[[str], dict]:
    """size ("small"/"base") -> the Cutie golden recipe's state dict, made once per size and checked against the
    sha256 the fixture's variants.json records."""
    cache = {}

    def get(size: str):
        if size not in cache:
            sd = make_weights.make_state_dict(str(golden_dir / f"keys_{size}.json"))
            expected = {v["model"]: v["weights_sha256"] for v in variants.values()}[size]
            assert make_weights.state_dict_sha256(sd) == expected, f"recipe weights for cutie-{size} changed"
            cache[size] = sd
        return cache[size]

    return get


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


def sam2_recipe_weights(out: Path) -> Path:
    """The SAM2 golden recipe's tiny weights at ``out`` (skips where ../shared is absent): real SAM2 weights for
    end-to-end runs that need a model, not the golden's numbers."""
    from tests.conftest import shared_path

    run_weights_recipe(shared_path("golden", "sam2", "make_weights.py"), out)
    return out
