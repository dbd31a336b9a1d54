"""The official SAM2 ``Trainer`` with what a `masseg train` run needs around it, nothing changed inside a step.

Forward, loss, backward, clipping, optimizer and scheduler steps, checkpoint contents: all the official code. This
subclass only adds, through the trainer's own hook methods:

* exact resume: the RNG states (python, numpy, torch, CUDA, and the model's own prompt-sampling generator) go into
  every checkpoint and are restored with it, so a
  run killed at any time and rerun continues from the last checkpoint with the same numbers as an uninterrupted
  run; checkpoints are replaced atomically (the official save removes the old file before moving the new one in);
* per-step loss terms in ``<run>/train_steps.csv`` (what the official trainer only logs every ``log_freq`` steps)
  and a tqdm bar showing the loss;
* validation every N epochs by a callable from the config (``masseg.validation``): the SAM2 stage over the local
  validation split and J&F, with the RNG forked so validating never changes training; ``<run>/metrics.csv``,
  TensorBoard scalars, ``<run>/curves.png`` and ``checkpoints/best.pt`` (highest J&F).
"""
from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from tqdm import tqdm

from training.trainer import Trainer
from training.utils.distributed import barrier
from training.utils.train_utils import Phase

from . import cpu

cpu.apply()   # the official train_epoch's memory meter needs CUDA; see models.sam2.finetune.cpu

STEP_COLUMNS = ("step", "epoch", "core_loss", "loss_mask", "loss_dice", "loss_iou", "loss_class")
METRIC_COLUMNS = ("epoch", "step", "train_loss", "J&F", "J", "F")
CHECKPOINT_NAME = "checkpoint.pt"
BEST_NAME = "best.pt"


