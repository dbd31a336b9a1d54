"""Benchmark: one `sweep` of 50 fusion settings against 50 separate `fuse` + `evaluate` runs.

    .venv/bin/python tests/benchmarks/bench_sweep.py [--frames 30] [--subset 4] [--out bench.json]

Data: three synthetic members (tests/ensemble/synthetic.py: signed-distance logits at stride 4 with independent
errors, stored as q8 logit stores like real members) on the shared clips davis2016/libby (854x480) and
pumavos/chair (720x480) at full resolution, ``--frames`` frames each. Settings: soft voting on the 3-member
simplex with step 1/8 (45 settings) plus 5 majority settings = 50.

Baseline: ``--subset`` of the 50 settings (spread over the ranking order: single members, soft mixtures,
majority) each run as ``ensemble.fuse.fuse`` (PNGs written through the submission writer) followed by
``submission.jf.evaluate`` on the written folder; the mean per setting is extrapolated to 50. Both sides run
in this one process (jobs=1, torch single-threaded), so process CPU time is the cost measure; wall time is
reported too (the machine is shared, so wall time is noisier). The sweep's J&F of the timed settings is
checked against the baseline's (they must be identical).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from data.dataset import VOSDataset  # noqa: E402
from ensemble.config import FusionConfig  # noqa: E402
from ensemble.fuse import fuse  # noqa: E402
from ensemble.grid import make_settings, simplex_grid  # noqa: E402
from ensemble.sweep import sweep  # noqa: E402
from submission.jf.evaluate import evaluate  # noqa: E402
from tests.benchmarks.measure import SHARED, emit, skip_without_clips, timed  # noqa: E402
from tests.ensemble import synthetic  # noqa: E402


def settings_50(cfg: FusionConfig):
    soft = make_settings(cfg, ["soft"], simplex_grid(3, 0.125))
    third = 1 / 3
    majority = make_settings(cfg, ["majority"], [(third, third, third), (0.4, 0.3, 0.3), (0.3, 0.4, 0.3),
                                                 (0.3, 0.3, 0.4), (0.5, 0.25, 0.25)])
    out = soft + majority
    assert len(out) == 50, len(out)
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--subset", type=int, default=4, help="baseline settings actually run (then extrapolated)")
    ap.add_argument("--factor", type=int, default=1, help="downscale the clips by this factor")
    ap.add_argument("--out", default=None, help="write the result as JSON here")
    ap.add_argument("--keep", default=None, help="work folder to keep (default: a temp folder, removed)")
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(1)

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    try:
        videos = synthetic.clip_videos(SHARED / "vos-clips", args.frames, args.factor)
        _, build_wall, _ = timed(lambda: synthetic.build_members(work, videos))
        stores = {m: work / "stores" / m for m in synthetic.MEMBERS}
        cfg = FusionConfig.from_dict({"members": [{"store": str(p), "name": n} for n, p in stores.items()]})
        ds = VOSDataset(work / "data")
        settings = settings_50(cfg)

        result, sweep_wall, sweep_cpu = timed(lambda: sweep(cfg, settings, ds, protocol="davis"))

        picks = sorted({round(i * (len(settings) - 1) / max(1, args.subset - 1)) for i in range(args.subset)})
        base = []
        for i in picks:
            run = work / f"run{i}"

            def one():
                fuse(settings[i].config(cfg), run, dataset=ds)
                return evaluate(work / "data" / "Annotations", run / "labels", protocol="davis", n_jobs=1)

            ref, wall, cpu = timed(one)
            sweep_score = float(result.table.set_index("setting").loc[i, "score"])
            base.append({"setting": i, "label": settings[i].describe(cfg.names), "wall_s": wall, "cpu_s": cpu,
                         "score_fuse_evaluate": ref.headline("davis"), "score_sweep": sweep_score,
                         "identical": abs(ref.headline("davis") - sweep_score) < 1e-12})
            shutil.rmtree(run)
        one_wall = sum(b["wall_s"] for b in base) / len(base)
        one_cpu = sum(b["cpu_s"] for b in base) / len(base)
        frames = sum(v.shape[0] for v in videos.values())
        out = {
            "videos": {k: list(v.shape) for k, v in videos.items()}, "frames": frames, "settings": len(settings),
            "members": len(stores), "store_build_wall_s": build_wall,
            "sweep": {"wall_s": sweep_wall, "cpu_s": sweep_cpu},
            "one_fuse_evaluate_pass": {"wall_s": one_wall, "cpu_s": one_cpu, "timed_settings": len(base)},
            "ratio_sweep_vs_one_pass": {"cpu": sweep_cpu / one_cpu, "wall": sweep_wall / one_wall},
            "fifty_separate_runs_extrapolated": {"wall_s": 50 * one_wall, "cpu_s": 50 * one_cpu},
            "speedup_vs_fifty_runs": {"cpu": 50 * one_cpu / sweep_cpu, "wall": 50 * one_wall / sweep_wall},
            "baseline_runs": base, "best": result.table.iloc[0]["label"],
        }
        emit(out, args.out)
        print(f"\nsweep of {len(settings)} settings: {sweep_cpu:.1f} s CPU ({sweep_wall:.1f} s wall); one fuse+evaluate "
              f"pass: {one_cpu:.1f} s CPU ({one_wall:.1f} s wall, mean of {len(base)}); ratio "
              f"{out['ratio_sweep_vs_one_pass']['cpu']:.2f}x CPU ({out['ratio_sweep_vs_one_pass']['wall']:.2f}x wall); "
              f"vs 50 separate runs: {out['speedup_vs_fifty_runs']['cpu']:.1f}x faster (CPU)")
        if not all(b["identical"] for b in base):
            raise SystemExit("sweep and fuse+evaluate disagree on a timed setting")
        return out
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()


def test_sweep_of_50_settings_costs_at_most_5_passes():
    """`make bench` entry: the goal of the ensemble issue (50 settings <= 5x one fuse+evaluate pass)."""
    skip_without_clips()
    out = main([])
    assert out["ratio_sweep_vs_one_pass"]["cpu"] <= 5.0
