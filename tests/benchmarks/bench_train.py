"""`masseg train` against the official ``training/train.py`` (run by `make bench`, not the test suite).

* Speed: the shrunk MOSE fine-tune config of the equality test (sam2.1-tiny recipe weights, 256 px, 3 frames,
  2 objects, batch 1, CPU fp32) for BENCH_TRAIN_STEPS steps (default 6), run by `masseg train` and by the official
  ``train.py`` (tests/models/sam2/finetune/official_train.py), alternating, best of BENCH_TRAIN_REPEATS (default 2).
  Steps/s comes from the trainer's own per-step "Batch Time" (data wait + forward + backward + optimizer step, our
  per-step CSV and progress bar included), first step excluded. Goal: official steps/s / ours <= 1.05.
* Data loader: the training loader of the same run (the official TorchTrainMixedDataset with our MOSE-root
  dataset) with 2 workers, alone, after its first batch. Goal: samples/s >= 3x what the trainer consumes.
* Learning works (BENCH_TRAIN_LEARN_STEPS, default 240; 0 skips it): from the recipe weights, `masseg train`
  overfits DAVIS-2016 libby (frames 0-19, 256 px, lr 1e-4 / encoder 5e-5, the official augmentation); training
  loss per epoch and J&F on libby (the training clip) before training and after every epoch, J&F on bmx-trees
  (not trained on) for information. Goal: last-epoch loss below the first epoch's, J&F on libby above its start.

Stand-alone: ``python -m tests.benchmarks.bench_train`` prints the figures as JSON.
"""
from __future__ import annotations

import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
STEPS = int(os.environ.get("BENCH_TRAIN_STEPS", "6"))
REPEATS = int(os.environ.get("BENCH_TRAIN_REPEATS", "2"))
LEARN_STEPS = int(os.environ.get("BENCH_TRAIN_LEARN_STEPS", "240"))
LEARN_EPOCHS = int(os.environ.get("BENCH_TRAIN_LEARN_EPOCHS", "6"))
LEARN_FRAMES = 20


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _batch_times(run_dir: Path) -> list[float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray
    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"tensors": 0})
    acc.Reload()
    evs = sorted(acc.Tensors("Step_Stats/train/Batch Time"), key=lambda e: e.step)
    return [float(make_ndarray(e.tensor_proto)) for e in evs]


def _timed(cmd: list[str], env: dict, cwd: Path) -> tuple[float, float]:
    cpu0, t0 = _children_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return time.perf_counter() - t0, _children_cpu() - cpu0


def _weights(tmp: Path) -> Path:
    out = tmp / "w.pt"
    subprocess.run([sys.executable, str(SHARED / "golden" / "sam2" / "make_weights.py"), "--out", str(out)],
                   check=True, capture_output=True)
    return out


