"""Compare fusion settings on a split with ground truth, in one pass: the work behind ``masseg sweep``.

Per video (videos in parallel with joblib) and per scored GT frame: the GT is decoded once, every member frame
is decoded and upsampled once (its maps are cached per output scaling), every setting is fused -- only on the
pixels where members disagree, in one batch per frame -- and every distinct label map is scored once with the
project evaluator's per-frame primitive (``submission.jf.evaluate.VideoRows``: which ids a frame scores, the
empty/empty default, first predicted frames, the unknown-id rule), so settings that give the same map share its
scores. The per-(object, frame) rows of each setting then go through the evaluator's own tables
(``submission.jf.tables.build_result``): object selection (``first_frame_objects``), protocols and averaging are
exactly those of ``submission.jf.evaluate``, with no copy of its bookkeeping here, so a setting's J&F is the J&F
that ``masseg fuse`` + evaluation of its PNGs would report -- errors included.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from data.dataset import VOSDataset
from data.errors import DatasetError

from .config import FusionConfig
from .fuse import (VideoJob, check_members, fill_given, frame_fusion, load_frames, open_members, open_stores,
                   plan_videos)
from .grid import Setting
from .ops import torch_threads
from .voting import to_ids

STRAY_FIX = "check that the member stores were made for this split (same videos, same object ids)"


@dataclass
class VideoSweep:
    """One video's scores under every setting, as the evaluator's ``VideoScores`` (one per setting)."""

    video: str
    scores: list          # list[submission.jf.evaluate.VideoScores], aligned with the settings
    seconds: float
    frames: int
    unique_fraction: float  # fraction of (frame, setting) label maps that were not a repeat


def sweep_video(config: FusionConfig, settings: Sequence[Setting], job: VideoJob, dataset: VOSDataset,
                protocols: tuple[str, ...], mose_ids: list[int] | None = None, threads: int = 1) -> VideoSweep:
    """Score every setting on one video's scored GT frames (all annotated frames but the first and last)."""
    with torch_threads(threads):
        return _sweep_video(config, settings, job, dataset, protocols, mose_ids)


def _sweep_video(config, settings, job, dataset, protocols, mose_ids) -> VideoSweep:
    from submission.jf.evaluate import VideoRows, VideoScores, check_vosb_ids, first_frame_objects
    from submission.jf.measures import FrameScorer
    start = time.perf_counter()
    video = dataset[job.name]
    gt_frames = list(video.annotation_names)
    if len(gt_frames) < 3:
        raise DatasetError(f"video {job.name!r} has {len(gt_frames)} annotated frame(s); the first and last are "
                           "never scored, so a sweep needs ground truth on at least 3 frames", video.ann_dir,
                           "sweep on a split with full ground truth (carve one from train with masseg split)")
    g0 = video.annotation(gt_frames[0])
    davis_ids, mose_ids, gt0_ids = first_frame_objects(g0, protocols, mose_ids, video.annotation_path(gt_frames[0]))
    groups = [s.groups(config) for s in settings]
    S, n = len(settings), len(gt_frames) - 2
    # one evaluator bookkeeping per setting, over the scored GT frames 1 .. n (indices among the GT frames)
    books = [VideoRows(job.video_hw, protocols, davis_ids, mose_ids, 1, len(gt_frames) - 1) for _ in range(S)]
    scorer = FrameScorer(job.video_hw, davis_f=("davis" in protocols or "vos-benchmark" in protocols),
                         mose_f=("mosev2" in protocols))
    members = open_members(config, job, checked=True)   # sweep() checked the plan
    unique = 0

    def where(t, s):
        return f"{job.name}/{gt_frames[t]} fused with setting {s} ({settings[s].describe(config.names)})"

    try:
        with torch.inference_mode():
            for t in range(1, len(gt_frames) - 1):
                name = gt_frames[t]
                gt = video.annotation(name)
                frames = load_frames(members, job.name, name)
                ff, ids = frame_fusion(frames, job.video_hw)
                uses = [(g, s.mode) for g, s in zip(groups, settings)]
                base_ch, var_idx = ff.disagreement(uses)
                base = to_ids(base_ch, ids)
                var = to_ids(ff.fuse_many(uses, at=var_idx), ids)
                # identical label maps are scored once
                keys = [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in var]
                first_of: dict[bytes, int] = {}
                for s, k in enumerate(keys):
                    first_of.setdefault(k, s)
                uniq = sorted(set(first_of.values()))
                unique += len(uniq)
                flat_idx = var_idx.numpy()
                by_key = {}
                given = (job.prompts or {}).get(name)
                for s in uniq:
                    pred = base.copy()
                    pred.reshape(-1)[flat_idx] = var[s]
                    pred = fill_given(pred, given, ids)  # exactly as fuse writes the frame
                    by_key[keys[s]] = books[s].score(scorer, gt, pred)
                for s in range(S):
                    books[s].record(t, by_key[keys[s]], "error", where(t, s), STRAY_FIX)
    finally:
        for mv in members.values():
            mv.close()
    names = gt_frames[1:-1]
    frame_index = np.arange(1, len(gt_frames) - 1)     # index among the GT frames, as the evaluator reports it
    scores = [VideoScores(name=job.name, frames=names, frame_index=frame_index, shape=job.video_hw,
                          davis_ids=davis_ids, mose_ids=mose_ids, values=b.values, gt_seen=b.gt_seen,
                          pred_first=b.pred_first, gt0_ids=gt0_ids) for b in books]
    if "vos-benchmark" in protocols:      # as the evaluator's default (on_unknown_ids='error')
        for s, vs in enumerate(scores):
            check_vosb_ids(vs, lambda t, s=s: where(t, s), STRAY_FIX)
    return VideoSweep(job.name, scores, time.perf_counter() - start, n, unique / max(1, n * S))


