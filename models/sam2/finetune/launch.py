"""Start the official trainer on a hydra config written into the run folder.

* One process (CPU, one GPU), all GPUs of a node (``gpus = N``: the official launcher spawns N processes) and Slurm
  (``[slurm] use_cluster = true``: the official submitit launcher) all go through ``training.train.main``,
  unchanged, pointed at ``<run>/hydra/train.yaml``.
* Under ``torchrun`` (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set by it) each process instantiates the trainer
  itself, as the official ``single_proc_run`` does, without overriding torchrun's rendezvous variables.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

HYDRA_DIR = "hydra"
HYDRA_NAME = "train"


def hydra_yaml_path(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / HYDRA_DIR / f"{HYDRA_NAME}.yaml"


def write_hydra_yaml(cfg: DictConfig, run_dir: str | os.PathLike) -> Path:
    from data.atomic import atomic_write_text

    path = hydra_yaml_path(run_dir)
    atomic_write_text(path, "# @package _global_\n# written by `masseg train`: the official trainer's config for this "
                            "run\n" + OmegaConf.to_yaml(cfg))
    return path


def under_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ or ("LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ
                                                   and "MASTER_ADDR" in os.environ)


def _register_resolvers() -> None:
    from training.utils.train_utils import register_omegaconf_resolvers

    with contextlib.suppress(Exception):   # already registered in this process
        register_omegaconf_resolvers()


@contextlib.contextmanager
def _hydra_at(config_dir: Path):
    """Point hydra at the run's config folder, then give the sam2 package its config module back."""
    import sam2  # noqa: F401  (initialises hydra on import)
    from hydra import initialize_config_dir, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir.resolve()), version_base="1.2"):
            yield
    finally:
        GlobalHydra.instance().clear()
        initialize_config_module("sam2", version_base="1.2")


def run_official(run_dir: str | os.PathLike, stdout_log: str | os.PathLike | None = None) -> None:
    """Run ``training.train.main`` on ``<run>/hydra/train.yaml`` (or the trainer directly under torchrun).

    ``stdout_log``: the official code prints the whole config and logs the model at INFO level on stdout; send
    that to this file instead of the terminal (our progress bar and summaries are on stderr)."""
    yaml_path = hydra_yaml_path(run_dir)
    _register_resolvers()
    sink = open(stdout_log, "a") if stdout_log else None
    try:
        with contextlib.redirect_stdout(sink) if sink else contextlib.nullcontext():
            if under_torchrun():
                from hydra.utils import instantiate
                cfg = OmegaConf.load(yaml_path)
                trainer = instantiate(cfg.trainer, _recursive_=False)
                trainer.run()
                return
            from training.train import main

            args = argparse.Namespace(config=HYDRA_NAME, use_cluster=None, partition=None, account=None, qos=None,
                                      num_gpus=None, num_nodes=None)
            with _hydra_at(yaml_path.parent):
                main(args)
    finally:
        if sink:
            sink.flush()
            sink.close()
        with contextlib.suppress(Exception):
            import torch.distributed as dist
            if dist.is_initialized():
                dist.destroy_process_group()
        sys.stdout.flush()
