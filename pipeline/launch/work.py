"""The work unit every launcher runs: build a member's segmenter from its spec, run `models.stage` on some videos.

``run_videos`` is what a local worker process, a Ray task and (through ``masseg infer --shard``) a Slurm array task
execute. It is safe to run concurrently with itself on the same store (different videos) and to rerun after a
crash: the store only ever shows complete videos, complete ones are skipped, and a killed video's partial file is
replaced by the next attempt. ``check_store`` is the launchers' final word: every expected video present exactly
once, complete, and nothing half-written left behind.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable, Sequence

from data.dataset import VOSDataset
from data.errors import MassegError, StoreError
from data.store import LogitStore, StoreCheck

from .spec import check_spec

# one built segmenter per process: Ray reuses worker processes across tasks, so consecutive videos of the same
# member do not rebuild the model (seconds for SAM2-L, plus GPU memory churn)
_CACHE: dict[str, object] = {}


def build_segmenter(spec: dict, objects_from: str | None = None):
    """The segmenter a spec describes, with its checkpoint resolved through the registry (cached per process).

    ``objects_from``: the dataset's resolved mode ("auto" resolved against the root), recorded in the manifest
    exactly as `masseg infer` records it, so either command can resume the other's store."""
    spec = check_spec(spec)
    if objects_from is not None:
        spec = dict(spec, objects_from=objects_from)
    key = json.dumps(spec, sort_keys=True)
    seg = _CACHE.get(key)
    if seg is not None:
        return seg
    _CACHE.clear()  # at most one model per process
    if spec["threads"]:
        import torch
        torch.set_num_threads(int(spec["threads"]))
    seg = _build(spec)
    _CACHE[key] = seg
    return seg


def _build(spec: dict):
    """The one segmenter factory (``masseg infer``, every launcher): the model registry's builder, with the
    checkpoint resolved (downloaded once) through the checkpoint registry."""
    from models.registry import BuildRequest, get
    from pipeline.registry import resolve_checkpoint

    family = get(spec["model"])
    path = resolve_checkpoint(spec["checkpoint"])
    options = {o.name: spec["options"].get(o.name) for o in family.options}
    return family.build(BuildRequest(checkpoint=path, options=options, image_size=spec["image_size"],
                                     flip=spec["flip"], device=spec["device"], objects_from=spec["objects_from"]))


def open_dataset(root, split, objects_from: str = "auto") -> VOSDataset:
    return VOSDataset(root, split or None, objects_from=objects_from)


def open_store(store_path, segmenter, codec: str) -> LogitStore:
    """Create (or reopen, to resume) the member's store; workers starting together are serialised by the store."""
    return LogitStore.create(store_path, segmenter.manifest(), codec=codec, lock=True)


def run_videos(member_spec: dict, root, split, videos: Sequence[str], store_path,
               echo: Callable[[str], None] | None = print, progress: bool | None = False) -> dict:
    """Run one member over ``videos`` into the store at ``store_path``; returns a JSON-able summary.

    Complete videos are skipped; the first failing video stops the call (its partial file is dropped) and the
    error propagates, so the caller (a launcher) can retry or report it."""
    start = time.perf_counter()
    spec = check_spec(member_spec)
    from models.stage import run_stage

    dataset = open_dataset(root, split, spec["objects_from"])
    for v in videos:
        dataset[v]  # unknown video -> DatasetError naming it, before any model is built
    store_path = Path(store_path)
    todo = [v for v in videos if not LogitStore.has_video(store_path, v)]
    if not todo:
        if echo:
            echo(f"all {len(videos)} videos already complete in {store_path}")
        return {"done": [], "skipped": list(videos), "seconds": time.perf_counter() - start, "pid": os.getpid()}
    segmenter = build_segmenter(spec, dataset.objects_from)
    store = open_store(store_path, segmenter, spec["codec"])
    result = run_stage(dataset, videos, store, segmenter, progress=progress, echo=echo)
    return {"done": [s.video for s in result.done], "skipped": list(result.skipped),
            "seconds": time.perf_counter() - start, "pid": os.getpid()}


def planned_videos(root, split, objects_from: str, videos: Sequence[str] | None = None):
    """(dataset, {video: frame count}) of the videos a launcher will run: the split, or the given subset of it."""
    dataset = open_dataset(root, split, objects_from)
    counts = dataset.frame_counts()
    if videos is not None:
        missing = [v for v in videos if v not in counts]
        if missing:
            raise MassegError(f"videos not in the dataset: {', '.join(missing[:5])}", root)
        counts = {v: counts[v] for v in videos}
    if not counts:
        raise MassegError("no videos to run", root, "check --root and --split")
    return dataset, counts


def check_store(store_path, videos: Sequence[str], frame_counts: dict[str, int] | None = None) -> StoreCheck:
    """The launchers' final word: :meth:`data.store.LogitStore.check` (the store owns its layout)."""
    return LogitStore.check(store_path, videos, frame_counts)


def require_complete(store_path, videos: Sequence[str], frame_counts: dict[str, int] | None = None) -> StoreCheck:
    check = check_store(store_path, videos, frame_counts)
    if not check.ok:
        raise StoreError(f"run incomplete: {check.describe()}", store_path,
                         "rerun the same command: complete videos are skipped and only the rest is computed")
    return check