def tie_key(s: Setting) -> float:
    """Among settings with the same score, prefer the least committal one: weights closest to equal, output
    scaling closest to the models' own (so a tie never hands the win to an arbitrary grid corner)."""
    w = np.asarray(s.weights, np.float64)
    w = w / w.sum()
    spread = float(((w - 1.0 / w.size) ** 2).sum())
    scaling = float(sum(abs(np.log(x)) for x in s.scales) + sum(abs(b) for b in s.biases))
    return spread + scaling


@dataclass
class SweepResult:
    """The ranked settings and everything needed to write the report."""

    config: FusionConfig
    settings: list[Setting]
    protocol: str
    table: pd.DataFrame            # one row per setting, ranked (best first)
    per_video: pd.DataFrame        # setting x video headline J&F
    results: list = field(repr=False, default_factory=list)   # submission.jf.tables.Result per setting
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> Setting:
        return self.settings[int(self.table.iloc[0]["setting"])]

    def best_config(self) -> FusionConfig:
        return self.best.config(self.config)


def sweep(config: FusionConfig, settings: Sequence[Setting], dataset: VOSDataset, protocol: str = "davis",
          videos: Sequence[str] | None = None, jobs: int = 1, meta=None,
          echo: Callable[[str], None] | None = None) -> SweepResult:
    """Evaluate ``settings`` (fusions of ``config``'s members) on ``dataset`` (which must have GT)."""
    from submission.jf.frames import load_meta
    from submission.jf.protocols import normalize_protocols
    from submission.jf.tables import HEADLINE, build_result
    start = time.perf_counter()
    protocols = normalize_protocols(protocol)
    primary = protocols[0]
    settings = list(settings)
    if not settings:
        raise ValueError("no setting to evaluate")
    # members used by any setting take part (a member with weight 0 everywhere is never opened)
    used = {config.names[i] for s in settings for i, w in enumerate(s.weights) if w > 0}
    union = config.with_settings(weights={m.name: (1.0 if m.name in used else 0.0) for m in config.members})
    stores = open_stores(union)
    plan = plan_videos(union, dataset, videos, stores)
    check_members(union, plan, stores)  # PNG members included (their frames map to one-hot votes)
    meta_videos, meta_path = load_meta(meta)

    def mose_ids_of(v):
        if "mosev2" not in protocols or meta_videos is None:
            return None
        entry = meta_videos.get(v)
        if entry is None:
            from submission.jf.errors import EvaluationError
            raise EvaluationError(f"video {v!r} is not in meta.json", meta_path)
        return sorted(int(o) for o in entry.get("objects", []))

    for job in plan:
        mose_ids_of(job.name)
    jobs = max(1, min(int(jobs), len(plan)))
    from data.progress import progress
    with progress(desc="sweep", total=len(plan), unit="video") as bar:
        if jobs == 1:
            gen = (sweep_video(union, settings, job, dataset, protocols, mose_ids_of(job.name)) for job in plan)
        else:
            from joblib import Parallel, delayed
            gen = Parallel(n_jobs=jobs, backend="loky", return_as="generator")(
                delayed(sweep_video)(union, settings, job, dataset, protocols, mose_ids_of(job.name))
                for job in plan)
        done = []
        for d in gen:
            done.append(d)
            bar.update()
    if echo:
        for d in done:
            echo(f"{d.video}: {d.frames} frames x {len(settings)} settings in {d.seconds:.1f} s "
                 f"({100 * d.unique_fraction:.0f}% distinct label maps)")

    rows, per_video, results = [], [], []
    for i, s in enumerate(settings):
        res = build_result([d.scores[i] for d in done], protocols, False)
        results.append(res)
        row = {"setting": i, **s.columns(config.names), "label": s.describe(config.names)}
        for p in protocols:
            for k, v in res.global_[p].items():
                row[f"{p}:{k}"] = v
        row["score"] = res.headline(primary)
        rows.append(row)
        col = {"davis": "JF_davis", "mosev2": "JFdot_mose", "vos-benchmark": "JF_vosb"}[primary]
        for _, r in res.per_video.iterrows():
            per_video.append({"setting": i, "video": r["video"], "score": r.get(col, np.nan)})
    table = pd.DataFrame(rows)
    table["_tie"] = [tie_key(s) for s in settings]
    table = (table.sort_values(["score", "_tie", "setting"], ascending=[False, True, True], kind="mergesort")
             .drop(columns="_tie").reset_index(drop=True))
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    notes = [f"ranked by {primary} {HEADLINE[primary]}"]
    return SweepResult(config, settings, primary, table, pd.DataFrame(per_video), results,
                       time.perf_counter() - start, notes)
