"""SAM2Long member: full golden comparison, cost vs (pathways x the SAM2 stage), memory on long videos
(run by `make bench`, not the test suite).

* Golden (../shared/golden/sam2long, official SAM2Long code, CPU fp32, S=512, sam2long-golden-v1 weights): the
  whole 30-frame clips through ``run_stage`` into an f32 store: default/libby, default/bmx-trees (2 objects),
  p1/libby. Every discrete field (final path, pathway tree, uncertain flags, memory and pointer frames) must be
  equal, numbers within the golden's tolerances, labels (official combination of the stored logits) within its
  label rule. p1 stores no logit values (hashes only), so there only the tree and scores are compared.
* Cost: the same clip (libby, 30 frames, 1 object, S=512, 2 threads): SAM2Long (P=3) stage time over P x the SAM2
  stage time (same weights). Goal <= 1.1 (CPU time; wall time reported, asserted only on an idle machine).
* Memory: one object over a 50- and a 500-frame video (bmx-trees frames cycled) at S=128, P=3: peak RSS while
  processing, 500/50 <= 1.2. Because at S=128 a frame's waiting logits are small next to the model, the run also
  reports what went to disk (``spilled_mib``: what would otherwise sit in RAM) and the most memory payloads held
  (``max_payloads``: bounded by the live pathways' memory frames, <= P x 16 + 1 whatever the length).

Each measurement runs in its own subprocess (clean peak RSS). Stand-alone: ``python -m tests.benchmarks.bench_sam2long``.
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.benchmarks import measure
from tests.benchmarks.measure import SHARED, RssSampler, cpu_seconds, link, peak_rss_mb

GOLDEN = SHARED / "golden" / "sam2long"
RECIPE_SHA256 = "2d2f845e96854cc472af321c9435b5510229f4b9fbe4ff60174d99b3b8ded6c4"
THREADS = int(os.environ.get("BENCH_SAM2LONG_THREADS", "2"))
MEM_FRAMES = (50, 500)
GOLDEN_RUNS = [("default", "libby", 3), ("default", "bmx-trees", 3), ("p1", "libby", 1)]


# ---- workers (one measurement per process) -------------------------------------------------------------------
def _flow(spec: dict) -> dict:
    import numpy as np

    from data.dataset import VOSDataset
    from data.store import LogitStore
    from models.sam2 import Sam2Segmenter
    from models.sam2long import Sam2LongSegmenter, tree_arrays
    from models.stage import run_stage

    if spec["flow"] == "sam2long":
        seg = Sam2LongSegmenter(spec["weights"], config="sam2.1_hiera_t", image_size=spec["image_size"],
                                device="cpu", num_pathway=spec["num_pathway"], trace=bool(spec.get("dump")))
    else:
        seg = Sam2Segmenter(spec["weights"], config="sam2.1_hiera_t", image_size=spec["image_size"], device="cpu")
    dataset = VOSDataset(spec["root"])
    build_rss = peak_rss_mb()
    start, cpu = time.perf_counter(), cpu_seconds()
    with RssSampler() as rss:
        store = LogitStore.create(Path(spec["out"]) / "store", seg.manifest(), codec="f32")
        result = run_stage(dataset, [spec["video"]], store, seg, progress=False, echo=lambda s: None)
    res = {"seconds": time.perf_counter() - start, "cpu_seconds": cpu_seconds() - cpu,
           "frames": result.done[0].frames, "build_rss_mb": build_rss, "run_peak_rss_mb": rss.peak_mb,
           "stats": seg.stats, "temp_left": sorted(os.listdir(store.temp_dir()))}
    if spec.get("dump"):
        with store.reader(spec["video"]) as r:
            frames = [r.read(i) for i in range(len(r))]
        ids = frames[0].obj_ids
        arrays = tree_arrays(seg.trace, ids, len(frames), spec["num_pathway"])
        np.savez(spec["dump"], lowres=np.stack([f.logits for f in frames]),
                 scores=np.stack([f.scores for f in frames]), obj_ids=np.array(ids), **arrays)
    return res


def worker(spec: dict) -> dict:
    import torch

    torch.set_num_threads(spec["threads"])
    res = _flow(spec)
    res.update(flow=spec["flow"], video=spec["video"], image_size=spec["image_size"], peak_rss_mb=peak_rss_mb())
    return res


def run_worker(spec: dict) -> dict:
    return measure.run_worker("tests.benchmarks.bench_sam2long", spec)


# ---- inputs ------------------------------------------------------------------------------------------------------
def prepare(tmp: Path) -> dict:
    """Weights from the golden recipe (its sha256 checked) and DAVIS-layout roots of symlinks to the shared clips."""
    clips = SHARED / "vos-clips"
    weights = tmp / "synthetic_sam2long_v1.pt"
    measure.recipe_weights(GOLDEN / "make_weights.py", weights, RECIPE_SHA256)
    root = tmp / "golden"
    for video in ("libby", "bmx-trees"):
        for i in range(30):
            link(root / "JPEGImages" / video / f"{i:05d}.jpg", clips / "davis2016" / "JPEGImages" / video / f"{i:05d}.jpg")
    link(root / "Annotations" / "libby" / "00000.png", clips / "davis2016" / "Annotations" / "libby" / "00000.png")
    link(root / "Annotations" / "bmx-trees" / "00000.png",
          clips / "davis2017_firstframe" / "Annotations" / "bmx-trees" / "00000.png")
    src = sorted((clips / "davis2016" / "JPEGImages" / "bmx-trees").glob("*.jpg"))
    mem_roots = {}
    for n in MEM_FRAMES:
        r = tmp / f"mem{n}"
        for i in range(n):
            link(r / "JPEGImages" / f"long{n}" / f"{i:05d}.jpg", src[i % len(src)])
        link(r / "Annotations" / f"long{n}" / "00000.png", clips / "davis2016" / "Annotations" / "bmx-trees" / "00000.png")
        mem_roots[n] = str(r)
    return {"weights": str(weights), "root": str(root), "mem_roots": mem_roots, "tmp": str(tmp)}


def _golden_module():
    spec = importlib.util.spec_from_file_location("sam2long_golden", GOLDEN / "golden.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---- measurements ------------------------------------------------------------------------------------------------
def bench_golden(ctx: dict) -> dict:
    """Run each golden setting through the stage and compare everything the fixture holds."""
    import numpy as np

    golden = _golden_module()
    out = {}
    for setting, video, p in GOLDEN_RUNS:
        dump = Path(ctx["tmp"]) / f"{setting}_{video}.npz"
        r = run_worker({"flow": "sam2long", "root": ctx["root"], "video": video, "weights": ctx["weights"],
                        "image_size": 512, "threads": THREADS, "num_pathway": p, "dump": str(dump)})
        mine = dict(np.load(dump))
        g = golden.load(GOLDEN / "outputs" / setting / f"{video}.npz")
        tree = {k: mine[k] for k in golden.TREE_KEYS}
        has_values = "lowres_logits" in g
        print(f"\n== {setting}/{video} (P={p}): {r['seconds']:.1f} s, {r['cpu_seconds']:.1f} CPU s")
        bitwise = has_values and golden.compare(g, lowres=mine["lowres"], mode="bitwise")
        ok = golden.compare(g, lowres=mine["lowres"] if has_values else None, object_scores=mine["scores"],
                            sel_slot=mine["sel_slot"], tree=tree, mode="tolerance")
        ok_f1 = float(np.abs(mine["frame1_cand_iou"] - g["frame1_cand_iou"]).max()) <= golden.TOL["iou_atol"]
        res = {"seconds": round(r["seconds"], 1), "cpu_seconds": round(r["cpu_seconds"], 1), "pass": bool(ok and ok_f1),
               "lowres_bitwise": bool(bitwise), "temp_left": r["temp_left"]}
        if has_values:
            H, W = (int(v) for v in g["video_hw"])
            labels = golden.labels_from_lowres(mine["lowres"], [int(i) for i in g["obj_ids"]], H, W)
            res["labels_pass"] = bool(golden.compare(g, labels=labels, mode="tolerance"))
            res["lowres_max_abs_diff"] = float(np.abs(mine["lowres"] - g["lowres_logits"]).max())
        res["score_max_abs_diff"] = float(np.abs(mine["scores"] - g["object_score_logits"]).max())
        out[f"{setting}/{video}"] = res
    return out


def bench_cost(ctx: dict, sam2long: dict | None = None) -> dict:
    """SAM2Long (P=3) vs 3 x the SAM2 stage on libby (30 frames, S=512): best of 2 runs each, alternating."""
    runs = {"sam2long": [], "sam2": []}
    for rep in range(2):
        for flow in (("sam2long", "sam2") if rep == 0 else ("sam2", "sam2long")):
            runs[flow].append(run_worker({"flow": flow, "root": ctx["root"], "video": "libby",
                                          "weights": ctx["weights"], "image_size": 512, "threads": THREADS,
                                          "num_pathway": 3}))
    best = {f: min(r["seconds"] for r in rs) for f, rs in runs.items()}
    best_cpu = {f: min(r["cpu_seconds"] for r in rs) for f, rs in runs.items()}
    return {"frames": 30, "image_size": 512, "num_pathway": 3, "threads": THREADS,
            "seconds": {f: [round(r["seconds"], 1) for r in rs] for f, rs in runs.items()},
            "cpu_seconds": {f: [round(r["cpu_seconds"], 1) for r in rs] for f, rs in runs.items()},
            "ratio_over_p_x_sam2": best["sam2long"] / (3 * best["sam2"]),
            "cpu_ratio_over_p_x_sam2": best_cpu["sam2long"] / (3 * best_cpu["sam2"]),
            "ratio_over_sam2": best["sam2long"] / best["sam2"],
            "load_avg": os.getloadavg()}


def bench_memory(ctx: dict) -> dict:
    runs = {}
    for n in MEM_FRAMES:
        r = run_worker({"flow": "sam2long", "root": ctx["mem_roots"][n], "video": f"long{n}",
                        "weights": ctx["weights"], "image_size": 128, "threads": THREADS, "num_pathway": 3})
        runs[n] = {"peak_rss_mb": round(r["peak_rss_mb"], 1), "run_peak_rss_mb": round(r["run_peak_rss_mb"], 1),
                   "after_build_mb": round(r["build_rss_mb"], 1), "seconds": round(r["seconds"], 1),
                   "max_payloads": r["stats"]["max_payloads"], "spilled_mib": r["stats"]["spilled_mib"],
                   "temp_left": r["temp_left"]}
    return {"runs": runs, "ratio_500_over_50": runs[500]["peak_rss_mb"] / runs[50]["peak_rss_mb"],
            "run_peak_ratio_500_over_50": runs[500]["run_peak_rss_mb"] / runs[50]["run_peak_rss_mb"],
            "load_avg": os.getloadavg()}


# ---- pytest entry points (make bench) ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    if not GOLDEN.is_dir() or not (SHARED / "golden" / "sam2").is_dir() or not (SHARED / "vos-clips").is_dir():
        pytest.skip(f"shared test material not found at {SHARED}")
    return prepare(tmp_path_factory.mktemp("bench_sam2long"))


def test_golden_full(ctx):
    res = bench_golden(ctx)
    print("\nSAM2Long golden:", json.dumps(res, indent=1))
    assert all(r["pass"] and r.get("labels_pass", True) and not r["temp_left"] for r in res.values()), res


def test_cost_vs_pathways_x_sam2(ctx):
    res = bench_cost(ctx)
    print("\nSAM2Long cost:", json.dumps(res, indent=1))
    assert res["cpu_ratio_over_p_x_sam2"] <= 1.1, res
    if max(res["load_avg"][:2]) <= (os.cpu_count() or 1):
        assert res["ratio_over_p_x_sam2"] <= 1.1, res


def test_memory_flat_on_long_videos(ctx):
    res = bench_memory(ctx)
    print("\nSAM2Long memory:", json.dumps(res, indent=1))
    assert res["ratio_500_over_50"] <= 1.2 and res["run_peak_ratio_500_over_50"] <= 1.2, res
    # P pathways x (15 valid frames + the previous one), plus the frame s+1 slot
    assert res["runs"][500]["max_payloads"] <= 3 * 16 + 1, res
    assert not res["runs"][500]["temp_left"], res


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "worker":
        print(json.dumps(worker(json.loads(sys.argv[2]))))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            c = prepare(Path(tmp))
            print(json.dumps({"golden": bench_golden(c), "cost": bench_cost(c), "memory": bench_memory(c)},
                             indent=1))
