"""A small real run for the report tests: two SAM2 members (deterministic tiny weights, 128 px, the second
with MASSeg mask scaling) on a generated dataset, every stage of `masseg run` including a sweep and the report
(about 12 s of CPU)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.golden import sam2_recipe_weights
from tests.helpers.runs import RUN_HEAD

CONFIG = RUN_HEAD + """[[member]]
name = "sam2a"
model = "sam2"
variant = "sam2.1_hiera_t"
checkpoint = "{sam2}"
image_size = [128]
[[member]]
name = "sam2b"
model = "sam2"
variant = "sam2.1_hiera_t"
checkpoint = "{sam2}"
image_size = [128]
mem_scale = 15.0
mem_bias = -7.0
[fusion]
mode = "soft"
[sweep]
weights = ["simplex:0.25"]
modes = ["soft", "majority"]
"""


def make_run(tmp: Path, name: str = "run", sweep: bool = True) -> tuple[Path, Path, Path, list[str]]:
    """(config, run folder, dataset root, printed lines) of a finished run."""
    from pipeline.run import run_experiment
    from pipeline.synthetic import make_synthetic_dataset
    sam2 = tmp / "sam2_tiny_synthetic.pt"
    if not sam2.is_file():
        sam2_recipe_weights(sam2)
    root = tmp / "ds"
    if not root.is_dir():
        make_synthetic_dataset(root, n_videos=2, n_frames=6, hw=(64, 96), seed=5)
    text = CONFIG.format(out=tmp / name, root=root, sam2=sam2)
    if not sweep:
        text = text[:text.index("[sweep]")]
    cfg = tmp / f"{name}.toml"
    cfg.write_text(text)
    lines: list[str] = []
    run_experiment(cfg, echo=lines.append)
    return cfg, tmp / name, root, lines


@pytest.fixture(scope="package")
def small_run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("report_run"))
