"""J&F evaluation of a folder of predictions against GT, reproducing the official evaluators' numbers.

Every PNG is decoded once; one pass computes what all requested protocols need (pixel counts per object, the
boundary F variants), cropped to each object. Videos are split into frame chunks scored in parallel with
joblib; per-object statistics and dataset scores are then computed by ``protocols``. Memory stays flat: a
worker holds two label maps and a few numbers per (object, frame).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from .errors import EvaluationError
from .frames import (EXTRA_FRAMES, VideoFiles, check_size, check_video, list_videos, load_meta, mose_objects, read_gt,
                     read_pred)
from .measures import FrameScorer
from .protocols import normalize_protocols
from .tables import Result, build_result

UNKNOWN_IDS = ("error", "ignore")
UNKNOWN_FIX = "remove the stray id, or pass on_unknown_ids='ignore' / --unknown-ids ignore"
VOID_ID = 255          # DAVIS maps GT 255 to background before counting objects
_DENSE_IDS = 64        # above this many candidate ids, find present ids with one bincount instead


# ----------------------------------------------------------------------------------------------- sources
class _FileSource:
    """Frames of one video read from PNGs (paths appear in every error)."""

    def __init__(self, video: VideoFiles):
        self.video = video
        self.name = video.name
        self.n_frames = len(video.frames)

    def frame_name(self, i):
        return self.video.frame_name(i)

    def gt(self, i, shape=None):
        return read_gt(self.video, i, shape)

    def pred(self, i, shape):
        return read_pred(self.video, i, shape)

    def where_gt(self, i):
        return self.video.gt_path(i)

    def where_pred(self, i):
        return self.video.pred_path(i)

    def check_unread(self, shape, i_first_last):
        """Sizes of the frames listed but never decoded (their headers only)."""
        for i in i_first_last:
            if i != 0:
                check_size(self.video.gt_path(i), shape, "ground truth")
            check_size(self.video.pred_path(i), shape, "prediction")


class _ArraySource:
    """Frames of one video given as label arrays (the ensemble's in-memory sweep)."""

    def __init__(self, name: str, gt: Sequence[np.ndarray], pred: Sequence[np.ndarray]):
        if len(gt) != len(pred):
            raise EvaluationError(f"video {name!r}: {len(gt)} GT frames but {len(pred)} predicted frames")
        if len(gt) < 3:
            raise EvaluationError(f"video {name!r} has {len(gt)} frames; at least 3 are needed "
                                  "(the first and last are not scored)")
        self.name, self._gt, self._pred = name, gt, pred
        self.n_frames = len(gt)

    def frame_name(self, i):
        return f"{i:05d}"

    def _get(self, seq, i, shape, what):
        a = np.asarray(seq[i])
        if a.ndim != 2 or a.dtype != np.uint8:
            raise EvaluationError(f"video {self.name!r} {what} frame {i}: label maps must be uint8 (H, W), "
                                  f"got {a.dtype} {a.shape}")
        if shape is not None and a.shape != tuple(shape):
            raise EvaluationError(f"video {self.name!r} {what} frame {i} is {a.shape[1]}x{a.shape[0]} but the "
                                  f"ground truth is {shape[1]}x{shape[0]}")
        return a

    def gt(self, i, shape=None):
        return self._get(self._gt, i, shape, "GT")

    def pred(self, i, shape):
        return self._get(self._pred, i, shape, "predicted")

    def where_gt(self, i):
        return f"{self.name}/GT frame {i}"

    def where_pred(self, i):
        return f"{self.name}/predicted frame {i}"

    def check_unread(self, shape, i_first_last):
        for i in i_first_last:
            if i != 0:
                self.gt(i, shape)
            self.pred(i, shape)


# ------------------------------------------------------------------------------------------ chunk scoring
# per (object, scored frame): gt_area, pred_area, inter, F, F_mose, Fdot; an object absent from both maps has
# 0 pixels and F = 1 everywhere (the evaluators' empty/empty case), hence the defaults
_COLS = ("gt_area", "pred_area", "inter", "F", "F_mose", "Fdot")
_DEFAULT = np.array([0, 0, 0, 1.0, 1.0, 1.0])


@dataclass
class _Chunk:
    video: str
    start: int
    stop: int
    shape: tuple[int, int]
    davis_ids: list[int]
    mose_ids: list[int]
    values: dict[int, np.ndarray]                          # id -> (stop - start, 6)
    pred_first: dict[int, int] = field(default_factory=dict)  # id -> first frame present in the prediction
    gt_seen: set[int] = field(default_factory=set)         # ids present in the scored GT frames
    gt0_ids: set[int] = field(default_factory=set)


def _present(labels: np.ndarray, candidates: Iterable[int]) -> list[int]:
    cands = list(candidates)
    if len(cands) <= 8:
        return [o for o in cands if (labels == o).any()]
    counts = np.bincount(labels.ravel(), minlength=256)
    return [o for o in cands if counts[o]]


def first_frame_objects(g0: np.ndarray, protocols: Sequence[str], mose_ids: Sequence[int] | None,
                        where) -> tuple[list[int], list[int], set[int]]:
    """(DAVIS ids, MOSEv2 ids, ids present) of a video, picked from its first GT frame as each evaluator does;
    ``mose_ids`` from meta.json win. Raises (naming ``where``) when a protocol has no object to score."""
    present0 = [int(o) for o in np.flatnonzero(np.bincount(g0.ravel(), minlength=256))]
    gt0_ids = {o for o in present0 if o != 0}
    davis_ids: list[int] = []
    if "davis" in protocols:
        n = max([o for o in gt0_ids if o != VOID_ID], default=0)
        if n == 0:
            raise EvaluationError("first-frame ground truth holds no object (DAVIS scores ids 1..max id of the "
                                  "first frame)", where)
        davis_ids = list(range(1, n + 1))
    if "mosev2" in protocols:
        if mose_ids is None:
            mose_ids = sorted(o for o in gt0_ids if o != VOID_ID)
            if not mose_ids:
                raise EvaluationError("first-frame ground truth holds no object (pass meta.json to list the "
                                      "objects MOSEv2 scores)", where)
    else:
        mose_ids = []
    return davis_ids, list(mose_ids), gt0_ids


@dataclass
class FrameRows:
    """One scored frame: the per-object rows (``_COLS``) of the ids the protocols score there, and the predicted
    ids outside a fixed-set protocol's objects that are present on it (for the unknown-id rule)."""

    ids: list[int]
    rows: np.ndarray
    stray: list[int]


class VideoRows:
    """Per-(object, scored frame) rows of a video (or of a chunk of it) as they are built, frame by frame.

    The evaluator's bookkeeping in one place: which ids a frame scores, the empty/empty default, the first frame
    each id is predicted on, the ids the GT shows, and the unknown-id rule. :func:`evaluate` drives it from PNGs;
    the ensemble's sweep drives it from in-memory fused maps, one per setting, so both give the same numbers."""

    def __init__(self, shape: tuple[int, int], protocols: Sequence[str], davis_ids: Sequence[int],
                 mose_ids: Sequence[int], start: int, stop: int):
        self.vosb = "vos-benchmark" in protocols
        self.fixed = sorted(set(davis_ids) | set(mose_ids))
        # pred ids each fixed-set protocol accepts; vos-benchmark's set is only known at the end of the video
        self.accepted = [(p, set(ids)) for p, ids in (("davis", davis_ids), ("mosev2", mose_ids)) if ids]
        self.start, self.n = start, stop - start
        self.values: dict[int, np.ndarray] = {o: np.tile(_DEFAULT, (self.n, 1)) for o in self.fixed}
        self.pred_first: dict[int, int] = {}
        self.gt_seen: set[int] = set()

    def score(self, scorer: FrameScorer, g: np.ndarray, p: np.ndarray) -> FrameRows:
        """Score one (GT, prediction) pair: the ids the protocols look at, and the stray predicted ids."""
        gmax, pmax = int(g.max()), int(p.max())
        top = max(gmax, pmax)
        stray: list[int] = []
        if self.vosb:
            span = range(1, top + 1)
            if len(span) > _DENSE_IDS:
                span = sorted(set(_present(g, span)) | set(_present(p, span)))
            ids = sorted(set(span) | {o for o in self.fixed if o <= top})
        else:
            ids = [o for o in self.fixed if o <= top]
            unknown = [o for o in range(1, pmax + 1) if any(o not in acc for _, acc in self.accepted)]
            if unknown:
                stray = _present(p, unknown)
        sc = scorer.score(g, p, ids)
        rows = np.column_stack([sc.gt_area, sc.pred_area, sc.inter, sc.F, sc.F_mose, sc.Fdot])
        return FrameRows(sc.ids.tolist(), rows, stray)

    def record(self, t: int, frame: FrameRows, on_unknown: str = "error", where=None, fix: str = UNKNOWN_FIX
               ) -> None:
        """Add frame ``t``'s rows; with ``on_unknown='error'`` a predicted id a fixed-set protocol does not score
        raises (naming ``where``, suggesting ``fix``), as the evaluator does on its first occurrence."""
        for o in frame.stray:
            self.pred_first.setdefault(o, t)
        for k, o in enumerate(frame.ids):
            ga, pa = frame.rows[k, 0], frame.rows[k, 1]
            if ga == 0 and pa == 0:
                continue
            if ga:
                self.gt_seen.add(o)
            if pa:
                self.pred_first.setdefault(o, t)
            arr = self.values.get(o)
            if arr is None:
                arr = self.values[o] = np.tile(_DEFAULT, (self.n, 1))
            arr[t - self.start] = frame.rows[k]
        if on_unknown == "error":
            for proto, acc in self.accepted:
                bad = [o for o, first in self.pred_first.items() if o not in acc and first == t]
                if bad:
                    raise EvaluationError(
                        f"predicted object id {bad[0]} is not an object of the first-frame ground truth "
                        f"({_describe(proto, acc)}; protocol {proto})", where, fix)


def _score_chunk(source, start: int, stop: int, protocols: tuple[str, ...], mose_ids: list[int] | None,
                 on_unknown: str, check_ends: bool) -> _Chunk:
    davis, mose, vosb = ("davis" in protocols), ("mosev2" in protocols), ("vos-benchmark" in protocols)
    g0 = source.gt(0)
    shape = g0.shape
    if check_ends:
        source.check_unread(shape, (0, source.n_frames - 1))
    davis_ids, mose_ids, gt0_ids = first_frame_objects(g0, protocols, mose_ids, source.where_gt(0))
    scorer = FrameScorer(shape, davis_f=davis or vosb, mose_f=mose)
    rows = VideoRows(shape, protocols, davis_ids, mose_ids, start, stop)
    for t in range(start, stop):
        g = source.gt(t, shape)
        p = source.pred(t, shape)
        rows.record(t, rows.score(scorer, g, p), on_unknown, source.where_pred(t))
    return _Chunk(source.name, start, stop, shape, davis_ids, list(mose_ids), rows.values, rows.pred_first,
                  rows.gt_seen, gt0_ids)


def _describe(proto: str, ids: set[int]) -> str:
    s = sorted(ids)
    if proto == "davis":
        return f"ids 1..{s[-1]}"
    return "ids " + ", ".join(map(str, s[:10])) + (" ..." if len(s) > 10 else "")


# ----------------------------------------------------------------------------------------------- merging
@dataclass
class VideoScores:
    """All per-(object, frame) numbers of one video, merged from its chunks."""

    name: str
    frames: list[str]          # names of the scored frames
    frame_index: np.ndarray    # their index in the video
    shape: tuple[int, int]
    davis_ids: list[int]
    mose_ids: list[int]
    values: dict[int, np.ndarray]   # id -> (n_scored, 6) in _COLS order
    gt_seen: set[int]
    pred_first: dict[int, int]
    gt0_ids: set[int]

    def column(self, oid: int, name: str) -> np.ndarray:
        arr = self.values.get(oid)
        if arr is None:
            return np.full(len(self.frames), _DEFAULT[_COLS.index(name)])
        return arr[:, _COLS.index(name)]


def _merge(source, chunks: list[_Chunk]) -> VideoScores:
    chunks = sorted(chunks, key=lambda c: c.start)
    first, last = chunks[0].start, chunks[-1].stop
    n = last - first
    ids = set().union(*(c.values for c in chunks))
    values = {}
    for o in sorted(ids):
        arr = np.tile(_DEFAULT, (n, 1))
        for c in chunks:
            if o in c.values:
                arr[c.start - first:c.stop - first] = c.values[o]
        values[o] = arr
    pred_first: dict[int, int] = {}
    for c in chunks:
        for o, t in c.pred_first.items():
            pred_first.setdefault(o, t)
    c0 = chunks[0]
    return VideoScores(source.name, [source.frame_name(i) for i in range(first, last)],
                       np.arange(first, last), c0.shape, c0.davis_ids, c0.mose_ids, values,
                       set().union(*(c.gt_seen for c in chunks)), pred_first, c0.gt0_ids)


def _check_vosb_ids(source, vs: VideoScores) -> None:
    check_vosb_ids(vs, source.where_pred)


def check_vosb_ids(vs: VideoScores, where_pred, fix: str = None) -> None:
    """vos-benchmark's unknown-id rule, once the whole video is seen: a predicted id the GT never shows is an
    error. ``where_pred(t)`` names frame ``t`` of the prediction."""
    known = vs.gt_seen | vs.gt0_ids
    bad = sorted((t, o) for o, t in vs.pred_first.items() if o not in known)
    if bad:
        t, o = bad[0]
        raise EvaluationError(f"predicted object id {o} never appears in the ground truth of video {vs.name!r} "
                              "(protocol vos-benchmark)", where_pred(t), fix or UNKNOWN_FIX)


# ------------------------------------------------------------------------------------------------ driver
def _plan(sources, n_jobs: int, chunk_frames: int | None):
    """(source index, start, stop) tasks: videos cut into chunks so that all workers stay busy."""
    total = sum(s.n_frames - 2 for s in sources)
    if chunk_frames is None:
        chunk_frames = max(24, math.ceil(total / (4 * max(n_jobs, 1))))
    tasks = []
    for k, s in enumerate(sources):
        n = s.n_frames - 2
        parts = max(1, math.ceil(n / chunk_frames))
        step = math.ceil(n / parts)
        for a in range(1, s.n_frames - 1, step):
            tasks.append((k, a, min(a + step, s.n_frames - 1)))
    return tasks


def _task_cost(source, start, stop) -> int:
    """Rough cost for scheduling longest-first: PNG bytes of the chunk (boundary-rich frames compress worse)."""
    if isinstance(source, _FileSource):
        try:
            return sum(os.path.getsize(source.video.pred_path(i)) for i in range(start, stop))
        except OSError:
            return stop - start
    return stop - start


def _run(sources, protocols, mose_ids_of, on_unknown, strict_compat, n_jobs, chunk_frames) -> Result:
    tasks = _plan(sources, n_jobs, chunk_frames)
    order = sorted(range(len(tasks)), key=lambda i: -_task_cost(sources[tasks[i][0]], *tasks[i][1:]))
    first_task = {}
    for i, (k, a, b) in enumerate(tasks):
        first_task.setdefault(k, i)

    def job(i):
        k, a, b = tasks[i]
        return _score_chunk(sources[k], a, b, protocols, mose_ids_of(sources[k]), on_unknown,
                            check_ends=(first_task[k] == i))

    from data.progress import progress
    frames = {i: tasks[i][2] - tasks[i][1] for i in order}
    with progress(desc="evaluate", total=sum(frames.values()), unit="frame") as bar:
        if n_jobs == 1 or len(tasks) == 1:
            results = {}
            for i in order:
                results[i] = job(i)
                bar.update(frames[i])
        else:
            from joblib import Parallel, delayed
            calls = [delayed(_score_chunk)(sources[tasks[i][0]], tasks[i][1], tasks[i][2], protocols,
                                           mose_ids_of(sources[tasks[i][0]]), on_unknown,
                                           first_task[tasks[i][0]] == i) for i in order]
            out = []
            for i, chunk in zip(order, Parallel(n_jobs=n_jobs, batch_size=1, pre_dispatch="all",
                                                return_as="generator")(calls)):
                out.append(chunk)
                bar.update(frames[i])
            results = dict(zip(order, out))
    per_video = []
    for k, s in enumerate(sources):
        chunks = [results[i] for i, t in enumerate(tasks) if t[0] == k]
        vs = _merge(s, chunks)
        if "vos-benchmark" in protocols and on_unknown == "error":
            _check_vosb_ids(s, vs)
        per_video.append(vs)
    return build_result(per_video, protocols, strict_compat)


def _check_options(protocol, on_unknown_ids, n_jobs):
    protocols = normalize_protocols(protocol)
    if on_unknown_ids not in UNKNOWN_IDS:
        raise ValueError(f"on_unknown_ids must be one of {UNKNOWN_IDS}, got {on_unknown_ids!r}")
    if n_jobs is None or n_jobs < 1:
        n_jobs = max(1, os.cpu_count() or 1) if n_jobs in (None, -1) else 1
    return protocols, n_jobs


def evaluate(gt_dir: str | os.PathLike, pred_dir: str | os.PathLike, videos: Iterable[str] | None = None,
             protocol="davis", n_jobs: int = 2, on_unknown_ids: str = "error", strict_compat: bool = False,
             meta=None, chunk_frames: int | None = None, videos_source: str | os.PathLike | None = None,
             extra_frames: str = "error") -> Result:
    """Score ``pred_dir/<video>/<frame>.png`` against ``gt_dir/<video>/<frame>.png``.

    ``protocol``: 'davis', 'mosev2', 'vos-benchmark', 'all' or a list. ``videos``: names to score (default:
    every folder of ``gt_dir``). ``meta``: MOSEv2 meta.json (path or dict) whose objects MOSEv2 scores.
    ``on_unknown_ids``: a predicted id outside the protocol's objects raises ('error') or is not scored
    ('ignore', what the official evaluators do). ``strict_compat`` reproduces DAVIS's uint8 decay bins.
    ``extra_frames``: 'error' (default) or 'ignore': predicted frames without ground truth are not scored;
    the ground truth's frames are the video (its first and last are not scored), see README.md.
    Raises ``EvaluationError`` (naming the file) on missing videos/frames, size mismatches, RGB PNGs, ...
    """
    protocols, n_jobs = _check_options(protocol, on_unknown_ids, n_jobs)
    if extra_frames not in EXTRA_FRAMES:
        raise ValueError(f"extra_frames must be one of {EXTRA_FRAMES}, got {extra_frames!r}")
    names = list_videos(gt_dir, videos, videos_source)
    if not Path(pred_dir).is_dir():
        raise EvaluationError("prediction folder not found", pred_dir, "pass the folder holding <video>/<frame>.png")
    sources = [_FileSource(check_video(gt_dir, pred_dir, v, extra_frames)) for v in names]
    meta_videos, meta_path = load_meta(meta)

    def mose_ids_of(source):
        if "mosev2" not in protocols or meta_videos is None:
            return None
        return mose_objects(meta_videos, meta_path, source.video)

    for s in sources:   # fail on meta problems before any decoding
        mose_ids_of(s)
    return _run(sources, protocols, mose_ids_of, on_unknown_ids, strict_compat, n_jobs, chunk_frames)


def evaluate_arrays(videos: Mapping[str, tuple[Sequence[np.ndarray], Sequence[np.ndarray]]], protocol="davis",
                    on_unknown_ids: str = "error", strict_compat: bool = False, meta=None,
                    n_jobs: int = 1) -> Result:
    """In-memory twin of ``evaluate``: ``videos`` maps a name to (GT label maps, predicted label maps), every
    frame of the video including the first and last (which are not scored). Runs in-process by default."""
    protocols, n_jobs = _check_options(protocol, on_unknown_ids, n_jobs)
    if not videos:
        raise EvaluationError("no video to evaluate")
    sources = [_ArraySource(name, gt, pred) for name, (gt, pred) in videos.items()]
    meta_videos, _ = load_meta(meta)

    def mose_ids_of(source):
        if "mosev2" not in protocols or meta_videos is None:
            return None
        entry = meta_videos.get(source.name)
        if entry is None:
            raise EvaluationError(f"video {source.name!r} is not in meta")
        return sorted(int(o) for o in entry.get("objects", []))

    return _run(sources, protocols, mose_ids_of, on_unknown_ids, strict_compat, n_jobs, None)
