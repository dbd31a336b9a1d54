"""Fuse member stores into label maps for a split: the work behind ``masseg fuse``.

A run folder holds ``fusion.toml`` (the config used, store paths relative to the folder) and ``labels/``
(``<video>/<frame>.png``, written one atomic file at a time through ``submission.writer.SubmissionWriter``).
A rerun with the same config resumes: frames already written are skipped. A rerun with another config is
refused (its labels would mix two fusions) unless ``overwrite``; so is one whose PNG members' files changed
(``png_members.json`` records their fingerprints; see ``ensemble.pngs``). Videos run in parallel with joblib; each
worker decodes and upsamples each member frame once, in float32 on the CPU (exact model rules).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from data.dataset import VOSDataset
from data.errors import StoreError
from data.store import LogitStore

from .config import FusionConfig, load_config
from .errors import FusionConfigError
from .members import MemberFrame, MemberVideo
from .ops import torch_threads
from .pngs import PngFolder, PngMemberVideo, check_fingerprints, fingerprints
from .voting import FrameFusion, GroupUse, MemberUse, to_ids

CONFIG_NAME = "fusion.toml"


@dataclass
class VideoJob:
    """What one video needs: its frames, size, the palette to write with and (optionally) what it may hold."""

    name: str
    frame_names: list[str]
    video_hw: tuple[int, int]
    palette: bytes | None = None
    expected: object | None = None          # submission.expected.ExpectedVideo when a dataset is known
    prompts: dict[str, "np.ndarray"] | None = None  # frame name -> the objects first given there (a label map)
    object_ids: list[int] | None = None     # the video's objects (from the dataset); PNG members are checked


@dataclass
class VideoResult:
    video: str
    frames_written: int
    frames_skipped: int
    seconds: float
    members_used: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        extra = f"; {'; '.join(self.notes)}" if self.notes else ""
        return (f"{self.video}: {self.frames_written} frames fused, {self.frames_skipped} already done, "
                f"{self.seconds:.1f} s{extra}")


# ---- planning ------------------------------------------------------------------------------------------------
def open_stores(config: FusionConfig) -> dict[str, "LogitStore | PngFolder"]:
    """Open every member with a positive weight: its logit store, or its PNG folder (a missing one is an error
    even for optional members: a wrong path is far likelier than an intentionally absent member)."""
    return {m.name: PngFolder(m.store, m.name) if m.is_png else LogitStore.open(m.store) for m in config.active()}


def plan_videos(config: FusionConfig, dataset: VOSDataset | None = None, videos: Sequence[str] | None = None,
                stores: dict[str, LogitStore] | None = None) -> list[VideoJob]:
    """Videos to fuse with their frames and sizes; fails up front, listing every missing (member, video)."""
    stores = stores if stores is not None else open_stores(config)
    active = config.active()
    required = [m for m in active if not m.optional]
    if videos is None:
        if dataset is not None:
            videos = list(dataset.video_names)
        else:
            pool = required or active
            videos = sorted(set().union(*(stores[m.name].videos() for m in pool)))
    videos = list(videos)
    if not videos:
        raise StoreError("no video to fuse: the member stores hold no complete video", active[0].store,
                         "run inference first, or pass the videos explicitly")
    missing = [(m.name, v) for m in required for v in videos if not stores[m.name].is_complete(v)]
    if missing:
        shown = ", ".join(f"{m}/{v}" for m, v in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        first = config.member(missing[0][0])
        if first.is_png:
            raise StoreError(f"{len(missing)} (member, video) pairs have no complete logits or PNGs: {shown}{more}; "
                             f"PNG member {first.name!r} has no PNGs for video {missing[0][1]!r}",
                             stores[first.name].root / missing[0][1],
                             "run the tool on every video of the split, or mark the member optional = true")
        raise StoreError(f"{len(missing)} (member, video) pairs have no complete logits: {shown}{more}",
                         first.store, "run or finish that member's inference on the split, or mark it optional = true")
    jobs = []
    for v in videos:
        if dataset is not None:
            from submission.expected import ExpectedVideo, first_given_palette
            vid = dataset[v]
            prompts = {vid.frame_names[t]: m for t, m in vid.prompt_masks().items()}
            jobs.append(VideoJob(v, list(vid.frame_names), tuple(vid.size), first_given_palette(vid),
                                 ExpectedVideo.from_video(vid), prompts, list(vid.object_ids)))
            continue
        src = next((m for m in required + active if stores[m.name].is_complete(v)), None)
        if src is None:
            raise StoreError(f"no member has video {v!r}", active[0].store, "check the video names")
        with stores[src.name].reader(v) as r:
            jobs.append(VideoJob(v, list(r.frame_names), tuple(int(x) for x in r.video_hw), None, None))
    return jobs


# ---- one frame / one video -----------------------------------------------------------------------------------
def frame_ids(frames: dict[str, MemberFrame]) -> list[int]:
    """The frame's channel layout: the union of the members' object ids, ascending."""
    return sorted(set().union(*(f.obj_ids for f in frames.values())))


def fill_given(labels: np.ndarray, given: np.ndarray | None, predicted: Sequence[int]) -> np.ndarray:
    """On a frame where objects' masks are given, an object that no member predicted there (Cutie outputs the
    given mask itself and stores no logits for it) takes its given mask, as the model's own output would.
    Objects some member did predict keep the fused result, so single-member identity holds for every model."""
    if given is None:
        return labels
    todo = [int(o) for o in np.unique(given) if o != 0 and int(o) not in set(predicted)]
    for o in todo:
        labels[given == o] = o
    return labels


def groups_of(config: FusionConfig) -> tuple[GroupUse, ...]:
    """The config's groups as :class:`GroupUse` (members in config order; zero weights kept for the group sum)."""
    return tuple(GroupUse(g, tuple(MemberUse(m.name, m.weight, m.scale, m.bias) for m in ms))
                 for g, ms in config.groups().items())


