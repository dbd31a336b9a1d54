"""`masseg run`: every stage end to end on a generated dataset with real (deterministically initialised) SAM2 and
Cutie weights; resuming skips finished stages; SIGKILL at points inside each stage, then a rerun, gives outputs
byte-identical to an uninterrupted run."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch

from pipeline.run import run_experiment
from pipeline.synthetic import make_synthetic_dataset
from tests.conftest import REPO
from tests.helpers.golden import sam2_recipe_weights
from tests.helpers.runs import RUN_HEAD

CONFIG = RUN_HEAD + """[[member]]
name = "sam2t"
model = "sam2"
variant = "sam2.1_hiera_t"
checkpoint = "{sam2}"
image_size = [128]
mem_scale = 15.0
mem_bias = -7.0
[[member]]
name = "cutie_s"
model = "cutie"
size = "small"
checkpoint = "{cutie}"
flip = true
[fusion]
mode = "soft"
[fusion.members.sam2t]
weight = 0.5
[fusion.members.cutie_s]
weight = 0.5
"""


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    sam2 = sam2_recipe_weights(tmp / "sam2_tiny_synthetic.pt")
    from models.cutie import build_cutie
    torch.manual_seed(0)
    cutie = tmp / "cutie_small_seeded.pth"
    torch.save(build_cutie("small", device="cpu").state_dict(), cutie)
    root = make_synthetic_dataset(tmp / "ds", n_videos=2, n_frames=6, hw=(64, 96), seed=5)
    return tmp, root, sam2, cutie


def write_config(material, name: str) -> Path:
    tmp, root, sam2, cutie = material
    path = tmp / f"{name}.toml"
    path.write_text(CONFIG.format(out=tmp / name, root=root, sam2=sam2, cutie=cutie))
    return path


def outputs(run: Path) -> dict[str, str]:
    """sha256 of every product file (stores, labels, zip, J&F tables); records of when/how long are left out."""
    keep = []
    for p in sorted(run.rglob("*")):
        rel = p.relative_to(run).as_posix()
        if p.is_file() and (rel.startswith(("stores/", "labels/", "eval/")) or rel == "submission.zip"):
            keep.append((rel, hashlib.sha256(p.read_bytes()).hexdigest()))
    return dict(keep)


@pytest.fixture(scope="module")
def reference(material):
    """The uninterrupted run, as a `masseg run` process like the killed ones (same environment)."""
    import json
    cfg = write_config(material, "reference")
    assert _start(cfg).wait(timeout=900) == 0
    summary = json.loads((material[0] / "reference" / "summary.json").read_text())
    return cfg, summary, []


def test_run_end_to_end(reference, material):
    cfg, summary, lines = reference
    run = material[0] / "reference"
    assert sorted(p.name for p in (run / "stores").iterdir()) == ["cutie_s-s480", "cutie_s-s480-flip", "sam2t-s128"]
    with zipfile.ZipFile(run / "submission.zip") as z:
        names = z.namelist()
    assert "synth000/00000.png" in names and "synth001/00005.png" in names
    assert summary["zip"]["bytes"] == (run / "submission.zip").stat().st_size
    assert 0 <= summary["jf"]["davis"]["J&F-Mean"] <= 1
    for name in ("config.toml", "resolved.json", "environment.json", "checkpoints.json", "timings.json",
                 "summary.md", "summary.json", "eval/global.md"):
        assert (run / name).is_file(), name
    assert "J&F" in (run / "summary.md").read_text()
    assert set(summary["timings"]) == {"infer", "fuse", "submit", "evaluate", "report"}
    assert (run / "report" / "index.html").is_file() and "report/index.html" in (run / "summary.md").read_text()


def test_rerun_skips_finished_work(reference, material):
    cfg, _, _ = reference
    run = material[0] / "reference"
    before = outputs(run)
    timings = (run / "timings.json").read_text()
    lines = []
    t0 = time.perf_counter()
    run_experiment(cfg, echo=lines.append)
    assert outputs(run) == before
    text = "\n".join(lines)
    assert text.count("complete, skipped") == 7 and "[fuse] complete, skipped" in text
    for stage in ("[fuse]", "[submit]", "[evaluate]", "[report]"):  # each stage says once that it had nothing to do
        assert sum(line.startswith(stage) for line in lines) == 1, (stage, lines)
    assert (run / "timings.json").read_text() == timings  # the skipped stages keep the times they took
    assert time.perf_counter() - t0 < 60


def _start(cfg: Path) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="2", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", "run", str(cfg)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _kill_when(proc: subprocess.Popen, condition, timeout: float = 300) -> bool:
    """SIGKILL the run as soon as ``condition()`` holds; False when it finished first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError("the run neither reached the kill point nor finished")


