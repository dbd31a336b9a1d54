"""SAM2 / SAM2.1 model variant names, without importing torch or the sam2 package.

Why separate from :mod:`models.sam2.build`: the model registry (``models/members/sam2.py``) checks a configured
variant while parsing a config or building the CLI, long before (and often without) any model is loaded.
``tests/models/sam2/test_build.py`` checks this table against the configs the installed package ships.
"""
from __future__ import annotations

import re
from pathlib import Path

# size letter -> (official checkpoint stem, trunk embed_dim, number of Hiera blocks)
SIZES = {
    "t": ("tiny", 96, 12),
    "s": ("small", 96, 16),
    "b+": ("base_plus", 112, 24),
    "l": ("large", 144, 48),
}
ALIASES = {"tiny": "t", "small": "s", "base_plus": "b+", "base+": "b+", "b": "b+", "large": "l"}
FAMILIES = ("sam2", "sam2.1")
VARIANT_RE = re.compile(r"^(sam2|sam2\.1)_hiera_([a-z_+]+)$")
KNOWN = tuple(f"{fam}_hiera_{size}" for fam in FAMILIES for size in SIZES)


def canonical(name: str) -> str | None:
    """``sam2.1_hiera_tiny`` / ``configs/sam2.1/sam2.1_hiera_t.yaml`` -> ``sam2.1_hiera_t``; None if not a name."""
    stem = Path(str(name).strip()).name
    stem = stem[:-5] if stem.endswith(".yaml") else stem
    m = VARIANT_RE.match(stem)
    if not m:
        return None
    size = ALIASES.get(m.group(2), m.group(2))
    return f"{m.group(1)}_hiera_{size}" if size in SIZES else None


def variant_problem(value: str) -> str | None:
    """None for a known variant name (or alias) or an existing model config yaml; else what is wrong."""
    text = str(value).strip()
    if canonical(text) is not None:
        return None
    if text.endswith((".yaml", ".yml")):
        return None if Path(text).is_file() else f"config file {text!r} not found"
    return f"unknown SAM2 variant {text!r} (known: {', '.join(KNOWN)}, or the path of a model config yaml)"
