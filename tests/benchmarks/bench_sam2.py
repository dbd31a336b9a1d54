"""SAM2 stage vs the package's official VOS flow: speed and memory (run by `make bench`, not the test suite).

* Speed: the same clip (bmx-trees with its two DAVIS-2017 objects, 854x480, first BENCH_SAM2_FRAMES frames,
  default 24), the same synthetic sam2.1-tiny weights (golden recipe), S=512, CPU fp32, 2 threads. The official
  flow is the package's predictor driven as tools/vos_inference.py drives it: ``init_state`` preloading every
  frame, ``add_new_mask`` per object, ``propagate_in_video`` with ``non_overlap_masks``, one palette PNG per frame.
  Ours is ``models.stage.run_stage`` with ``Sam2Segmenter`` writing every frame's logits into a store (default
  codec). Timed: the video's processing, model building excluded for both. Goal: ours / official <= 1.05.
* Memory: one object over a 50- and a 500-frame video (DAVIS-2016 bmx-trees frames cycled) at S=256. Goal: our
  peak RSS on 500 frames within 1.2x of 50 frames; the official flow's figures for comparison.

Each measurement runs in its own subprocess (clean peak RSS); runs alternate between the two flows and the best
of BENCH_SAM2_REPEATS (default 2) is compared, which damps a shared machine's noise. Stand-alone:
``python -m tests.benchmarks.bench_sam2`` prints the same tables as JSON.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.benchmarks import measure
from tests.benchmarks.measure import SHARED, RssSampler, cpu_seconds, link, peak_rss_mb

GOLDEN_SHA256 = "b146d6bfd72af7eb774633f52e66441ce288207e9c9df6d6e779b5f6528a17a0"
CONFIG_NAME = "configs/sam2.1/sam2.1_hiera_t.yaml"
SPEED_FRAMES = int(os.environ.get("BENCH_SAM2_FRAMES", "24"))
REPEATS = int(os.environ.get("BENCH_SAM2_REPEATS", "2"))
THREADS = int(os.environ.get("BENCH_SAM2_THREADS", "2"))
MEM_FRAMES = (50, 500)


# ---- workers (one measurement per process) -------------------------------------------------------------------
def _official_flow(spec: dict) -> dict:
    """tools/vos_inference.py, joint DAVIS/MOSE mode, as a driver of the package (our own code)."""
    import numpy as np
    import torch
    from PIL import Image
    from sam2.build_sam import build_sam2_video_predictor

    predictor = build_sam2_video_predictor(
        CONFIG_NAME, ckpt_path=spec["weights"], device="cpu", apply_postprocessing=False,
        hydra_overrides_extra=["++model.non_overlap_masks=true", f"++model.image_size={spec['image_size']}"])
    frame_dir = Path(spec["root"]) / "JPEGImages" / spec["video"]
    prompt = Path(spec["root"]) / "Annotations" / spec["video"] / "00000.png"
    out_dir = Path(spec["out"]) / spec["video"]
    out_dir.mkdir(parents=True)
    build_rss = peak_rss_mb()
    start, cpu = time.perf_counter(), cpu_seconds()
    with RssSampler() as rss, torch.inference_mode():
        state = predictor.init_state(video_path=str(frame_dir), async_loading_frames=False)
        with Image.open(prompt) as im:
            palette = im.getpalette()
            labels = np.array(im).astype(np.uint8)
        for oid in [int(i) for i in np.unique(labels) if i > 0]:
            predictor.add_new_mask(inference_state=state, frame_idx=0, obj_id=oid, mask=labels == oid)
        masks = {}
        for f, obj_ids, logits in predictor.propagate_in_video(state):
            masks[f] = {oid: (logits[i] > 0.0).cpu().numpy() for i, oid in enumerate(obj_ids)}
        h, w = state["video_height"], state["video_width"]
        names = sorted(p.stem for p in frame_dir.glob("*.jpg"))
        for f, per_obj in masks.items():
            painted = np.zeros((h, w), np.uint8)
            for oid in sorted(per_obj, reverse=True):
                painted[per_obj[oid].reshape(h, w)] = oid
            im = Image.fromarray(painted)
            im.putpalette(palette)
            im.save(out_dir / f"{names[f]}.png")
    return {"seconds": time.perf_counter() - start, "cpu_seconds": cpu_seconds() - cpu,
            "frames": state["num_frames"], "build_rss_mb": build_rss, "run_peak_rss_mb": rss.peak_mb}


def _stage_flow(spec: dict) -> dict:
    from data import codecs
    from data.dataset import VOSDataset
    from data.store import LogitStore
    from models.sam2 import Sam2Segmenter
    from models.stage import run_stage

    seg = Sam2Segmenter(spec["weights"], config="sam2.1_hiera_t", image_size=spec["image_size"], device="cpu")
    dataset = VOSDataset(spec["root"])
    build_rss = peak_rss_mb()
    start, cpu = time.perf_counter(), cpu_seconds()
    with RssSampler() as rss:
        store = LogitStore.create(Path(spec["out"]) / "store", seg.manifest(), codec=spec.get("codec") or
                                  codecs.DEFAULT_CODEC)
        result = run_stage(dataset, [spec["video"]], store, seg, progress=False, echo=lambda s: None)
    return {"seconds": time.perf_counter() - start, "cpu_seconds": cpu_seconds() - cpu,
            "frames": result.done[0].frames, "build_rss_mb": build_rss, "run_peak_rss_mb": rss.peak_mb,
            "codec": store.codec, "retained_outputs": seg.stats.get("max_retained_outputs")}


def worker(spec: dict) -> dict:
    import torch

    torch.set_num_threads(spec["threads"])
    res = (_official_flow if spec["flow"] == "official" else _stage_flow)(spec)
    res.update(flow=spec["flow"], video=spec["video"], image_size=spec["image_size"], peak_rss_mb=peak_rss_mb())
    return res


def run_worker(spec: dict) -> dict:
    return measure.run_worker("tests.benchmarks.bench_sam2", spec)


# ---- inputs ------------------------------------------------------------------------------------------------------
def prepare(tmp: Path) -> dict:
    """Weights from the golden recipe (sha256-checked) and DAVIS-layout roots of symlinks to the shared clips."""
    golden = SHARED / "golden" / "sam2"
    clips = SHARED / "vos-clips"
    weights = tmp / "synthetic_sam2.1_hiera_t.pt"
    measure.recipe_weights(golden / "make_weights.py", weights, GOLDEN_SHA256)
    src = clips / "davis2016" / "JPEGImages" / "bmx-trees"
    frames = sorted(src.glob("*.jpg"))
    speed_root = tmp / "speed"
    for i in range(SPEED_FRAMES):
        link(speed_root / "JPEGImages" / "bmx-trees" / f"{i:05d}.jpg", frames[i % len(frames)])
    link(speed_root / "Annotations" / "bmx-trees" / "00000.png",
          clips / "davis2017_firstframe" / "Annotations" / "bmx-trees" / "00000.png")
    mem_roots = {}
    for n in MEM_FRAMES:
        root = tmp / f"mem{n}"
        for i in range(n):
            link(root / "JPEGImages" / f"long{n}" / f"{i:05d}.jpg", frames[i % len(frames)])
        link(root / "Annotations" / f"long{n}" / "00000.png",
              clips / "davis2016" / "Annotations" / "bmx-trees" / "00000.png")
        mem_roots[n] = root
    return {"weights": str(weights), "speed_root": str(speed_root), "mem_roots": {n: str(r) for n, r in
                                                                                  mem_roots.items()}}


def bench_speed(ctx: dict) -> dict:
    """Alternating runs (official, ours, ours, official, ...); the best wall and CPU time of each flow count."""
    runs = {"official": [], "stage": []}
    for rep in range(REPEATS):
        for flow in (("official", "stage") if rep % 2 == 0 else ("stage", "official")):
            runs[flow].append(run_worker({"flow": flow, "root": ctx["speed_root"], "video": "bmx-trees",
                                          "weights": ctx["weights"], "image_size": 512, "threads": THREADS}))
    best = {f: min(r["seconds"] for r in rs) for f, rs in runs.items()}
    best_cpu = {f: min(r["cpu_seconds"] for r in rs) for f, rs in runs.items()}
    return {"frames": SPEED_FRAMES, "objects": 2, "image_size": 512, "threads": THREADS,
            "seconds": {f: [round(r["seconds"], 2) for r in rs] for f, rs in runs.items()},
            "cpu_seconds": {f: [round(r["cpu_seconds"], 2) for r in rs] for f, rs in runs.items()},
            "ratio_stage_over_official": best["stage"] / best["official"],
            "cpu_ratio_stage_over_official": best_cpu["stage"] / best_cpu["official"],
            "peak_rss_mb": {f: round(max(r["peak_rss_mb"] for r in rs), 1) for f, rs in runs.items()},
            "run_peak_rss_mb": {f: round(max(r["run_peak_rss_mb"] for r in rs), 1) for f, rs in runs.items()},
            "codec": runs["stage"][0]["codec"], "load_avg": os.getloadavg()}


def bench_memory(ctx: dict) -> dict:
    """Per flow and length: process peak RSS (ru_maxrss, includes building the model) and the peak while
    processing the video (sampled), with their 500/50 ratios."""
    out = {}
    for flow in ("stage", "official"):
        runs = {}
        for n in MEM_FRAMES:
            r = run_worker({"flow": flow, "root": ctx["mem_roots"][n], "video": f"long{n}", "weights": ctx["weights"],
                            "image_size": 256, "threads": THREADS})
            runs[n] = {"peak_rss_mb": round(r["peak_rss_mb"], 1), "run_peak_rss_mb": round(r["run_peak_rss_mb"], 1),
                       "after_build_mb": round(r["build_rss_mb"], 1), "seconds": round(r["seconds"], 1)}
        out[flow] = {"runs": runs,
                     "ratio_500_over_50": runs[500]["peak_rss_mb"] / runs[50]["peak_rss_mb"],
                     "run_peak_ratio_500_over_50": runs[500]["run_peak_rss_mb"] / runs[50]["run_peak_rss_mb"]}
    out["load_avg"] = os.getloadavg()
    return out


# ---- pytest entry points (make bench) ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    if not (SHARED / "golden" / "sam2").is_dir() or not (SHARED / "vos-clips").is_dir():
        pytest.skip(f"shared test material not found at {SHARED}")
    return prepare(tmp_path_factory.mktemp("bench_sam2"))


def test_stage_speed_vs_official_flow(ctx):
    """CPU time must be within 5%; wall time too unless other work held the cores (then it is only reported:
    wall times on a contended 2-core machine vary by more than 5% from run to run)."""
    res = bench_speed(ctx)
    print("\nSAM2 speed:", json.dumps(res, indent=1))
    assert res["cpu_ratio_stage_over_official"] <= 1.05, res
    contended = max(res["load_avg"][:2]) > (os.cpu_count() or 1)
    if contended:
        print(f"machine contended (load average {res['load_avg']}): wall-time ratio "
              f"{res['ratio_stage_over_official']:.3f} reported, not asserted")
    else:
        assert res["ratio_stage_over_official"] <= 1.05, res


def test_stage_memory_flat_on_long_videos(ctx):
    res = bench_memory(ctx)
    print("\nSAM2 memory:", json.dumps(res, indent=1))
    assert res["stage"]["ratio_500_over_50"] <= 1.2, res
    assert res["stage"]["run_peak_ratio_500_over_50"] <= 1.2, res


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "worker":
        print(json.dumps(worker(json.loads(sys.argv[2]))))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            c = prepare(Path(tmp))
            print(json.dumps({"speed": bench_speed(c), "memory": bench_memory(c)}, indent=1))