def frame_fusion(frames: dict[str, MemberFrame], hw: tuple[int, int]) -> tuple[FrameFusion, list[int]]:
    """A :class:`FrameFusion` over the frame's member logits, and the frame's object ids (channel layout)."""
    ids = frame_ids(frames)

    def maps(name, scale, bias):
        f = frames.get(name)
        return None if f is None else (f.map(ids, scale, bias), f.present(ids))

    return FrameFusion(maps, len(ids) + 1, hw), ids


def open_members(config: FusionConfig, job: VideoJob, stores: dict | None = None, checked: bool = False
                 ) -> dict[str, "MemberVideo | PngMemberVideo"]:
    """Every active member's view of ``job``'s video (``checked``: :func:`check_members` already read the PNG
    headers of this plan, so they are not read again)."""
    members = {}
    try:
        for m in config.active():
            if not m.is_png:
                members[m.name] = MemberVideo(m, job.name, job.frame_names, job.video_hw,
                                              stores.get(m.name) if stores else None)
        ids = job.object_ids if job.object_ids is not None else _store_object_ids(members.values())
        for m in config.active():
            if m.is_png:
                members[m.name] = PngMemberVideo(m, job.name, job.frame_names, job.video_hw,
                                                 stores.get(m.name) if stores else None, ids,
                                                 check_headers=not checked)
    except BaseException:
        for mv in members.values():
            mv.close()
        raise
    return {m.name: members[m.name] for m in config.active()}


def _store_object_ids(members) -> list[int] | None:
    """Without a dataset, a video's objects are those its store members were prompted with (None: unknown)."""
    found = None
    for mv in members:
        if mv.available and isinstance(mv.reader.meta.get("obj_ids"), list):
            found = (found or set()) | {int(o) for o in mv.reader.meta["obj_ids"]}
    return None if found is None else sorted(found)


def check_members(config: FusionConfig, plan: Sequence[VideoJob], stores: dict, fingerprint: bool = False
                  ) -> dict[str, dict[str, str]]:
    """Open every (member, video) once before anything is written: recipe kind, size and frame list are
    checked from the index (stores) or the PNG headers (PNG members), so a bad member fails the run up front
    rather than halfway. Returns the PNG members' fingerprints ({member: {video: digest}}) when asked."""
    out: dict[str, dict[str, str]] = {}
    for job in plan:
        members = open_members(config, job, stores)
        try:
            if fingerprint:
                for name, digest in fingerprints(members, job.name).items():
                    out.setdefault(name, {})[job.name] = digest
        finally:
            for mv in members.values():
                mv.close()
    return out


def load_frames(members: dict[str, MemberVideo], video: str, frame_name: str) -> dict[str, MemberFrame]:
    frames = {n: mv.frame(frame_name) for n, mv in members.items() if mv.has(frame_name)}
    if not frames:
        raise StoreError(f"no member has frame {video}/{frame_name} (all members that lack it are optional)",
                         None, "make at least one member required, or complete an optional member's inference")
    return frames


def fuse_video(config: FusionConfig, job: VideoJob, labels_dir: str | os.PathLike, resume: bool = True,
               threads: int = 1) -> VideoResult:
    """Fuse one video into ``labels_dir/<video>/`` (frames already written are skipped when ``resume``)."""
    with torch_threads(threads):
        return _fuse_video(config, job, labels_dir, resume)


