"""Logit store: the contract between segmenters and the ensemble.

One store per *member run* (one model at one input size, flipped or not, with its settings)::

    <store>/manifest.json            model, checkpoint checksum, settings, scale, flip, codec, code version
    <store>/videos/<video>.zip       one zip per COMPLETE video (written as .<video>.zip.partial, then renamed)
    <store>/tmp/                     scratch space of a member while it runs (anonymous files only: nothing stays)

A video zip holds one entry per frame (``frames/<frame>.bin``: the codec bytes of an (N, h, w) array of
per-object logits at the model's NATIVE output resolution) and ``index.json`` (written last) with the video
meta, the *recipe* that maps native logits to video resolution the way the model itself does, and per frame the
object ids, shape and per-object scores. Writes stream frame by frame, so memory does not grow with video length;
the rename makes a video visible only when it is complete, so a killed run leaves no half video and a rerun skips
complete ones. Zip gives random access by (video, frame) through its central directory.

Recipes: the JSON form of a :mod:`data.recipes` type (``sam2_bilinear``, ``cutie_stride4``); the store records
them, the ensemble interprets them.

The store owns its layout: which videos are complete (:meth:`LogitStore.has_video`), whether a store holds what a
run was meant to produce (:meth:`LogitStore.check`, the launchers' final word), removing what killed writers left
(:meth:`LogitStore.remove_partials`), and serialising concurrent creation (``create(..., lock=True)``). Nothing
outside this module needs to know file names under a store.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from . import codecs
from .atomic import atomic_write_text, write_error
from .errors import StoreError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
VIDEOS = "videos"
PARTIAL_SUFFIX = ".partial"
LOCK = ".create.lock"
# Manifest fields that define what a store's logits mean; a rerun must agree on all of them.
IDENTITY_KEYS = ("model", "checkpoint_sha256", "settings", "scale", "flip", "codec", "q8_scale")


@dataclass
class FrameLogits:
    """Per-object logits of one frame at native resolution (float32, (N, h, w)), ids and optional scores."""

    frame_index: int
    frame_name: str
    obj_ids: list[int]
    logits: np.ndarray
    scores: np.ndarray | None


_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def _video_path(root: Path, video: str) -> Path:
    return root / VIDEOS / f"{video}.zip"


def _complete_videos(root: Path) -> list[str]:
    folder = root / VIDEOS
    if not folder.is_dir():
        return []
    return sorted(n[:-4] for n in os.listdir(folder) if n.endswith(".zip") and not n.startswith("."))


@contextlib.contextmanager
def _creation_lock(root: Path):
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@dataclass
class StoreCheck:
    """What a store holds compared with the videos a run was meant to produce."""

    store: Path
    expected: list[str]
    complete: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)   # leftover partial files (a writer died, nobody retried)
    bad: list[str] = field(default_factory=list)       # complete files that are unreadable or short of frames

    @property
    def ok(self) -> bool:
        return not (self.missing or self.partial or self.bad)

    def describe(self) -> str:
        parts = [f"{len(self.complete)}/{len(self.expected)} videos complete in {self.store}"]
        for label, items in (("missing", self.missing), ("half-written", self.partial), ("corrupt", self.bad),
                             ("not in this run", self.extra)):
            if items:
                parts.append(f"{label}: {', '.join(items[:8])}{' ...' if len(items) > 8 else ''}")
        return "; ".join(parts)


def _entry(name: str) -> zipfile.ZipInfo:
    """A zip entry with a fixed timestamp, so the same logits always give the same bytes."""
    info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


class LogitStore:
    """A folder holding one member run's logits. Use :meth:`create` to write, :meth:`open` to read."""

    def __init__(self, root: str | os.PathLike, manifest: dict):
        self.root = Path(root)
        self.manifest = manifest
        self.codec = manifest.get("codec", codecs.DEFAULT_CODEC)
        self.q8_scale = float(manifest.get("q8_scale", codecs.DEFAULT_Q8_SCALE))

    # ---- creation / opening -------------------------------------------------------------------------
    @classmethod
    def create(cls, root: str | os.PathLike, manifest: dict, codec: str = codecs.DEFAULT_CODEC,
               q8_scale: float = codecs.DEFAULT_Q8_SCALE, lock: bool = False) -> "LogitStore":
        """Create a store, or reopen an existing one written with the same identity (resume).

        ``lock``: serialise with other processes creating the same store at once (launcher workers all start
        together); a filesystem without locks just races harmlessly, since concurrent creators write identical
        manifests atomically."""
        if lock:
            with _creation_lock(Path(root)):
                return cls.create(root, manifest, codec, q8_scale)
        if codec not in codecs.CODECS:
            raise StoreError(f"unknown codec {codec!r}", root, f"use one of {', '.join(codecs.CODECS)}")
        root = Path(root)
        man = dict(manifest)
        man.setdefault("format_version", FORMAT_VERSION)
        man["codec"] = codec
        man["q8_scale"] = float(q8_scale)
        for key in ("model",):
            if key not in man:
                raise ValueError(f"manifest needs {key!r}")
        path = root / MANIFEST
        if path.exists():
            old = cls.open(root).manifest
            diff = [k for k in IDENTITY_KEYS if _canonical(old.get(k)) != _canonical(man.get(k))]
            if diff:
                raise StoreError(
                    f"store was written with different {', '.join(diff)} "
                    f"(was {', '.join(f'{k}={old.get(k)!r}' for k in diff)})", path,
                    "use a new output folder, or delete this store to recompute it")
            return cls(root, old)
        (root / VIDEOS).mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(man, indent=1, sort_keys=True) + "\n")
        return cls(root, man)

    @classmethod
    def open(cls, root: str | os.PathLike) -> "LogitStore":
        path = Path(root) / MANIFEST
        try:
            man = json.loads(path.read_text())
        except FileNotFoundError:
            raise StoreError("not a logit store (no manifest.json)", root,
                             "run `masseg infer` for this member first, or fix the path") from None
        except json.JSONDecodeError as exc:
            raise StoreError(f"manifest is not valid JSON ({exc})", path) from None
        if man.get("format_version", 0) > FORMAT_VERSION:
            raise StoreError(f"store format {man.get('format_version')} is newer than this code ({FORMAT_VERSION})",
                             path, "upgrade masseg-pipeline")
        return cls(root, man)

    # ---- listing ----------------------------------------------------------------------------------------
    def video_path(self, video: str) -> Path:
        return _video_path(self.root, video)

    def is_complete(self, video: str) -> bool:
        return self.video_path(video).is_file()

    def videos(self) -> list[str]:
        return _complete_videos(self.root)

    @staticmethod
    def is_store(root: str | os.PathLike) -> bool:
        """Whether ``root`` holds a logit store (its manifest), without reading it."""
        return (Path(root) / MANIFEST).is_file()

    @staticmethod
    def has_video(root: str | os.PathLike, video: str) -> bool:
        """Whether the store at ``root`` (which may not exist yet) holds ``video`` complete; reads no manifest."""
        return _video_path(Path(root), video).is_file()

    # ---- the store as a whole -------------------------------------------------------------------------------
    @classmethod
    def check(cls, root: str | os.PathLike, videos: Sequence[str],
              frame_counts: dict[str, int] | None = None) -> "StoreCheck":
        """Every video of ``videos`` complete exactly once (one zip each, readable, all frames), no partial files:
        what a run over those videos must leave. A folder that is not (yet) a store has every video missing."""
        root = Path(root)
        check = StoreCheck(root, list(videos))
        folder = root / VIDEOS
        if not (root / MANIFEST).is_file() or not folder.is_dir():
            check.missing = list(videos)
            return check
        store = cls.open(root)
        present = set(store.videos())
        check.partial = sorted(n for n in os.listdir(folder) if n.endswith(PARTIAL_SUFFIX))
        check.missing = [v for v in videos if v not in present]
        check.extra = sorted(present - set(videos))
        for v in videos:
            if v not in present:
                continue
            try:
                with store.reader(v) as r:
                    n = len(r.frame_names)
                    if frame_counts is not None and n != frame_counts.get(v, n):
                        raise StoreError(f"{n} frames, dataset has {frame_counts[v]}")
            except (StoreError, OSError) as exc:
                check.bad.append(f"{v} ({exc})")
                continue
            check.complete.append(v)
        return check

    @staticmethod
    def remove_partials(root: str | os.PathLike) -> list[Path]:
        """Delete the partial video files killed writers left (never read by anyone). Safe only when no writer is
        running on this store (a run holding its folder lock after its workers have finished)."""
        folder = Path(root) / VIDEOS
        gone = []
        if folder.is_dir():
            for name in os.listdir(folder):
                if name.startswith(".") and name.endswith(PARTIAL_SUFFIX):
                    (folder / name).unlink(missing_ok=True)
                    gone.append(folder / name)
        return gone

    def temp_dir(self) -> Path:
        """Scratch space on the store's disk for a member's intermediate data (e.g. SAM2Long's logits waiting for
        its back-trace): not /tmp, which may be RAM-backed. Members create only anonymous (unlinked) files here,
        so a killed run leaves nothing behind."""
        path = self.root / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    # ---- writing ----------------------------------------------------------------------------------------
    def writer(self, video: str, meta: dict) -> "VideoWriter":
        """Start writing ``video``. ``meta`` needs ``frame_names``, ``video_hw`` and ``recipe``."""
        for key in ("frame_names", "video_hw", "recipe"):
            if key not in meta:
                raise ValueError(f"video meta needs {key!r}")
        return VideoWriter(self, video, meta)

    # ---- reading ----------------------------------------------------------------------------------------
    def reader(self, video: str) -> "VideoReader":
        path = self.video_path(video)
        if not path.is_file():
            raise StoreError(f"video {video!r} is not complete in this store", self.root,
                             "rerun inference for it (complete videos are skipped)")
        return VideoReader(self, video, path)


