"""Benchmark: what looking at a run costs, side by side with what the run itself costs.

    .venv/bin/python tests/benchmarks/bench_report.py [--frames 30] [--out bench.json]

Data: three synthetic members (tests/ensemble/synthetic.py: q8 logit stores with independent errors) on the
shared clips davis2016/libby (854x480) and pumavos/chair (720x480), ``--frames`` frames each; the fusion is fused
and evaluated first (what `masseg run` does), then:

* ``report``: `masseg report` from scratch -- each member's own labels (a single-member fusion each) and their
  evaluation, then curves, overlay strips, disagreement maps and the page. Reference: one fuse + evaluate pass
  of the fusion. Goal: <= 5x (three members' passes plus the pictures).
* ``report_again``: the report of the same run again (members' labels and scores cached). Goal: <= 1x one pass.
* ``progress``: `evaluate` with its progress bar forced on against off. Goal: <= 1.10x.
* ``overlay``: `masseg overlay --mp4` of the fusion's labels (JPEG per frame + H.264), frames per second, against
  one fuse + evaluate pass (reported, no goal).

Everything runs in this one process (torch single-threaded, jobs=1), so process CPU time is the cost measure; wall
time is reported too (the machine is shared, so it is noisier).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from data.dataset import VOSDataset  # noqa: E402
from ensemble.config import FusionConfig  # noqa: E402
from ensemble.fuse import fuse  # noqa: E402
from pipeline.report.html import build_report  # noqa: E402
from submission.jf.evaluate import evaluate  # noqa: E402
from tests.benchmarks.measure import SHARED, emit, skip_without_clips, timed  # noqa: E402
from tests.ensemble import synthetic  # noqa: E402


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--factor", type=int, default=1, help="downscale the clips by this factor")
    ap.add_argument("--out", default=None, help="write the result as JSON here")
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="bench_report_"))
    try:
        videos = synthetic.clip_videos(SHARED / "vos-clips", args.frames, args.factor)
        synthetic.build_members(work, videos)
        stores = {m: work / "stores" / m for m in synthetic.MEMBERS}
        cfg = FusionConfig.from_dict({"members": [{"store": str(p), "name": n} for n, p in stores.items()]})
        root = work / "data"
        ds = VOSDataset(root)
        run = work / "run"

        def one_pass():
            fuse(cfg, run, dataset=ds)
            return evaluate(root / "Annotations", run / "labels", protocol="davis", n_jobs=1)

        result, pass_wall, pass_cpu = timed(one_pass)
        result.write(run / "eval")          # as `masseg run` leaves it: the report reuses the fusion's scores
        _, rep_wall, rep_cpu = timed(lambda: build_report(run, root=str(root), protocol="davis"))
        _, again_wall, again_cpu = timed(lambda: build_report(run, root=str(root), protocol="davis"))

        def eval_with(flag):
            os.environ["MASSEG_PROGRESS"] = flag
            return timed(lambda: evaluate(root / "Annotations", run / "labels", protocol="davis", n_jobs=1))
        _, off_wall, off_cpu = eval_with("0")
        _, on_wall, on_cpu = eval_with("1")
        os.environ.pop("MASSEG_PROGRESS", None)

        from submission.overlay import overlay_video
        frames = sum(v.shape[0] for v in videos.values())
        _, ov_wall, ov_cpu = timed(lambda: [overlay_video(ds[v], run / "labels", work / "overlay", mp4=True)
                                            for v in ds.video_names])
        out = {
            "videos": {k: list(v.shape) for k, v in videos.items()}, "frames": frames, "members": len(stores),
            "one_fuse_evaluate_pass": {"wall_s": pass_wall, "cpu_s": pass_cpu},
            "report": {"wall_s": rep_wall, "cpu_s": rep_cpu, "ratio_cpu": rep_cpu / pass_cpu,
                       "ratio_wall": rep_wall / pass_wall, "goal": "<= 5x"},
            "report_again": {"wall_s": again_wall, "cpu_s": again_cpu, "ratio_cpu": again_cpu / pass_cpu,
                             "ratio_wall": again_wall / pass_wall, "goal": "<= 1x"},
            "progress": {"off_cpu_s": off_cpu, "on_cpu_s": on_cpu, "ratio_cpu": on_cpu / off_cpu,
                         "ratio_wall": on_wall / off_wall, "goal": "<= 1.10x"},
            "overlay_mp4": {"wall_s": ov_wall, "cpu_s": ov_cpu, "frames_per_cpu_s": frames / ov_cpu,
                            "ratio_cpu": ov_cpu / pass_cpu},
        }
        emit(out, args.out)
        print(f"\none fuse+evaluate pass {pass_cpu:.1f} s CPU ({pass_wall:.1f} s wall); report {rep_cpu:.1f} s CPU "
              f"= {out['report']['ratio_cpu']:.2f}x (again {out['report_again']['ratio_cpu']:.2f}x); progress bars "
              f"{out['progress']['ratio_cpu']:.3f}x; overlays+MP4 {frames / ov_cpu:.1f} frames per CPU second")
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()


def test_report_costs_at_most_5_passes():
    """`make bench` entry: the report's goals against one fuse + evaluate pass of the same run."""
    skip_without_clips()
    out = main([])
    assert out["report"]["ratio_cpu"] <= 5.0
    assert out["report_again"]["ratio_cpu"] <= 1.0
    assert out["progress"]["ratio_cpu"] <= 1.10
