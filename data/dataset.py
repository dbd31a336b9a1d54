"""Dataset layer: DAVIS/MOSE-style and YouTube-VOS-style roots, read lazily.

Layouts accepted (the root is the folder that holds ``JPEGImages`` and ``Annotations``):

* DAVIS / MOSE: ``JPEGImages/<video>/<frame>.jpg`` and ``Annotations/<video>/<frame>.png``. DAVIS keeps a
  resolution folder (``JPEGImages/480p/<video>``); pass ``resolution="480p"`` or let it be detected.
  Split lists are text files of video names: a path, or a name looked up as ``<root>/<name>.txt``,
  ``<root>/ImageSets/<name>.txt`` or ``<root>/ImageSets/*/<name>.txt`` (DAVIS ``ImageSets/2017/val.txt``).
* YouTube-VOS: the same folders plus ``meta.json``; objects may first appear after frame 0 and their first
  mask is given on that frame (``objects_from="appearance"``).
* LVOS: DAVIS-style folders plus ``<split>_meta.json`` (``videos/<video>/objects/<id>/frame_range/start``, the
  frame an object first appears on); read like ``meta.json``, so objects appearing later are tracked from there.
* SA-V: ``JPEGImages_24fps/<video>/<frame>.jpg`` and ``Annotations_6fps/<video>/<object id>/<frame>.png``, one
  binary PNG per object (value > 0 = object), annotated every 4th frame. The per-object masks of a frame are
  read as one label map; where two objects overlap the lower id wins (as SAM2's tools/vos_inference.py does).

A plain DAVIS-style root (no meta file) tracks the first-frame objects only (``objects_from="first_frame"``, as
the official evaluation scripts do by default); when its sparse annotations give new objects on later frames,
a :class:`LaterObjectsWarning` names them and their frames (pass ``objects_from="appearance"`` to track them).

Nothing is read until asked: listing a video reads directory names; its size comes from one JPEG header;
a frame decodes one file.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from PIL import Image

from .errors import DatasetError
from .labels import merge_object_masks, object_folders, read_labels

IMAGE_EXTS = (".jpg", ".jpeg", ".png")
OBJECTS_FROM = ("first_frame", "appearance", "auto")
SAV_IMAGES, SAV_ANNOTATIONS = "JPEGImages_24fps", "Annotations_6fps"


class LaterObjectsWarning(UserWarning):
    """Annotations give objects on later frames that first-frame tracking ignores."""


def _list_stems(folder: Path, exts: Sequence[str]) -> list[tuple[str, str]]:
    """Sorted (stem, filename) pairs of the files in ``folder`` with one of ``exts``."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    out = [(os.path.splitext(n)[0], n) for n in names
           if os.path.splitext(n)[1].lower() in exts and not n.startswith(".")]
    out.sort()
    return out


def _frame_range_start(info: dict, frame_names: list[str]) -> str | None:
    """LVOS meta: the frame name an object starts on (``frame_range.start``, a name or a number)."""
    start = (info.get("frame_range") or {}).get("start") if isinstance(info, dict) else None
    if start is None:
        return None
    if str(start) in frame_names:
        return str(start)
    try:
        want = int(start)
    except (TypeError, ValueError):
        return None
    for name in frame_names:
        if name.isdigit() and int(name) == want:
            return name
    return None