def speed_and_loader(tmp: Path) -> dict:
    from tests.models.sam2.finetune.conftest import child_env, make_train_root, masseg_cmd, tiny_toml
    from tests.models.sam2.finetune.test_equality import HERE, official_yaml

    weights = _weights(tmp)
    root = make_train_root(SHARED / "vos-clips", tmp / "root")
    env = child_env()
    res = {"steps": STEPS, "repeats": REPEATS, "ours": [], "official": []}
    for i in range(REPEATS):
        run = tmp / f"ours{i}"
        cfg = tiny_toml(tmp / f"ours{i}.toml", run, weights, root, epochs=1, multiplier=STEPS)
        wall, cpu = _timed(masseg_cmd("train", str(cfg)), env, REPO)
        bt = _batch_times(run)[1:]
        res["ours"].append({"steps_per_s": len(bt) / sum(bt), "wall_s": wall, "cpu_s": cpu})
        d = tmp / f"official{i}"
        d.mkdir()
        official_yaml(d / "official.yaml", d / "run", weights, root, epochs=1, multiplier=STEPS)
        wall, cpu = _timed([sys.executable, str(HERE / "official_train.py"), str(d), "official"], env, d)
        bt = _batch_times(d / "run")[1:]
        res["official"].append({"steps_per_s": len(bt) / sum(bt), "wall_s": wall, "cpu_s": cpu})
    ours = max(r["steps_per_s"] for r in res["ours"])
    official = max(r["steps_per_s"] for r in res["official"])
    res["ratio_official_over_ours"] = official / ours
    print(json.dumps(res, indent=1), flush=True)

    # the loader alone, 2 workers, in a fresh process
    probe = tmp / "loader.py"
    probe.write_text(LOADER_PROBE)
    out = subprocess.run([sys.executable, str(probe), str(tmp / "ours0" / "hydra" / "train.yaml"), "2", "24"],
                         env=env, cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stderr[-3000:]
    loader = json.loads(out.stdout.strip().splitlines()[-1])
    res["loader"] = loader
    res["loader_ratio"] = loader["samples_per_s"] / ours   # batch size 1: a step consumes one sample
    return res


LOADER_PROBE = r'''
import json, socket, sys, time
import torch.distributed as dist
with socket.socket() as s:          # the official loader uses a DistributedSampler: a 1-process group
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
from omegaconf import OmegaConf
from hydra.utils import instantiate
from models.sam2.finetune.launch import _register_resolvers
_register_resolvers()
cfg = OmegaConf.load(sys.argv[1])
cfg.scratch.num_train_workers = int(sys.argv[2])
for d in cfg.trainer.data.train.datasets[0].dataset.datasets:
    d.multiplier = int(sys.argv[3])
data = instantiate(cfg.trainer.data.train, _convert_="all")
loader = data.get_loader(epoch=0)
t0 = time.perf_counter(); n = 0; first = None
for batch in loader:
    n += 1
    if first is None:
        first = time.perf_counter()
t1 = time.perf_counter()
print(json.dumps({"workers": int(sys.argv[2]), "samples": n, "first_batch_s": first - t0,
                  "samples_per_s": (n - 1) / (t1 - first)}))
'''


def learning(tmp: Path) -> dict:
    """Overfit one real clip from the recipe weights; J&F before training comes from the validator itself."""
    from pipeline.train_validation import validate
    from tests.models.sam2.finetune.conftest import child_env, masseg_cmd, tiny_toml

    clips = SHARED / "vos-clips" / "davis2016"
    root = tmp / "learn_root"
    for video in ("libby", "bmx-trees"):
        for sub, ext in (("JPEGImages", "jpg"), ("Annotations", "png")):
            (root / sub / video).mkdir(parents=True, exist_ok=True)
            for i in range(LEARN_FRAMES):
                (root / sub / video / f"{i:05d}.{ext}").symlink_to(clips / sub / video / f"{i:05d}.{ext}")
    (root / "train.txt").write_text("libby\n")
    (root / "val.txt").write_text("libby\nbmx-trees\n")
    weights = _weights(tmp)
    per_epoch = max(1, LEARN_STEPS // LEARN_EPOCHS)
    run = tmp / "learn_run"
    cfg = tiny_toml(tmp / "learn.toml", run, weights, root, root, epochs=LEARN_EPOCHS, val_every=1,
                    multiplier=per_epoch, extra="lr = 1.0e-4\nencoder_lr = 5.0e-5\nthreads = 2")
    cfg.write_text(cfg.read_text().replace("max_objects = 2", "max_objects = 1"))

    def per_video(eval_dir: Path) -> dict:
        with open(eval_dir / "per_video.csv", newline="") as fh:
            return {r["video"]: float(r["JF_davis"]) for r in csv.DictReader(fh)}

    start = validate(checkpoint=str(weights), out_dir=str(tmp / "val0"), root=str(root), split="val",
                     config="sam2.1_hiera_t", image_size=256, mem_scale=20.0, mem_bias=-10.0, device="cpu",
                     progress=False)
    curve = [{"epoch": 0, "step": 0, "train_loss": None, **per_video(tmp / "val0" / "eval")}]
    wall, cpu = _timed(masseg_cmd("train", str(cfg)), child_env(), REPO)
    with open(run / "metrics.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            e = int(r["epoch"])
            curve.append({"epoch": e, "step": int(r["step"]), "train_loss": float(r["train_loss"]),
                          **per_video(run / "val" / f"epoch_{e:04d}" / "eval")})
    return {"steps": per_epoch * LEARN_EPOCHS, "epochs": LEARN_EPOCHS, "start_J&F_both": start["J&F"],
            "curve": curve, "wall_s": wall, "cpu_s": cpu, "run": str(run)}


def _have_shared() -> bool:
    return (SHARED / "golden" / "sam2" / "make_weights.py").is_file() and (SHARED / "vos-clips").is_dir()


@pytest.mark.skipif(not _have_shared(), reason="needs ../shared (golden weight recipe, vos-clips)")
def test_train_speed_and_loader(tmp_path):
    res = speed_and_loader(tmp_path)
    print("\n" + json.dumps(res, indent=1))
    print(f"masseg train {max(r['steps_per_s'] for r in res['ours']):.3f} steps/s vs official train.py "
          f"{max(r['steps_per_s'] for r in res['official']):.3f} steps/s: ratio {res['ratio_official_over_ours']:.3f}"
          f" (goal <= 1.05); loader (2 workers) {res['loader']['samples_per_s']:.2f} samples/s = "
          f"{res['loader_ratio']:.1f}x the trainer's consumption (goal >= 3)")
    assert res["ratio_official_over_ours"] <= 1.05
    assert res["loader_ratio"] >= 3


@pytest.mark.skipif(not _have_shared(), reason="needs ../shared (golden weight recipe, vos-clips)")
@pytest.mark.skipif(LEARN_STEPS <= 0, reason="BENCH_TRAIN_LEARN_STEPS=0")
def test_learning_works(tmp_path):
    res = learning(tmp_path)
    print("\n" + json.dumps(res, indent=1))
    for c in res["curve"]:
        loss = "      -" if c["train_loss"] is None else f"{c['train_loss']:7.3f}"
        print(f"epoch {c['epoch']:2d} step {c['step']:4d} loss {loss}  J&F libby {100 * c['libby']:6.2f}%  "
              f"bmx-trees {100 * c['bmx-trees']:6.2f}%")
    curve = res["curve"]
    assert curve[-1]["train_loss"] < curve[1]["train_loss"]
    assert curve[-1]["libby"] > curve[0]["libby"]


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as d:
        out = {"speed": speed_and_loader(Path(d) / "s")} if (Path(d) / "s").mkdir() is None else {}
        if LEARN_STEPS > 0:
            (Path(d) / "l").mkdir()
            out["learning"] = learning(Path(d) / "l")
        print(json.dumps(out, indent=1))
