"""Proof: `masseg train` is the official trainer. With the shared sam2.1-tiny weight recipe, a fixed seed and the
MOSE fine-tune config shrunk to CPU size (image 256, 3 frames, 2 objects, batch 1, 3 steps, augmentation seeded
by the trainer seed), `masseg train` and the official ``training/train.py`` run on the same data give the same
per-step loss terms and the same final weights (max relative difference <= 1e-5)."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from .conftest import EPOCHS, SEED, child_env

HERE = Path(__file__).resolve().parent
TERMS = ("loss_mask", "loss_dice", "loss_iou", "loss_class")
TOL = 1e-5


def official_yaml(path: Path, run_dir: Path, weights: Path, root: Path, epochs: int = EPOCHS,
                  multiplier: int = 1) -> Path:
    """The packaged MOSE fine-tune YAML with only what CPU size needs changed, written independently of
    models.sam2.finetune.hydra_config: tiny trunk/neck in place of b+, 256 px, 3 frames, 2 objects, 0 workers,
    CPU (gloo, no AMP, no pinned memory), scalars logged every step."""
    import sam2
    pkg = Path(sam2.__path__[0]) / "configs"
    cfg = OmegaConf.load(pkg / "sam2.1_training" / "sam2.1_hiera_b+_MOSE_finetune.yaml")
    tiny = OmegaConf.load(pkg / "sam2.1" / "sam2.1_hiera_t.yaml").model
    s = cfg.scratch
    s.resolution, s.train_batch_size, s.num_train_workers, s.num_frames, s.max_num_objects = 256, 1, 0, 3, 2
    s.num_epochs = epochs
    cfg.dataset.img_folder = str(root / "JPEGImages")
    cfg.dataset.gt_folder = str(root / "Annotations")
    cfg.dataset.file_list_txt = str(root / "train.txt")
    cfg.dataset.multiplier = multiplier
    t = cfg.trainer
    t.accelerator = "cpu"
    t.seed_value = SEED
    trunk = t.model.image_encoder.trunk
    for k in ("embed_dim", "num_heads", "stages", "global_att_blocks", "window_pos_embed_bkg_spatial_size"):
        trunk[k] = tiny.image_encoder.trunk[k]
    t.model.image_encoder.neck.backbone_channel_list = tiny.image_encoder.neck.backbone_channel_list
    t.data.train.pin_memory = False
    t.optim.amp.enabled = False
    t.distributed.backend = "gloo"
    t.logging.log_freq = 1
    t.logging.log_scalar_frequency = 1
    t.checkpoint.model_weight_initializer.state_dict.checkpoint_path = str(weights)
    cfg.launcher.gpus_per_node = 1
    cfg.launcher.experiment_log_dir = str(run_dir)
    path.write_text("# @package _global_\n" + OmegaConf.to_yaml(cfg))
    return path


def tb_losses(run_dir: Path) -> dict[int, dict[str, float]]:
    """Per-step loss terms the official trainer logged to TensorBoard."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray
    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"tensors": 0})
    acc.Reload()
    out: dict[int, dict[str, float]] = {}
    base = "Step_Losses/Losses/train_all_loss"
    for term in TERMS + ("core_loss",):
        tag = base if term == "core_loss" else f"{base}/{term}"
        for ev in acc.Tensors(tag):
            out.setdefault(ev.step, {})[term] = float(make_ndarray(ev.tensor_proto))
    return out


def max_rel_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    worst = 0.0
    for k in a:
        x, y = a[k].double(), b[k].double()
        scale = y.abs().max().item()
        worst = max(worst, (x - y).abs().max().item() / scale if scale > 0 else (x - y).abs().max().item())
    return worst


@pytest.fixture(scope="module")
def official_run(golden_weights, train_root, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("official_run")
    official_yaml(d / "official.yaml", d / "run", golden_weights, train_root)
    proc = subprocess.run([sys.executable, str(HERE / "official_train.py"), str(d), "official"], env=child_env(),
                          capture_output=True, text=True, timeout=600, cwd=d)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return d / "run"


def test_same_losses_and_weights_as_official_train_py(reference_run, official_run, golden_weights):
    ours_tb = tb_losses(reference_run)
    ref = tb_losses(official_run)
    assert sorted(ref) == list(range(EPOCHS)), ref.keys()
    with open(reference_run / "train_steps.csv", newline="") as fh:
        ours_csv = {int(r["step"]): {k: float(r[k]) for k in TERMS + ("core_loss",)} for r in csv.DictReader(fh)}
    worst_loss = 0.0
    for step, terms in ref.items():
        for k, v in terms.items():
            for ours in (ours_tb[step][k], ours_csv[step][k]):
                worst_loss = max(worst_loss, abs(ours - v) / max(abs(v), 1e-12))
    a = torch.load(reference_run / "checkpoints" / "checkpoint.pt", map_location="cpu", weights_only=True)
    b = torch.load(official_run / "checkpoints" / "checkpoint.pt", map_location="cpu", weights_only=True)
    init = torch.load(golden_weights, map_location="cpu", weights_only=True)["model"]
    worst_w = max_rel_diff(a["model"], b["model"])
    print(f"\nequality with official train.py: loss terms max rel diff {worst_loss:.3g}, "
          f"final weights max rel diff {worst_w:.3g} ({len(b['model'])} tensors, {EPOCHS} steps)")
    assert worst_loss <= TOL and worst_w <= TOL
    assert a["steps"] == b["steps"] and a["epoch"] == b["epoch"] == EPOCHS
    # the comparison is not vacuous: training moved the weights and the losses are real numbers
    assert max_rel_diff(b["model"], init) > 1e-4
    assert all(v > 0 for t in ref.values() for v in t.values())