def test_sigkill_anywhere_then_rerun_is_byte_identical(reference, material):
    run = material[0] / "killed"
    cfg = write_config(material, "killed")
    partial = lambda store: lambda: any(p.name.endswith(".partial")  # noqa: E731
                                        for p in (run / "stores" / store / "videos").glob(".*"))
    n_labels = lambda: len(list((run / "labels").rglob("*.png")))  # noqa: E731
    points = {
        "inside the first SAM2 video": partial("sam2t-s128"),
        "inside a Cutie video": partial("cutie_s-s480"),
        "inside the flipped Cutie store": lambda: (run / "stores" / "cutie_s-s480-flip" / "videos").is_dir(),
        "inside fusion": lambda: n_labels() >= 3,
        "after fusion": lambda: (run / ".stages" / "fuse.json").exists(),
        "after the zip": lambda: (run / ".stages" / "submit.json").exists(),
    }
    killed = []
    for what, cond in points.items():
        if _kill_when(_start(cfg), cond):
            killed.append(what)
    assert len(killed) >= 4, killed  # most points must actually have been hit
    proc = _start(cfg)
    assert proc.wait(timeout=600) == 0
    ref = outputs(material[0] / "reference")
    got = outputs(run)
    assert got.keys() == ref.keys()
    assert got == ref
    assert not [p for p in run.rglob("*") if p.name.endswith((".partial", ".tmp"))]


def test_config_errors_stop_before_any_work(material, tmp_path):
    tmp, root, sam2, cutie = material
    cfg = tmp_path / "bad.toml"
    cfg.write_text(CONFIG.format(out=tmp_path / "out", root=root, sam2=tmp_path / "nope.pt", cutie=cutie)
                   .replace('mode = "soft"', 'mode = "average"').replace("image_size = [128]", "image_size = [100]"))
    p = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", str(cfg)], cwd=REPO, capture_output=True,
                       text=True)
    assert p.returncode == 2
    for key in ("member[0].checkpoint", "member[0].image_size", "fusion.mode", "3 problems"):
        assert key in p.stderr, (key, p.stderr)
    assert not (tmp_path / "out").exists()


def test_one_run_per_folder(tmp_path):
    from data.errors import MassegError
    from pipeline.run import RunFolder
    folder = RunFolder(tmp_path / "r")
    with folder.lock():
        with pytest.raises(MassegError, match="another `masseg run`"):
            with folder.lock():
                pass
    with folder.lock():  # released
        pass


def test_sweep_section_tunes_the_fusion(reference, material, tmp_path):
    import shutil
    tmp, root, sam2, cutie = material
    out = tmp_path / "swept"
    shutil.copytree(tmp / "reference", out)  # complete stores: only sweep, fuse, zip and J&F run
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(CONFIG.format(out=out, root=root, sam2=sam2, cutie=cutie)
                   + '[sweep]\nweights = ["simplex:0.5"]\nmodes = ["soft", "majority"]\n')
    lines = []
    summary = run_experiment(cfg, echo=lines.append)
    from ensemble.config import load_config
    best = load_config(out / "sweep" / "best.toml")
    ranked = (out / "sweep" / "sweep_ranked.csv").read_text().splitlines()
    assert len(ranked) == 1 + 6 * 2  # header + 6 weight vectors over 3 stores (step 0.5) x 2 modes
    assert summary["sweep_best"] == str(out / "sweep" / "best.toml")
    fused = load_config(out / "fusion.toml")
    assert [m.weight for m in fused.members] == [m.weight for m in best.members] and fused.mode == best.mode
    assert any("[sweep] 12 settings" in line for line in lines)