def read_split_file(path: str | os.PathLike) -> list[str]:
    """Video names, one per line; blank lines and ``#`` comments ignored, order kept, duplicates rejected."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise DatasetError("split list not found", path, "pass an existing file or a split name") from None
    names, seen = [], set()
    for i, line in enumerate(lines, 1):
        name = line.split("#", 1)[0].strip()
        if not name:
            continue
        if name in seen:
            raise DatasetError(f"video {name!r} listed twice (line {i})", path, "remove the duplicate line")
        seen.add(name)
        names.append(name)
    if not names:
        raise DatasetError("split list is empty", path, "list one video name per line")
    return names


def write_split_file(path: str | os.PathLike, videos: Sequence[str]) -> None:
    from .atomic import atomic_write_text
    atomic_write_text(path, "".join(f"{v}\n" for v in videos))


@dataclass
class Video:
    """One video: frame names, size, first-given masks. Everything is read on demand."""

    name: str
    image_dir: Path
    ann_dir: Path
    frame_files: list[str]
    objects_from: str = "first_frame"
    meta: dict | None = None
    warn_later: bool = False
    _first_given: dict[int, int] | None = field(default=None, repr=False)

    @cached_property
    def object_folders(self) -> dict[int, Path]:
        """SA-V layout: object id -> its folder of binary PNGs ({} for one label map per frame)."""
        return object_folders(self.ann_dir)

    @cached_property
    def frame_names(self) -> list[str]:
        return [os.path.splitext(f)[0] for f in self.frame_files]

    def __len__(self) -> int:
        return len(self.frame_files)

    @cached_property
    def size(self) -> tuple[int, int]:
        """(H, W) from the first frame's header."""
        path = self.image_dir / self.frame_files[0]
        try:
            with Image.open(path) as im:
                w, h = im.size
        except Exception as exc:
            raise DatasetError(f"cannot read frame header ({exc})", path, "replace the corrupt frame") from None
        return h, w

    def frame_path(self, index: int) -> Path:
        return self.image_dir / self.frame_files[index]

    def frame(self, index: int) -> np.ndarray:
        """Decode frame ``index`` as uint8 (H, W, 3) RGB."""
        path = self.frame_path(index)
        try:
            with Image.open(path) as im:
                arr = np.asarray(im.convert("RGB"))
        except FileNotFoundError:
            raise DatasetError("frame not found", path) from None
        except Exception as exc:
            raise DatasetError(f"unreadable frame ({exc})", path, "replace the corrupt frame") from None
        if arr.shape[:2] != self.size:
            raise DatasetError(f"frame size {arr.shape[1]}x{arr.shape[0]} differs from the video's "
                               f"{self.size[1]}x{self.size[0]}", path, "all frames of a video must have one size")
        return arr

    def frames(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self.frame(i)

    @cached_property
    def annotation_names(self) -> list[str]:
        """Frame names that have an annotation PNG (sorted)."""
        frame_set = set(self.frame_names)
        if self.object_folders:
            stems = {s for d in self.object_folders.values() for s, _ in _list_stems(d, (".png",))}
            return sorted(s for s in stems if s in frame_set)
        return [s for s, _ in _list_stems(self.ann_dir, (".png",)) if s in frame_set]

    def annotation_path(self, frame: int | str) -> Path:
        """The frame's label PNG; in the SA-V layout, the first object's PNG of that frame that exists."""
        name = self.frame_names[frame] if isinstance(frame, int) else frame
        for folder in self.object_folders.values():
            if (folder / f"{name}.png").exists():
                return folder / f"{name}.png"
        return self.ann_dir / f"{name}.png"

    def _per_object_labels(self, name: str) -> np.ndarray | None:
        """SA-V: the frame's per-object binary PNGs as one label map (lower id on top where they overlap)."""
        return merge_object_masks(self.object_folders, name)

    def annotation(self, frame: int | str) -> np.ndarray:
        """Label map of a frame's annotation, checked against the video size."""
        path = self.annotation_path(frame)
        if not path.exists():
            raise DatasetError("annotation not found", path,
                               "semi-supervised inference needs the first-frame mask of every object")
        if self.object_folders:
            labels = self._per_object_labels(self.frame_names[frame] if isinstance(frame, int) else frame)
        else:
            labels = read_labels(path)
        if labels.shape != self.size:
            raise DatasetError(f"annotation is {labels.shape[1]}x{labels.shape[0]} but frames are "
                               f"{self.size[1]}x{self.size[0]}", path, "annotations must have the frame size")
        return labels

    @property
    def first_given(self) -> dict[int, int]:
        """Object id -> index of the frame whose annotation first gives its mask (ascending ids)."""
        if self._first_given is None:
            self._first_given = self._find_first_given()
        return self._first_given

    @property
    def object_ids(self) -> list[int]:
        return sorted(self.first_given)

    @property
    def prompt_frames(self) -> list[int]:
        """Frame indices on which at least one object is first given (ascending)."""
        return sorted(set(self.first_given.values()))

    def _find_first_given(self) -> dict[int, int]:
        index = {n: i for i, n in enumerate(self.frame_names)}
        if self.objects_from == "first_frame":
            first = self.frame_names[0]
            if first not in self.annotation_names:
                raise DatasetError("first-frame annotation missing", self.annotation_path(first),
                                   "semi-supervised inference needs the first-frame mask")
            ids = np.unique(self.annotation(first))
            found = {int(i): 0 for i in ids if i != 0}
            if not found:
                raise DatasetError("first-frame annotation has no object", self.annotation_path(first),
                                   "give at least one object id > 0")
            if self.warn_later:
                self._warn_later_objects(set(found))
            return found
        found: dict[int, int] = {}
        meta_objs = (self.meta or {}).get("objects")
        if meta_objs:
            for oid, info in meta_objs.items():
                frames = [f for f in info.get("frames", []) if f in index]
                start = _frame_range_start(info, self.frame_names)  # LVOS
                if start is not None:
                    frames.append(start)
                if frames:
                    found[int(oid)] = index[min(frames, key=index.__getitem__)]
            if found:
                return dict(sorted(found.items()))
        for name in self.annotation_names:
            for oid in np.unique(self.annotation(name)):
                if oid != 0 and int(oid) not in found:
                    found[int(oid)] = index[name]
        if not found:
            raise DatasetError("no annotation of this video holds an object", self.ann_dir,
                               "give each object's mask on the frame where it first appears")
        return dict(sorted(found.items()))

    def _warn_later_objects(self, first_ids: set[int]) -> None:
        """Sparse annotations (not every frame) that give new ids later: say they will not be tracked."""
        names = self.annotation_names
        if len(names) < 2 or len(names) == len(self):
            return  # first frame only, or full ground truth (later ids there are scored as the protocol says)
        later: dict[int, str] = {}
        if self.object_folders:  # SA-V: each object's folder says where it starts, no need to decode masks
            for oid, folder in self.object_folders.items():
                stems = [s for s, _ in _list_stems(folder, (".png",))]
                if oid not in first_ids and stems:
                    later[oid] = stems[0]
            names = []
        for name in names[1:]:
            for oid in np.unique(self.annotation(name)).tolist():
                if oid != 0 and oid not in first_ids and oid not in later:
                    later[oid] = name
        if later:
            listed = ", ".join(f"{o} (frame {f})" for o, f in sorted(later.items()))
            warnings.warn(LaterObjectsWarning(
                f"{self.ann_dir}: objects {listed} first appear after the first frame and are ignored "
                "(first-frame objects only); pass --objects-from appearance to track them from there"))

    def prompt_masks(self) -> dict[int, np.ndarray]:
        """Frame index -> label map holding only the objects first given on that frame."""
        out: dict[int, np.ndarray] = {}
        for t in self.prompt_frames:
            labels = self.annotation(t)
            new_ids = [o for o, f in self.first_given.items() if f == t]
            keep = np.isin(labels, new_ids)
            for oid in new_ids:
                if not (labels == oid).any():
                    raise DatasetError(f"object {oid} has no pixels", self.annotation_path(t),
                                       "each given object needs a non-empty mask")
            out[t] = np.where(keep, labels, 0).astype(np.uint8)
        return out


class VOSDataset:
    """A split of a DAVIS/MOSE/YouTube-VOS root. ``videos`` keeps the split order (or sorted names)."""

    def __init__(self, root: str | os.PathLike, split: str | os.PathLike | None = None,
                 resolution: str | None = None, objects_from: str = "auto",
                 image_dir: str = "JPEGImages", ann_dir: str = "Annotations"):
        if objects_from not in OBJECTS_FROM:
            raise ValueError(f"objects_from must be one of {OBJECTS_FROM}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError("dataset root not found", self.root, "point --root at the folder holding JPEGImages/")
        self.layout = "davis"
        if image_dir == "JPEGImages" and not (self.root / image_dir).is_dir() and (self.root / SAV_IMAGES).is_dir():
            image_dir, ann_dir, self.layout = SAV_IMAGES, SAV_ANNOTATIONS, "sa-v"
        img = self.root / image_dir
        if not img.is_dir():
            raise DatasetError(f"no {image_dir}/ folder", self.root, f"the root must hold {image_dir}/<video>/*.jpg")
        if resolution is None and (img / "480p").is_dir() and not _list_stems(img / "480p", IMAGE_EXTS):
            resolution = "480p"
        self.resolution = resolution
        self.image_root = img / resolution if resolution else img
        self.ann_root = (self.root / ann_dir / resolution) if resolution else self.root / ann_dir
        self.meta = self._read_meta()
        self._warn_later = objects_from == "auto" and self.meta is None
        if objects_from == "auto":
            objects_from = "appearance" if self.meta is not None else "first_frame"
        self.objects_from = objects_from
        self.split_file = self._resolve_split(split)
        if self.split_file is not None:
            self.video_names = read_split_file(self.split_file)
        else:
            self.video_names = sorted(d for d in os.listdir(self.image_root)
                                      if (self.image_root / d).is_dir() and not d.startswith("."))
            self._check_annotations_have_frames()
        if not self.video_names:
            raise DatasetError("the split holds no video", self.split_file or self.image_root,
                               "check the root and split")
        self._cache: dict[str, Video] = {}

    def _check_annotations_have_frames(self) -> None:
        """A video with annotations but no frame folder is an incomplete copy, not a video to skip silently."""
        if not self.ann_root.is_dir():
            return
        have = set(self.video_names)
        orphans = sorted(d for d in os.listdir(self.ann_root)
                         if d not in have and not d.startswith(".") and (self.ann_root / d).is_dir())
        if orphans:
            more = f" (and {len(orphans) - 1} more: {', '.join(orphans[1:4])}{'...' if len(orphans) > 4 else ''})" \
                if len(orphans) > 1 else ""
            raise DatasetError(f"video {orphans[0]!r} has annotations but no frames{more}",
                               self.image_root / orphans[0],
                               f"copy its frames into {self.image_root.name}/{orphans[0]}/, or remove "
                               f"{self.ann_root / orphans[0]} (or pass --split to choose videos)")

    def meta_path(self) -> Path | None:
        """``meta.json`` (YouTube-VOS, MOSEv2) or one ``<split>_meta.json`` (LVOS)."""
        path = self.root / "meta.json"
        if path.exists():
            return path
        found = sorted(p for p in self.root.glob("*_meta.json")
                       if not p.name.endswith(("_expression_meta.json", "_meta_attribute.json")))
        if len(found) > 1:
            raise DatasetError(f"several meta files ({', '.join(p.name for p in found)})", self.root,
                               "keep the one of this split")
        return found[0] if found else None

    def _read_meta(self) -> dict | None:
        path = self.meta_path()
        if path is None:
            return None
        try:
            meta = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise DatasetError(f"invalid JSON ({exc})", path) from None
        return meta.get("videos", meta)

    def _resolve_split(self, split) -> Path | None:
        if split is None:
            return None
        p = Path(split)
        if p.is_file():
            return p
        name = p.name if p.suffix == ".txt" else f"{p.name}.txt"
        candidates = [self.root / name, self.root / "ImageSets" / name]
        candidates += sorted((self.root / "ImageSets").glob(f"*/{name}")) if (self.root / "ImageSets").is_dir() else []
        for c in candidates:
            if c.is_file():
                return c
        raise DatasetError(f"split {str(split)!r} not found", self.root,
                           f"pass a split file or put {name} in the root or ImageSets/")

    def __len__(self) -> int:
        return len(self.video_names)

    def __iter__(self) -> Iterator[Video]:
        for name in self.video_names:
            yield self[name]

    def __contains__(self, name: str) -> bool:
        return name in self.video_names

    def __getitem__(self, name: str) -> Video:
        if name not in self._cache:
            if name not in self.video_names:
                raise DatasetError(f"video {name!r} is not in the split", self.split_file or self.image_root)
            folder = self.image_root / name
            if not folder.is_dir():
                raise DatasetError(f"video {name!r} has no frame folder", folder,
                                   "remove it from the split or add its frames")
            files = [f for _, f in _list_stems(folder, IMAGE_EXTS)]
            if not files:
                raise DatasetError("video has no frames", folder)
            meta = (self.meta or {}).get(name)
            self._cache[name] = Video(name, folder, self.ann_root / name, files, self.objects_from, meta,
                                      warn_later=self._warn_later)
        return self._cache[name]

    def frame_counts(self) -> dict[str, int]:
        return {v: len(self[v]) for v in self.video_names}
