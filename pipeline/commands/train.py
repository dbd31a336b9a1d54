"""`masseg train CONFIG`: fine-tune SAM2 with the official trainer (the MOSE fine-tune recipe), resumably.

Everything a run needs is checked before the model is built: config keys, data roots, the validation split, that
the run folder is writable, that the initial checkpoint loads into the variant. The run folder then records the
config, the hydra config the official trainer runs (``hydra/train.yaml``, and the trainer's own ``config.yaml`` /
``config_resolved.yaml``), the data manifest, the environment and the seed. Running the same command again
continues from the last checkpoint (``checkpoints/checkpoint.pt``), with the same result as an uninterrupted run.
"""
from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import json
import os
import platform
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import click

from data.atomic import atomic_write_text
from data.errors import MassegError

RUN_FILE = "run.json"
LOCK_FILE = ".train.lock"


@contextlib.contextmanager
def run_lock(run_dir: Path):
    """One `masseg train` per run folder: a second one (say, rerun while a killed launcher's workers still run)
    would interleave checkpoints. POSIX flock, released when the process dies. Under torchrun only rank 0 holds
    it, since every rank runs this command."""
    if os.environ.get("RANK", "0") != "0":
        yield
        return
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MassegError("another `masseg train` is running in this run folder", run_dir,
                              "wait for it to end (or stop it), then rerun this command to resume") from None
        yield
    finally:
        os.close(fd)


def _device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise MassegError("train.device = \"cuda\" but CUDA is not available", fix="use device = \"auto\" or \"cpu\"")
    return requested


def _check_writable(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=run_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise MassegError(f"run folder is not writable ({exc.strerror or exc})", run_dir,
                          "set train.out (or --out) to a folder you can write to") from None


def _check_checkpoint(name_or_path: str, variant: str, image_size: int) -> Path:
    """Resolve a registry name or a path and load it strictly into the variant (one-line error on a mismatch)."""
    from models.sam2.build import build_predictor, load_checkpoint
    from pipeline.registry import resolve_checkpoint

    path = resolve_checkpoint(name_or_path)
    model, ref = build_predictor(variant, overrides=[f"++model.image_size={int(image_size)}"])
    load_checkpoint(model, path, ref.label)
    del model
    return path


def _environment() -> dict:
    import torch

    def version(dist):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {"python": sys.version.split()[0], "platform": platform.platform(), "host": socket.gethostname(),
            "torch": torch.__version__, "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
            "gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0,
            "torch_threads": torch.get_num_threads(),
            "packages": {d: version(d) for d in ("masseg-pipeline", "sam2", "torchvision", "numpy", "hydra-core",
                                                 "omegaconf", "iopath", "fvcore", "submitit", "tensorboard",
                                                 "tensordict")},
            "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID",
                                               "TORCHELASTIC_RUN_ID", "WORLD_SIZE") if k in os.environ}}


