"""The model registry: declarations load without the models, agree with the model code, and refuse bad input."""
from __future__ import annotations

import subprocess
import sys

import pytest

from data.recipes import KINDS
from models import registry
from tests.conftest import REPO


def test_builtin_families_and_their_declarations():
    fams = registry.families()
    assert {"sam2", "cutie"} <= set(fams)
    for fam in fams.values():
        assert fam.recipe_kind in KINDS, fam.name
        assert fam.checkpoint_family and callable(fam.build)
    assert registry.get("sam2").option_names == ("variant", "mem_scale", "mem_bias", "vos_optimized")
    assert registry.get("cutie").option_names == ("size", "preset")


def test_declarations_load_without_torch():
    """Configs and --help read the registry: it must not import torch or the model code."""
    code = ("import sys; from models import registry; registry.families(); "
            "from pipeline.members import model_click_options; model_click_options(); "
            "bad = [m for m in ('torch', 'sam2', 'models.cutie', 'models.sam2.build') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_sam2_variant_table_matches_the_installed_package():
    pytest.importorskip("sam2", reason="sam2 is not installed")
    from models.sam2.build import packaged_variants
    from models.sam2.variants import KNOWN, canonical

    assert sorted(KNOWN) == sorted(packaged_variants())
    assert canonical("sam2.1_hiera_tiny") == "sam2.1_hiera_t" == canonical("configs/sam2.1/sam2.1_hiera_t.yaml")
    assert canonical("sam2.1_hiera_xl") is None


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(registry.UnknownModelError, match=r"unknown model 'xmem'.*known models: cutie, sam2"):
        registry.get("xmem")


@pytest.mark.parametrize("model, options, size, expected", [
    ("sam2", {"variant": "sam2.1_hiera_q"}, 1024, "variant: unknown SAM2 variant 'sam2.1_hiera_q'"),
    ("sam2", {"variant": "sam2.1_hiera_t"}, 1040, "input size must be a positive multiple of 32"),
    ("sam2", {"variant": "sam2.1_hiera_t", "mem_scale": "15"}, 1024, "mem_scale: expected a number"),
    ("sam2", {"variant": "sam2.1_hiera_t", "vos_optimized": 1}, 1024, "vos_optimized: expected true/false"),
    ("sam2", {"variant": "sam2.1_hiera_t", "preset": "mose"}, 1024, "preset: not an option of model sam2"),
    ("cutie", {"preset": "fast"}, 480, "preset: 'fast' is not one of"),
    ("cutie", {"size": "large"}, 480, "size: 'large' is not one of"),
    ("cutie", {}, -5, "shorter side must be a positive number"),
])
def test_option_and_size_problems(model, options, size, expected):
    fam = registry.get(model)
    _, problems = fam.check_options(options, where="m")
    problems += fam.check_image_size(size, "m.image_size")
    assert any(expected in p for p in problems), problems


def test_registering_twice_is_refused_unless_replacing():
    fam = registry.get("cutie")
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.ModelFamily(**{**fam.__dict__}))
    assert registry.register(fam) is fam      # the same declaration again is harmless
