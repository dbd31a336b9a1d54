"""Finding and checking the GT and predicted frames of each video before anything is scored.

The official evaluators fail late or silently on the commonest mistakes (a missing video is skipped or scored
0, a missing frame shifts every later frame, an RGB PNG becomes garbage ids). Here every video's frame lists are
compared up front and any problem raises ``EvaluationError`` naming the offending file.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from data.labels import png_size, read_labels

from .errors import EvaluationError


def _pngs(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.lower().endswith(".png") and not n.startswith("."))


@dataclass(frozen=True)
class VideoFiles:
    """One video's GT and prediction folders and its frame file names (sorted; the same in both)."""

    name: str
    gt_dir: Path
    pred_dir: Path
    frames: tuple[str, ...]

    @property
    def scored(self) -> range:
        """Frame indices every protocol scores: all but the first and the last."""
        return range(1, len(self.frames) - 1)

    def gt_path(self, i: int) -> Path:
        return self.gt_dir / self.frames[i]

    def pred_path(self, i: int) -> Path:
        return self.pred_dir / self.frames[i]

    def frame_name(self, i: int) -> str:
        return os.path.splitext(self.frames[i])[0]


def list_videos(gt_root: str | os.PathLike, videos: Iterable[str] | None = None,
                source: str | os.PathLike | None = None) -> list[str]:
    """Video names to score: the given list (order kept), else every sub-folder of ``gt_root`` (sorted)."""
    gt_root = Path(gt_root)
    if not gt_root.is_dir():
        raise EvaluationError("ground-truth folder not found", gt_root,
                              "pass the Annotations folder holding <video>/<frame>.png")
    if videos is None:
        names = sorted(d for d in os.listdir(gt_root) if not d.startswith(".") and (gt_root / d).is_dir())
        where = gt_root
    else:
        names = [str(v) for v in videos]
        where = Path(source) if source is not None else gt_root
        dup = sorted({v for v in names if names.count(v) > 1})
        if dup:
            raise EvaluationError(f"video {dup[0]!r} is listed twice", where, "list each video once")
    if not names:
        raise EvaluationError("no video to evaluate", where,
                              "the split list is empty or the folder holds no <video>/ sub-folder")
    return names


EXTRA_FRAMES = ("error", "ignore")


def check_video(gt_root: str | os.PathLike, pred_root: str | os.PathLike, name: str,
                extra_frames: str = "error") -> VideoFiles:
    """Both folders exist and hold the same frames (at least 3, since the first and last are not scored).

    ``extra_frames="ignore"``: predicted frames without ground truth are not scored (predictions on every frame
    against sparse ground truth: YouTube-VOS, SA-V's 6 fps annotations of 24 fps videos)."""
    gt_dir, pred_dir = Path(gt_root) / name, Path(pred_root) / name
    if not gt_dir.is_dir():
        raise EvaluationError(f"no ground truth for video {name!r}", gt_dir,
                              "check the split list against the annotation folder")
    if not pred_dir.is_dir():
        raise EvaluationError(f"no predictions for video {name!r}", pred_dir,
                              "predict every video of the split (or evaluate a split without it)")
    gt_frames = _pngs(gt_dir)
    if len(gt_frames) < 3:
        raise EvaluationError(f"video {name!r} has {len(gt_frames)} annotated frame(s); the first and last are "
                              "never scored, so at least 3 are needed", gt_dir)
    pred_frames = set(_pngs(pred_dir))
    missing = [f for f in gt_frames if f not in pred_frames]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise EvaluationError(f"predicted frame missing{more}", pred_dir / missing[0],
                              "write a PNG for every annotated frame")
    extra = sorted(pred_frames - set(gt_frames))
    if extra and extra_frames != "ignore":
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        raise EvaluationError(f"predicted frame has no ground-truth counterpart{more}", pred_dir / extra[0],
                              "frame names must match the annotation file names; remove stray files, or pass "
                              "--extra-frames ignore when the ground truth is sparse")
    return VideoFiles(name, gt_dir, pred_dir, tuple(gt_frames))


def read_gt(video: VideoFiles, i: int, shape: tuple[int, int] | None = None) -> np.ndarray:
    path = video.gt_path(i)
    labels = read_labels(path)
    if shape is not None and labels.shape != tuple(shape):
        raise EvaluationError(f"ground truth is {labels.shape[1]}x{labels.shape[0]} but frame "
                              f"{video.frames[0]} is {shape[1]}x{shape[0]}", path,
                              "all frames of a video must have one size")
    return labels


def read_pred(video: VideoFiles, i: int, shape: tuple[int, int]) -> np.ndarray:
    path = video.pred_path(i)
    labels = read_labels(path)
    if labels.shape != tuple(shape):
        raise EvaluationError(f"prediction is {labels.shape[1]}x{labels.shape[0]} but the ground truth is "
                              f"{shape[1]}x{shape[0]}", path, "write predictions at the annotation size")
    return labels


def check_size(path: Path, shape: tuple[int, int], what: str) -> None:
    """Header-only size check for frames that are listed but never decoded (first/last frame)."""
    size = png_size(path)
    if size != tuple(shape):
        raise EvaluationError(f"{what} is {size[1]}x{size[0]} but the ground truth is {shape[1]}x{shape[0]}",
                              path, "all frames of a video must have the annotation size")


def load_meta(meta) -> tuple[dict | None, Path | None]:
    """meta.json as ``{video: {...}}`` (accepts a path, the file's dict, or its ``videos`` dict)."""
    if meta is None:
        return None, None
    path = None
    if isinstance(meta, (str, os.PathLike)):
        path = Path(meta)
        try:
            meta = json.loads(path.read_text())
        except FileNotFoundError:
            raise EvaluationError("meta.json not found", path) from None
        except json.JSONDecodeError as exc:
            raise EvaluationError(f"invalid JSON ({exc})", path) from None
    if not isinstance(meta, Mapping):
        raise EvaluationError("meta must be a path or a dict", path)
    videos = meta.get("videos", meta)
    return dict(videos), path


def mose_objects(meta_videos: dict, meta_path: Path | None, video: VideoFiles) -> list[int]:
    """Object ids of a video in meta.json (MOSEv2 scores exactly these); also checks its frame count."""
    where = meta_path or Path("meta")
    entry = meta_videos.get(video.name)
    if entry is None:
        raise EvaluationError(f"video {video.name!r} is not in meta.json", where,
                              "use the meta.json of the split you evaluate")
    length = entry.get("length")
    if length is not None and int(length) != len(video.frames):
        raise EvaluationError(f"meta.json says video {video.name!r} has {length} frames but "
                              f"{video.gt_dir} holds {len(video.frames)} annotations", where)
    try:
        ids = sorted(int(o) for o in entry.get("objects", []))
    except (TypeError, ValueError):
        raise EvaluationError(f"object ids of video {video.name!r} are not integers", where) from None
    if not ids:
        raise EvaluationError(f"meta.json lists no object for video {video.name!r}", where)
    return ids