def _fuse_video(config: FusionConfig, job: VideoJob, labels_dir, resume: bool) -> VideoResult:
    from submission.writer import SubmissionWriter
    start = time.perf_counter()
    writer = SubmissionWriter(labels_dir, palette=job.palette,
                              expected={job.name: job.expected} if job.expected is not None else None)
    todo = writer.missing(job.name, job.frame_names) if resume else list(job.frame_names)
    result = VideoResult(job.name, 0, len(job.frame_names) - len(todo), 0.0)
    if not todo:
        result.seconds = time.perf_counter() - start
        return result
    members = open_members(config, job, checked=True)   # fuse() checked the plan; frames are checked on decode
    groups = groups_of(config)
    try:
        for mv in members.values():  # a damaged store zip fails here, before any PNG of this video is written
            mv.verify()
        result.members_used = [n for n, mv in members.items() if mv.available]
        for n, mv in members.items():
            if not mv.available:
                result.notes.append(f"optional member {n} has no logits for this video")
            elif mv.missing_frames:
                result.notes.append(f"optional member {n} lacks {len(mv.missing_frames)} frames")
        with torch.inference_mode():
            for name in todo:
                frames = load_frames(members, job.name, name)
                ff, ids = frame_fusion(frames, job.video_hw)
                labels = to_ids(ff.fuse(groups, config.mode), ids)
                labels = fill_given(labels, (job.prompts or {}).get(name), ids)
                writer.write(job.name, name, labels)
                result.frames_written += 1
    finally:
        for mv in members.values():
            mv.close()
    result.seconds = time.perf_counter() - start
    return result


# ---- a whole run ---------------------------------------------------------------------------------------------
def _identity(config: FusionConfig) -> tuple:
    return (config.mode, tuple((m.name, m.kind, os.path.abspath(m.store), m.weight, m.scale, m.bias,
                                m.confidence, m.group_name, m.optional) for m in config.members))


def prepare_run(config: FusionConfig, run_dir: str | os.PathLike, overwrite: bool = False) -> Path:
    """Record the config in ``run_dir/fusion.toml``; refuse a folder fused with another config."""
    run_dir = Path(run_dir)
    path = run_dir / CONFIG_NAME
    if path.exists() and not overwrite:
        old = load_config(path)
        if _identity(old) != _identity(config):
            raise FusionConfigError("this run folder was fused with a different config", path,
                                    "use a new --out folder, or pass --overwrite to refuse the old labels")
    run_dir.mkdir(parents=True, exist_ok=True)
    config.save(path, comment="written by masseg fuse: the config these labels were fused with")
    return path


def png_fingerprints(config: FusionConfig, dataset: VOSDataset | None = None,
                     videos: Sequence[str] | None = None) -> dict[str, dict[str, str]]:
    """{PNG member: {video: digest}} of the files a fusion of ``config`` would read ({} without PNG members):
    what ``masseg run`` compares with the run folder's record to know whether a finished fusion is still current."""
    if not config.png_names:
        return {}
    stores = open_stores(config)
    return check_members(config, plan_videos(config, dataset, videos, stores), stores, fingerprint=True)


def default_jobs() -> int:
    return max(1, min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 8))


def fuse(config: FusionConfig, run_dir: str | os.PathLike, dataset: VOSDataset | None = None,
         videos: Sequence[str] | None = None, jobs: int = 1, overwrite: bool = False,
         echo: Callable[[str], None] | None = None, progress_desc: str = "fuse") -> list[VideoResult]:
    """Fuse ``videos`` (default: the dataset split, else every video of the required members) into
    ``run_dir/labels``. Everything is checked before the first frame is written. A progress bar (per video)
    goes to stderr (``data.progress``)."""
    from data.progress import progress
    from submission.writer import LABELS_SUBDIR
    stores = open_stores(config)
    plan = plan_videos(config, dataset, videos, stores)
    digests = check_members(config, plan, stores, fingerprint=bool(config.png_names))
    prepare_run(config, run_dir, overwrite)
    check_fingerprints(run_dir, digests, overwrite)
    labels_dir = Path(run_dir) / LABELS_SUBDIR
    resume = not overwrite
    jobs = max(1, min(int(jobs), len(plan)))
    results = []
    with progress(desc=progress_desc, total=len(plan), unit="video") as bar:
        if jobs == 1:
            done = (fuse_video(config, job, labels_dir, resume) for job in plan)
        else:
            from joblib import Parallel, delayed
            done = Parallel(n_jobs=jobs, backend="loky", return_as="generator")(
                delayed(fuse_video)(config, job, labels_dir, resume) for job in plan)
        for r in done:
            results.append(r)
            bar.update()
            if echo:
                echo(r.line())
    return results