class VideoWriter:
    """Streams one video's frames into a partial zip; :meth:`close` makes it visible atomically."""

    def __init__(self, store: LogitStore, video: str, meta: dict):
        self.store = store
        self.video = video
        self.meta = dict(meta, video=video)
        self.final = store.video_path(video)
        self.partial = self.final.with_name(f".{self.final.name}{PARTIAL_SUFFIX}")
        self.final.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.partial.unlink()  # leftover of a killed run
        self._zip = zipfile.ZipFile(self.partial, "w", compression=zipfile.ZIP_STORED)
        self._frames: dict[str, dict] = {}
        self._closed = False

    def write(self, frame_index: int, frame_name: str, obj_ids: Sequence[int], logits: np.ndarray,
              scores: Iterable[float] | None = None) -> None:
        """Append one frame: ``logits`` (N, h, w) per object in ``obj_ids`` order (N may be 0)."""
        if self._closed:
            raise StoreError("writer already closed", self.partial)
        logits = np.asarray(logits, dtype=np.float32)
        if logits.ndim != 3 or logits.shape[0] != len(obj_ids):
            raise ValueError(f"logits must be (N={len(obj_ids)}, h, w), got {logits.shape}")
        if frame_name in self._frames:
            raise StoreError(f"frame {frame_name} written twice", self.partial)
        rec = {"index": int(frame_index), "obj_ids": [int(o) for o in obj_ids], "shape": list(logits.shape)}
        nan = np.isnan(logits)
        if nan.any():
            # a NaN row means "not predicted on this frame" (e.g. Cutie on the frame whose mask is given):
            # recorded in the index, so every codec keeps it; a stray NaN inside a row is a bug upstream
            rows = nan.reshape(nan.shape[0], -1).all(axis=1)
            if not np.array_equal(nan, np.broadcast_to(rows[:, None, None], nan.shape)):
                raise ValueError(f"frame {frame_name}: NaN logits must fill whole object rows")
            rec["nan_rows"] = [int(i) for i in np.flatnonzero(rows)]
            logits = np.where(nan, np.float32(0), logits)
        data = codecs.encode(logits, self.store.codec, self.store.q8_scale)
        try:
            self._zip.writestr(_entry(f"frames/{frame_name}.bin"), data)
        except OSError as exc:  # disk full: drop the partial video, say which store
            self.abort()
            raise write_error(exc, self.final) from None
        if scores is not None:
            rec["scores"] = [float(s) for s in np.asarray(list(scores), dtype=np.float32)]
        self._frames[frame_name] = rec

    def close(self) -> None:
        """Write the index, close and rename: the video becomes complete."""
        if self._closed:
            return
        missing = [f for f in self.meta["frame_names"] if f not in self._frames]
        if missing:
            self.abort()
            raise StoreError(f"video {self.video!r} closed with {len(missing)} frames missing "
                             f"(first: {missing[0]})", self.final, "write every frame before closing")
        index = {"meta": self.meta, "frames": self._frames, "format_version": FORMAT_VERSION}
        try:
            self._zip.writestr(_entry("index.json"), json.dumps(index, sort_keys=True, separators=(",", ":")))
            self._zip.close()
        except OSError as exc:
            self.abort()
            raise write_error(exc, self.final) from None
        self._closed = True
        os.replace(self.partial, self.final)

    def abort(self) -> None:
        """Drop the partial file: the video stays incomplete."""
        if not self._closed:
            with contextlib.suppress(Exception):
                self._zip.close()
            self._closed = True
        with contextlib.suppress(FileNotFoundError):
            self.partial.unlink()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class VideoReader:
    """Random access to one complete video's frames."""

    def __init__(self, store: LogitStore, video: str, path: Path):
        self.store = store
        self.video = video
        self.path = path
        try:
            self._zip = zipfile.ZipFile(path, "r")
            index = json.loads(self._zip.read("index.json"))
        except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
            raise StoreError(f"corrupt video file ({exc})", path, "delete it and rerun inference") from None
        self.meta: dict = index["meta"]
        self._frames: dict[str, dict] = index["frames"]
        self.frame_names: list[str] = list(self.meta["frame_names"])
        self.recipe: dict = self.meta["recipe"]
        self.video_hw: tuple[int, int] = tuple(self.meta["video_hw"])

    def __len__(self) -> int:
        return len(self.frame_names)

    def read(self, frame: int | str) -> FrameLogits:
        name = self.frame_names[frame] if isinstance(frame, int) else frame
        rec = self._frames.get(name)
        if rec is None:
            raise StoreError(f"frame {name!r} not in video {self.video!r}", self.path)
        try:
            data = self._zip.read(f"frames/{name}.bin")
        except (zipfile.BadZipFile, KeyError, OSError, EOFError) as exc:
            raise StoreError(f"corrupt video file, frame {name} unreadable ({exc})", self.path,
                             "delete it and rerun inference for this video") from None
        logits = codecs.decode(data, self.store.codec, tuple(rec["shape"]), self.store.q8_scale)
        if rec.get("nan_rows"):
            logits = np.array(logits, copy=True)
            logits[rec["nan_rows"]] = np.nan
        scores = np.asarray(rec["scores"], dtype=np.float32) if "scores" in rec else None
        return FrameLogits(rec["index"], name, list(rec["obj_ids"]), logits, scores)

    def __iter__(self):
        for name in self.frame_names:
            yield self.read(name)

    def verify(self) -> None:
        """Read every entry once and check its CRC, so a damaged file fails before any output is written."""
        try:
            bad = self._zip.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            bad = f"({exc})"
        if bad is not None:
            raise StoreError(f"corrupt video file: {bad} fails its CRC check", self.path,
                             "delete it and rerun inference for this video (complete videos are skipped)")

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def recorded_objects_from(roots: Iterable[str | os.PathLike]) -> str | None:
    """The ``objects_from`` the member stores were made with ("first_frame"/"appearance"), None when none says.

    Stores made with ``--objects-from appearance`` hold objects first given on later frames; fusing or
    submitting them against first-frame objects only would reject those ids, so later stages take it from here."""
    seen: dict[str, str] = {}
    for root in roots:
        path = Path(root) / MANIFEST
        try:
            man = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # a missing or broken store is reported by whoever opens it
        value = (man.get("settings") or {}).get("objects_from", man.get("objects_from"))
        if value in ("first_frame", "appearance"):
            seen[os.fspath(root)] = value
    kinds = sorted(set(seen.values()))
    if len(kinds) > 1:
        first = next(r for r, v in seen.items() if v == kinds[0])
        other = next(r for r, v in seen.items() if v == kinds[1])
        raise StoreError(f"member stores were made with different --objects-from ({first}: {kinds[0]}, "
                         f"{other}: {kinds[1]})", other, "re-run inference of one member with the other's setting")
    return kinds[0] if kinds else None


def resolve_objects_from(requested: str, roots: Iterable[str | os.PathLike]) -> str:
    """``--objects-from`` for a stage that reads stores: "auto" becomes what the stores recorded."""
    recorded = recorded_objects_from(roots)
    if requested == "auto" or recorded is None:
        return recorded or requested
    if requested != recorded:
        raise StoreError(f"--objects-from {requested} but the member stores were made with {recorded}", None,
                         f"drop --objects-from (the stores' setting is used) or pass --objects-from {recorded}")
    return requested