# ---- RNG state (weights_only-loadable: tensors, ints, floats, tuples only) ---------------------------------------
def rng_state() -> dict:
    py = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": (py[0], tuple(py[1]), py[2]), "torch": torch.get_rng_state(),
             "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached": float(cached)}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    v, internal, gauss = state["python"]
    random.setstate((v, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def forked_rng():
    """Run a block (validation) without moving any RNG the training reads."""
    saved = rng_state()
    try:
        yield
    finally:
        set_rng_state(saved)


def _atomic_torch_save(obj, path: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class _Bar:
    """The train loader with a tqdm bar (rank 0); ``len`` as the loader's, since the official loop needs it."""

    def __init__(self, loader, trainer: "MassegTrainer"):
        self.loader, self.trainer = loader, trainer

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        t = self.trainer
        disable = t.distributed_rank != 0 or not t.show_progress
        with tqdm(total=len(self.loader), desc=f"epoch {int(t.epoch) + 1}/{t.max_epochs}", unit="step",
                  disable=disable, dynamic_ncols=True, leave=False) as bar:
            for batch in self.loader:
                yield batch
                bar.update(1)
                if t.last_losses:
                    bar.set_postfix(loss=f"{t.last_losses['core_loss']:.4f}", refresh=False)


class MassegTrainer(Trainer):
    """``training.trainer.Trainer`` + exact resume, per-step losses, progress bar and J&F validation."""

    def __init__(self, *, masseg: dict | None = None, **kwargs):
        masseg = dict(masseg or {})
        self.run_dir = Path(masseg.get("run_dir") or kwargs["logging"]["log_dir"])
        self.validation_conf = masseg.get("validation")
        self.show_progress = bool(masseg.get("progress", True))
        threads = int(masseg.get("threads") or 0)
        if threads:
            torch.set_num_threads(threads)
        self.last_losses: dict = {}
        self._steps_file = None
        super().__init__(**kwargs)

    # ---- checkpoints: RNG states in, atomic replace -----------------------------------------------------------
    def _rng_side_file(self) -> str:
        return os.path.join(self.checkpoint_conf.save_dir, f"rng_rank{self.distributed_rank}.pt")

    def save_checkpoint(self, epoch, checkpoint_names=None):
        if self.distributed_rank != 0:  # only rank 0 writes the checkpoint; other ranks keep their RNG beside it
            os.makedirs(self.checkpoint_conf.save_dir, exist_ok=True)
            _atomic_torch_save({"epoch": epoch, "rng": self._full_rng_state()}, self._rng_side_file())
        super().save_checkpoint(epoch, checkpoint_names)

    def _model_generators(self) -> dict:
        """numpy Generators held by modules: ``SAM2Train.rng`` draws the simulated prompts (points, boxes,
        correction frames) and is not in the official checkpoint, so without it a resumed run prompts differently."""
        from training.trainer import unwrap_ddp_if_wrapped
        return {name: m.rng for name, m in unwrap_ddp_if_wrapped(self.model).named_modules()
                if isinstance(getattr(m, "rng", None), np.random.Generator)}

    def _full_rng_state(self) -> dict:
        state = rng_state()
        state["modules"] = {name: g.bit_generator.state for name, g in self._model_generators().items()}
        return state

    def _set_full_rng_state(self, state: dict) -> None:
        set_rng_state(state)
        gens = self._model_generators()
        for name, st in state.get("modules", {}).items():
            if name in gens:
                gens[name].bit_generator.state = st

    def _save_checkpoint(self, checkpoint, checkpoint_path):
        checkpoint = dict(checkpoint, masseg_rng=self._full_rng_state())
        _atomic_torch_save(checkpoint, checkpoint_path)

    def _load_resuming_checkpoint(self, ckpt_path: str):
        super()._load_resuming_checkpoint(ckpt_path)
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        state = ckpt.get("masseg_rng")
        if self.distributed_rank != 0:
            side = self._rng_side_file()
            extra = torch.load(side, map_location="cpu", weights_only=True) if os.path.exists(side) else None
            state = extra["rng"] if extra and extra.get("epoch") == ckpt.get("epoch") else None
        if state is not None:
            self._set_full_rng_state(state)
        else:
            logging.warning("checkpoint holds no RNG state for this rank: the resumed run is not bit-identical")
        if self.distributed_rank == 0:
            self._truncate_steps(int(self.steps[Phase.TRAIN]))

    # ---- per-step losses and the progress bar -----------------------------------------------------------------
    @property
    def steps_csv(self) -> Path:
        return self.run_dir / "train_steps.csv"

    def _truncate_steps(self, keep_below: int) -> None:
        """Drop the rows of steps the resumed run will redo (they ran after the last checkpoint)."""
        path = self.steps_csv
        if not path.exists():
            return
        def whole(r):   # a kill -9 can cut the last line short: such a row is a step to redo anyway
            return all(r.get(k) not in (None, "") for k in STEP_COLUMNS) and r["step"].isdigit()

        with open(path, newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if whole(r) and int(r["step"]) < keep_below]
        tmp = path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=STEP_COLUMNS)
            w.writeheader()
            w.writerows(rows)
        os.replace(tmp, path)

    def _log_loss_detailed_and_return_core_loss(self, loss, loss_str, step):
        if self.model.training:
            values = {k: float(v.detach()) for k, v in loss.items()}
            self.last_losses = values
            if self.distributed_rank == 0:
                self._write_step(step, values)
        return super()._log_loss_detailed_and_return_core_loss(loss, loss_str, step)

    def _write_step(self, step: int, values: dict) -> None:
        new = not self.steps_csv.exists()
        with open(self.steps_csv, "a", newline="") as fh:
            w = csv.writer(fh)
            if new:
                w.writerow(STEP_COLUMNS)
            w.writerow([step, int(self.epoch)] + [repr(values.get(k, float("nan"))) for k in STEP_COLUMNS[2:]])

    def train_epoch(self, train_loader):
        return super().train_epoch(_Bar(train_loader, self))

    # ---- validation -------------------------------------------------------------------------------------------
    def is_intermediate_val_epoch(self, epoch):
        """Every ``val_epoch_freq`` epochs counted from 1 (after epochs N, 2N, ...); the last epoch is validated
        by ``run`` itself."""
        return (epoch + 1) % self.val_epoch_freq == 0 and epoch < self.max_epochs - 1

    @property
    def metrics_csv(self) -> Path:
        return self.run_dir / "metrics.csv"

    def _metric_rows(self) -> list[dict]:
        if not self.metrics_csv.exists():
            return []
        with open(self.metrics_csv, newline="") as fh:
            return list(csv.DictReader(fh))

    def run_val(self):
        if not self.validation_conf:
            return
        epoch = int(self.epoch) + 1          # epochs done
        if self.distributed_rank == 0 and not any(int(r["epoch"]) == epoch for r in self._metric_rows()):
            validator = instantiate(self.validation_conf)
            ckpt = os.path.join(self.checkpoint_conf.save_dir, CHECKPOINT_NAME)
            with forked_rng():
                scores = validator(checkpoint=ckpt, out_dir=str(self.run_dir / "val" / f"epoch_{epoch:04d}"),
                                   progress=self.show_progress)
            self._record_validation(epoch, scores, ckpt)
        barrier()

    def _epoch_train_loss(self, epoch: int) -> float:
        if not self.steps_csv.exists():
            return float("nan")
        with open(self.steps_csv, newline="") as fh:
            vals = [float(r["core_loss"]) for r in csv.DictReader(fh) if int(r["epoch"]) == epoch - 1]
        return float(np.mean(vals)) if vals else float("nan")

    def _record_validation(self, epoch: int, scores: dict, ckpt: str) -> None:
        step = int(self.steps[Phase.TRAIN])
        row = {"epoch": epoch, "step": step, "train_loss": self._epoch_train_loss(epoch),
               "J&F": scores["J&F"], "J": scores["J"], "F": scores["F"]}
        rows = [r for r in self._metric_rows() if int(r["epoch"]) != epoch] + [row]
        rows.sort(key=lambda r: int(r["epoch"]))
        tmp = self.metrics_csv.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=METRIC_COLUMNS)
            w.writeheader()
            w.writerows(rows)
        os.replace(tmp, self.metrics_csv)
        for k in ("J&F", "J", "F"):
            self.logger.log(f"Val/{k}", scores[k], step)
        best_file = self.run_dir / "best.json"
        best = json.loads(best_file.read_text()) if best_file.exists() else None
        if best is None or scores["J&F"] > best["J&F"]:
            dst = os.path.join(self.checkpoint_conf.save_dir, BEST_NAME)
            shutil.copyfile(ckpt, dst + ".tmp")
            os.replace(dst + ".tmp", dst)
            best = {"epoch": epoch, "step": step, "J&F": scores["J&F"], "J": scores["J"], "F": scores["F"],
                    "checkpoint": dst}
            tmpb = best_file.with_suffix(".json.tmp")
            tmpb.write_text(json.dumps(best, indent=1) + "\n")
            os.replace(tmpb, best_file)
        tqdm.write(f"validation after epoch {epoch}: J&F {100 * scores['J&F']:.2f}%  J {100 * scores['J']:.2f}%  "
                   f"F {100 * scores['F']:.2f}%  (best {100 * best['J&F']:.2f}% at epoch {best['epoch']})")
        try:
            plot_curves(self.steps_csv, self.metrics_csv, self.run_dir / "curves.png")
        except Exception as exc:  # a plot must never stop training
            logging.warning(f"could not draw curves.png: {exc}")


def plot_curves(steps_csv: Path, metrics_csv: Path, out: Path) -> None:
    """Loss per step (and its epoch mean) beside J&F per validation, in percent."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    if steps_csv.exists():
        with open(steps_csv, newline="") as fh:
            rows = list(csv.DictReader(fh))
        a.plot([int(r["step"]) for r in rows], [float(r["core_loss"]) for r in rows], lw=0.8)
    a.set_xlabel("step")
    a.set_ylabel("training loss")
    a.set_title("loss")
    if metrics_csv.exists():
        with open(metrics_csv, newline="") as fh:
            m = list(csv.DictReader(fh))
        b.plot([int(r["epoch"]) for r in m], [100 * float(r["J&F"]) for r in m], "o-")
    b.set_xlabel("epoch")
    b.set_ylabel("J&F (%)")
    b.set_title("validation J&F")
    fig.tight_layout()
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, out)