def _record_run(cfg, config_path: Path, run_dir: Path, checkpoint: Path, device: str, manifest: dict) -> None:
    from data.hashing import file_sha256

    identity = cfg.fingerprint()
    run_file = run_dir / RUN_FILE
    if run_file.exists():
        old = json.loads(run_file.read_text())
        if old.get("fingerprint") != identity:
            raise MassegError("this run folder holds a run of a different training config", run_dir,
                              "set train.out (or --out) to a new folder; the same config resumes its run")
        if old.get("data_manifest", {}).get("clips_sha256") != manifest["clips_sha256"]:
            raise MassegError("the training data changed since this run started (clip list hash differs)", run_dir,
                              "restore the data, or start a new run folder")
        return  # resume: keep the first record
    atomic_write_text(run_dir / "config.toml", config_path.read_text())
    atomic_write_text(run_dir / "data_manifest.json", json.dumps(manifest, indent=1) + "\n")
    atomic_write_text(run_dir / "environment.json", json.dumps(_environment(), indent=1) + "\n")
    record = {"fingerprint": identity, "config": str(config_path.resolve()), "seed": cfg.train["seed"],
              "device": device, "checkpoint": str(checkpoint), "checkpoint_sha256": file_sha256(checkpoint),
              "augment": cfg.augment["preset"], "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "data_manifest": {"clips_sha256": manifest["clips_sha256"]}, "command": sys.argv}
    atomic_write_text(run_file, json.dumps(record, indent=1) + "\n")


def prepare(config: str | os.PathLike, stack: contextlib.ExitStack, out: str | None = None,
            device: str | None = None):
    """Check everything and write the run folder; returns (config, run_dir). Nothing heavy is loaded before the
    output folder is known to be writable; the run folder's lock is entered on ``stack``."""
    from models.sam2.finetune.data import check_root, data_manifest
    from models.sam2.finetune.hydra_config import build_hydra_config, train_transforms
    from models.sam2.finetune.launch import write_hydra_yaml
    from models.sam2.finetune.settings import load_config

    overrides = {}
    if out:
        overrides["train.out"] = str(Path(out).resolve())
    if device:
        overrides["train.device"] = device
    cfg = load_config(config, overrides)
    train_transforms(cfg)   # augmentation settings checked with the rest of the config
    for src in cfg.sources:
        check_root(src.root, src.list)
    if cfg.val_root is not None:
        from data.dataset import VOSDataset
        VOSDataset(cfg.val_root, cfg.val_split or None)
    if cfg.slurm["use_cluster"] and shutil.which("sbatch") is None:
        # submitit would fall back to a local job, which it cancels as soon as the launcher returns
        raise MassegError("[slurm] use_cluster = true but Slurm's sbatch is not on this machine", cfg.path,
                          "run on a Slurm login node, or set use_cluster = false (gpus = N uses every GPU here)")
    if cfg.slurm["use_cluster"]:   # the job runs on the cluster's GPU nodes, not on this login node
        dev = "cpu" if cfg.train["device"] == "cpu" else "cuda"
    else:
        dev = _device(cfg.train["device"])
    run_dir = cfg.out.resolve()
    _check_writable(run_dir)
    stack.enter_context(run_lock(run_dir))
    checkpoint = _check_checkpoint(cfg.model["checkpoint"], cfg.model["variant"], cfg.model["image_size"])
    manifest = data_manifest(cfg.sources, cfg.val_root, cfg.val_split)
    _record_run(cfg, Path(config), run_dir, checkpoint, dev, manifest)
    write_hydra_yaml(build_hydra_config(cfg, checkpoint, run_dir, dev), run_dir)
    return cfg, run_dir


def _summary(run_dir: Path, seconds: float) -> str:
    import csv

    steps = run_dir / "train_steps.csv"
    rows = list(csv.DictReader(open(steps, newline=""))) if steps.exists() else []
    text = f"trained {len(rows)} steps"
    if rows:
        text += f" ({int(rows[-1]['epoch']) + 1} epochs), last loss {float(rows[-1]['core_loss']):.4f}"
    best = run_dir / "best.json"
    if best.exists():
        b = json.loads(best.read_text())
        text += f", best J&F {100 * b['J&F']:.2f}% at epoch {b['epoch']} -> {b['checkpoint']}"
    text += f"; {seconds:.0f} s -> {run_dir / 'checkpoints' / 'checkpoint.pt'}"
    return text


@click.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--out", default=None, help="run folder [default: the config's train.out]")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None,
              help="override train.device [default: the config's, auto]")
@click.option("--verbose", is_flag=True, help="show the official trainer's console log (else <run>/trainer_stdout.log)")
def train(config, out, device, verbose):
    """Fine-tune SAM2 with the official trainer from a TOML config; rerun the same command to resume."""
    from models.sam2.finetune.launch import run_official

    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        cfg, run_dir = prepare(config, stack, out, device)
        click.echo(f"training {cfg.model['variant']} from {cfg.model['checkpoint']} -> {run_dir} "
                   f"(log: {run_dir / 'trainer_stdout.log'})", err=True)
        run_official(run_dir, stdout_log=None if verbose else run_dir / "trainer_stdout.log")
    if cfg.slurm["use_cluster"]:
        click.echo(f"submitted to Slurm through the official submitit launcher (job id in "
                   f"{run_dir / 'trainer_stdout.log'}); logs in {run_dir / 'submitit_logs'}")
        return
    click.echo(_summary(run_dir, time.perf_counter() - start))
