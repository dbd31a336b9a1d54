"""`masseg train` is resumable: killed with SIGKILL in the middle of a run, the same command continues from the
last checkpoint and ends with exactly the weights, per-step losses and validation scores of an uninterrupted run.
The run folder records what a run was; the output checkpoint loads in `masseg infer --checkpoint` unchanged."""
from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from pipeline.cli import main

from .conftest import EPOCHS, REPO, child_env, run_masseg, tiny_toml


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def steps_done(run: Path) -> int:
    p = run / "train_steps.csv"
    return len(rows(p)) if p.exists() else 0


def test_kill_9_then_rerun_equals_uninterrupted(reference_run, golden_weights, train_root, val_root, tmp_path):
    """The killed run is started by torchrun (one process: the launch path of a multi-GPU node), the rerun by the
    plain command: both launch paths give the reference run's numbers."""
    cfg = tiny_toml(tmp_path / "tiny.toml", tmp_path / "run", golden_weights, train_root, val_root)
    run = tmp_path / "run"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
                "-m", "pipeline.cli", "train", str(cfg)]
    log = open(tmp_path / "torchrun.log", "w")
    proc = subprocess.Popen(torchrun, env=child_env(), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, cwd=REPO)
    try:
        deadline = time.time() + 400
        # kill inside epoch 2: its step is being computed, epoch 1's checkpoint and validation-free state exist
        while steps_done(run) < 2 and proc.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before it could be killed: " + \
            (tmp_path / "torchrun.log").read_text()[-3000:]
        # kill -9 every process of the run: torchrun's agent and its worker (which has a session of its own)
        import psutil
        family = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        for pid in family:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    finally:
        proc.wait()
        log.close()
    assert proc.returncode == -signal.SIGKILL
    ckpt = torch.load(run / "checkpoints" / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert ckpt["epoch"] < EPOCHS
    assert json.loads((run / "environment.json").read_text())["env"].get("TORCHELASTIC_RUN_ID") is not None
    again = run_masseg("train", str(cfg))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "trained 3 steps" in again.stdout

    a = torch.load(run / "checkpoints" / "checkpoint.pt", map_location="cpu", weights_only=True)
    b = torch.load(reference_run / "checkpoints" / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert a["epoch"] == b["epoch"] == EPOCHS
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in b["model"]), "resumed weights differ"
    assert rows(run / "train_steps.csv") == rows(reference_run / "train_steps.csv")
    assert rows(run / "metrics.csv") == rows(reference_run / "metrics.csv")


def test_run_folder_records(reference_run):
    run = reference_run
    for name in ("config.toml", "run.json", "data_manifest.json", "environment.json", "hydra/train.yaml",
                 "config_resolved.yaml", "metrics.csv", "curves.png", "best.json", "checkpoints/best.pt"):
        assert (run / name).is_file(), name
    record = json.loads((run / "run.json").read_text())
    assert record["seed"] == 7 and len(record["checkpoint_sha256"]) == 64
    manifest = json.loads((run / "data_manifest.json").read_text())
    assert manifest["sources"][0]["clips"] == 1 and manifest["sources"][0]["frames"] == 8
    assert len(manifest["clips_sha256"]) == 64
    env = json.loads((run / "environment.json").read_text())
    assert env["packages"]["sam2"] == "1.1.0"
    metrics = rows(run / "metrics.csv")
    assert [int(r["epoch"]) for r in metrics] == [2, 3]       # every 2 epochs, and after the last one
    for r in metrics:
        assert 0.0 <= float(r["J&F"]) <= 1.0 and float(r["train_loss"]) > 0
    best = json.loads((run / "best.json").read_text())
    assert best["J&F"] == max(float(r["J&F"]) for r in metrics)
    resolved = (run / "config_resolved.yaml").read_text()
    assert "MassegTrainer" in resolved and "resolution: 256" in resolved


def test_checkpoint_loads_in_masseg_infer(reference_run, val_root, tmp_path):
    store = tmp_path / "store"
    for ckpt in ("checkpoint.pt", "best.pt"):
        rc = main(["infer", "--model", "sam2", "--root", str(val_root), "--split", "val", "--out", str(store / ckpt),
                   "--config", "sam2.1_hiera_t", "--checkpoint", str(reference_run / "checkpoints" / ckpt),
                   "--image-size", "256", "--device", "cpu", "--no-progress"])
        assert rc == 0
        assert (store / ckpt / "videos").is_dir()


def test_rerun_of_a_finished_run_changes_nothing(reference_run, golden_weights, train_root, val_root, tmp_path):
    """The same command on a finished run resumes to the end at once: no step, no validation is redone."""
    before = (reference_run / "checkpoints" / "checkpoint.pt").stat().st_mtime_ns
    metrics = rows(reference_run / "metrics.csv")
    cfg = tiny_toml(tmp_path / "tiny.toml", reference_run, golden_weights, train_root, val_root)
    proc = run_masseg("train", str(cfg))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (reference_run / "checkpoints" / "checkpoint.pt").stat().st_mtime_ns == before
    assert rows(reference_run / "metrics.csv") == metrics
