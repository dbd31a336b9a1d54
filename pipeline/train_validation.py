"""J&F validation of a training checkpoint, called by the trainer every N epochs (``masseg.validation`` in the
hydra config names :func:`validate`).

It is the pipeline's own inference path, not a training-side approximation: the SAM2 stage (``models.stage`` with
``models.sam2.Sam2Segmenter``, exactly as `masseg infer` runs a member) writes a logit store for the local
validation split, the ensemble turns the single member into labels as `masseg fuse` does, and the J&F evaluator
scores them (DAVIS protocol). It lives in ``pipeline`` because it joins the model, ensemble and submission layers.
"""
from __future__ import annotations

import contextlib
import shutil
from pathlib import Path


@contextlib.contextmanager
def _sam2_hydra():
    """The trainer runs with hydra pointed at the run's config folder; building the inference predictor needs the
    sam2 package's config module. Swap it in for the duration, then put the trainer's back."""
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.initialize import get_gh_backup, restore_gh_from_backup

    backup = get_gh_backup()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module("sam2", version_base="1.2"):
            yield
    finally:
        restore_gh_from_backup(backup)


def validate(*, checkpoint: str, out_dir: str, root: str, split: str | None, config: str, image_size: int,
             mem_scale: float, mem_bias: float, device: str, progress: bool | None = None) -> dict:
    """Score ``checkpoint`` on the split; returns fractions {"J&F", "J", "F"} and writes ``out_dir/eval/``."""
    from data.dataset import VOSDataset
    from data.store import LogitStore
    from ensemble.config import config_from_stores
    from ensemble.fuse import fuse
    from models.sam2 import Sam2Segmenter
    from models.stage import run_stage
    from submission.jf import evaluate
    from submission.writer import LABELS_SUBDIR

    out = Path(out_dir)
    shutil.rmtree(out, ignore_errors=True)   # a validation killed half-way starts over
    dataset = VOSDataset(root, split)
    with _sam2_hydra():
        segmenter = Sam2Segmenter(checkpoint, config=config, image_size=image_size, mem_scale=mem_scale,
                                  mem_bias=mem_bias, device=device, objects_from=dataset.objects_from)
    store_dir = out / "store"
    store = LogitStore.create(store_dir, segmenter.manifest())
    run_stage(dataset, dataset.video_names, store, segmenter, progress=progress, echo=lambda line: None)
    fuse(config_from_stores([store_dir]), out, dataset)
    result = evaluate(dataset.ann_root, out / LABELS_SUBDIR, videos=dataset.video_names, protocol="davis", n_jobs=1)
    result.write(out / "eval")
    shutil.rmtree(store_dir, ignore_errors=True)   # the logits are large and the labels are kept
    g = result.global_["davis"]
    return {"J&F": float(g["J&F-Mean"]), "J": float(g["J-Mean"]), "F": float(g["F-Mean"])}
