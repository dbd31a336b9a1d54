"""The inference-stage loop shared by every segmenter (SAM2, Cutie, ...): videos in, logit store out.

A segmenter plugs in by exposing (duck typing; :class:`Segmenter` documents it):

* ``name``: short model name (``"sam2"``), used in messages.
* ``manifest() -> dict``: the store manifest of this member (needs ``model``; identity keys must be stable across
  runs so that a rerun resumes instead of failing).
* ``recipe(video)``: how the ensemble maps this video's native logits to video resolution: a typed recipe of
  :mod:`data.recipes` (or its dict form); the stage checks it against that one definition before storing it.
* ``video_meta(video) -> dict``: extra keys for the video's index (object ids, first frames, ...); may be ``{}``.
* ``run_video(video) -> Iterator[FrameOutput]``: one output per frame, in any order, every frame exactly once.
* optionally ``scratch_dir``: a segmenter that needs disk scratch space declares it (``None``); the loop points it
  at the store's temp area (:meth:`LogitStore.temp_dir`) for the run.

The loop skips videos already complete in the store, streams each frame through ``store.writer`` (so memory does
not grow with video length), and makes a video visible only after its last frame: on any error (a bad frame, a
bug, Ctrl-C) the partial file is dropped and the error propagates, so the video is never marked complete and a
rerun starts it again. It shows an overall and a per-video tqdm bar and prints one summary line per video.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Protocol

import numpy as np
from tqdm import tqdm

from data.dataset import VOSDataset, Video
from data.recipes import Recipe, as_recipe
from data.store import LogitStore


@dataclass
class FrameOutput:
    """Native-resolution logits of one frame: (N, h, w) float32 for ``obj_ids`` (N may be 0), scores (N,) or None."""

    frame_index: int
    frame_name: str
    obj_ids: list[int]
    logits: np.ndarray
    scores: np.ndarray | None = None


class Segmenter(Protocol):
    name: str

    def manifest(self) -> dict: ...

    def recipe(self, video: Video) -> Recipe | dict: ...

    def video_meta(self, video: Video) -> dict: ...

    def run_video(self, video: Video) -> Iterator[FrameOutput]: ...


@dataclass
class VideoSummary:
    video: str
    frames: int
    objects: int
    seconds: float

    def line(self) -> str:
        fps = self.frames / self.seconds if self.seconds > 0 else float("inf")
        return f"{self.video}: {self.frames} frames, {self.objects} objects, {self.seconds:.1f} s ({fps:.2f} fps)"


@dataclass
class StageResult:
    done: list[VideoSummary] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def video_store_meta(segmenter: Segmenter, video: Video) -> dict:
    """The index meta of one video: frame names, size, recipe, plus the segmenter's extra keys. A recipe of an
    unknown kind, or a malformed one, fails here: before the video is written, not when the ensemble reads it."""
    name = getattr(segmenter, "name", type(segmenter).__name__)
    recipe = as_recipe(segmenter.recipe(video), f"recipe of segmenter {name!r} for video {video.name!r}")
    meta = {"frame_names": list(video.frame_names), "video_hw": [int(v) for v in video.size],
            "recipe": recipe.to_dict()}
    extra = segmenter.video_meta(video) if hasattr(segmenter, "video_meta") else {}
    meta.update(extra or {})
    return meta


def run_video_into_store(store: LogitStore, segmenter: Segmenter, video: Video,
                         bar: tqdm | None = None) -> VideoSummary:
    """Write one video. Meta is computed first, so bad prompts fail before anything is written."""
    start = time.perf_counter()
    meta = video_store_meta(segmenter, video)
    objects: set[int] = set()
    frames = 0
    scratch = getattr(segmenter, "scratch_dir", False) is None
    if scratch:
        segmenter.scratch_dir = store.temp_dir()
    try:
        with store.writer(video.name, meta) as writer:  # aborts (drops the partial file) on any exception
            for out in segmenter.run_video(video):
                writer.write(out.frame_index, out.frame_name, out.obj_ids, out.logits, out.scores)
                objects.update(out.obj_ids)
                frames += 1
                if bar is not None:
                    bar.update(1)
    finally:
        if scratch:
            segmenter.scratch_dir = None
    return VideoSummary(video.name, frames, len(objects), time.perf_counter() - start)


def run_stage(dataset: VOSDataset, videos: Iterable[str], store: LogitStore, segmenter: Segmenter,
              progress: bool | None = None, echo: Callable[[str], None] | None = None) -> StageResult:
    """Run ``segmenter`` over ``videos`` (already sharded) into ``store``; complete videos are skipped.

    ``progress``: True/False, or None to show bars only on a terminal. ``echo`` receives the summary lines
    (default: written above the bars). The first error stops the run after aborting its video."""
    videos = list(videos)
    result = StageResult()
    todo = []
    for name in videos:
        if store.is_complete(name):
            result.skipped.append(name)
        else:
            todo.append(name)
    total = sum(len(dataset[n]) for n in todo)
    disable = None if progress is None else not progress
    say = echo or tqdm.write
    if result.skipped:
        say(f"skipping {len(result.skipped)} complete videos")
    with tqdm(total=total, desc="all videos", unit="frame", position=0, disable=disable, dynamic_ncols=True) as overall:
        for i, name in enumerate(todo, 1):
            video = dataset[name]
            with tqdm(total=len(video), desc=f"[{i}/{len(todo)}] {name}", unit="frame", position=1, leave=False,
                      disable=disable, dynamic_ncols=True) as bar:
                try:
                    summary = run_video_into_store(store, segmenter, video, _Both(bar, overall))
                except BaseException:
                    say(f"{name}: failed; the video stays incomplete")
                    raise
            result.done.append(summary)
            say(summary.line())
    return result


class _Both:
    """Advance the per-video and the overall bar together."""

    def __init__(self, *bars: tqdm):
        self.bars = bars

    def update(self, n: int = 1) -> None:
        for b in self.bars:
            b.update(n)
