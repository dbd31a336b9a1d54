"""Readers for the datasets MOSE+ is built from, each in its published format.

Every reader yields :class:`SourceClip`: the annotated frames of one video, in order, with a lazy label map per
frame (int32, 0 = background, one id per object). Only annotated frames are kept: the official trainer reads a
mask for every frame it samples.

* ``png``: DAVIS/MOSE-style root, ``JPEGImages/<video>/*.jpg`` + ``Annotations/<video>/*.png`` (DAVIS's
  ``480p`` folder detected, optional split list).
* ``youtubevos``: the same folders plus ``meta.json`` (``videos -> objects -> {category, frames}``); annotations
  every 5th frame, ``JPEGImages`` may hold all frames (``train_all_frames``) or only the annotated ones.
* ``lvos``: the same folders plus ``<split>_meta.json`` (``videos -> objects -> frame_range{start,end,frame_nums}``).
* ``sav``: SA-V train, ``[sav_0xx/]<video>_manual.json`` (``masklet``: per annotated frame, per object, a COCO
  RLE) and the frames extracted by SAM 2's ``sav_frame_extraction_submitit.py``, ``<frames>/<video>/%05d.jpg``
  named by 24 fps frame index (``fid * sample_rate``); annotations every ``ann_every`` (4) frames.
* ``ovis``: YouTube-VIS-style JSON (``videos[{id, file_names, height, width}]``, ``annotations[{video_id,
  segmentations: [RLE | null per frame]}]``), frames under ``frames/``.
* ``burst``: BURST JSON (``sequences[{dataset, seq_name, fps, height, width, annotated_image_paths,
  all_image_paths, segmentations: [{track_id: {rle}} per annotated frame]}]``), frames under
  ``<frames>/<dataset>/<seq_name>/``.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..errors import DatasetError
from ..labels import read_labels
from . import rle

FORMATS = ("png", "youtubevos", "lvos", "sav", "ovis", "burst")
# frames per second of the annotated frame sequence, where the format fixes it
DEFAULT_FPS = {"youtubevos": 6.0, "lvos": 6.0, "sav": 6.0}
IMAGE_EXTS = (".jpg", ".jpeg", ".png")


def safe_name(name: str) -> str:
    """A clip name usable as a folder name and a split-list line."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "clip"


@dataclass
class SourceClip:
    source: str
    video: str
    frame_names: list[str]
    image_paths: list[Path]
    ann_file: Path  # named in annotation errors
    fps: float | None
    _load: Callable[[int], np.ndarray] = field(repr=False)
    ann_paths: list[Path] | None = None  # PNG sources: the mask files (copied as they are when ids stay)

    def __len__(self) -> int:
        return len(self.frame_names)

    def labels(self, i: int) -> np.ndarray:
        """Integer (H, W) id map of annotated frame ``i`` (uint8 from PNGs, int32 from RLE)."""
        return self._load(i)


def _read_json(path: Path):
    try:
        with open(path, "rb") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise DatasetError("annotation file not found", path, "check the source's path in the config") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"not valid JSON ({exc})", path, "re-download the annotation file") from None


def _stems(folder: Path, exts) -> dict[str, str]:
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    return {os.path.splitext(n)[0]: n for n in sorted(names)
            if os.path.splitext(n)[1].lower() in exts and not n.startswith(".")}


def _png_clip(source: str, video: str, image_dir: Path, ann_dir: Path, fps, listed=None) -> SourceClip:
    """Annotated frames of a PNG-annotated video; every annotation needs its frame."""
    anns = _stems(ann_dir, (".png",))
    if listed is not None:
        for stem in listed:
            if stem not in anns:
                raise DatasetError(f"annotation listed in the meta file is missing for video {video!r}",
                                   ann_dir / f"{stem}.png", "re-extract the annotations")
    if not anns:
        raise DatasetError(f"video {video!r} has no annotation PNG", ann_dir, "check the source root")
    images = _stems(image_dir, IMAGE_EXTS)
    names = sorted(anns)
    paths = []
    for stem in names:
        if stem not in images:
            raise DatasetError(f"frame missing for annotation {anns[stem]}", image_dir / f"{stem}.jpg",
                               "re-extract the frames of this video")
        paths.append(image_dir / images[stem])
    size: list = []

    def load(i: int) -> np.ndarray:
        path = ann_dir / anns[names[i]]
        lab = read_labels(path)
        if not size:
            size.append(lab.shape)
        elif lab.shape != size[0]:
            raise DatasetError(f"annotation is {lab.shape[1]}x{lab.shape[0]}, earlier ones of the video are "
                               f"{size[0][1]}x{size[0][0]}", path, "all masks of a video must have one size")
        return lab

    return SourceClip(source, video, names, paths, ann_dir, fps, load, [ann_dir / anns[n] for n in names])


class Source:
    """One configured source: ``name``, ``format`` and its paths (see the module docstring)."""

    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.name = cfg["name"]
        self.format = cfg["format"]
        self.fps = cfg.get("fps", DEFAULT_FPS.get(self.format))

    def _path(self, key: str, required: bool = True) -> Path | None:
        value = self.cfg.get(key)
        if value is None:
            if required:
                raise DatasetError(f"source {self.name!r} ({self.format}) needs '{key}'", None,
                                   f"set sources.{key} in the config")
            return None
        return Path(value)

    def videos(self) -> list[str]:
        """Names of the videos, sorted; cheap (no mask decoded)."""
        return getattr(self, f"_videos_{self.format}")()

    def clip(self, video: str) -> SourceClip:
        return getattr(self, f"_clip_{self.format}")(video)

    def fingerprint(self) -> list:
        """Names, sizes and times of the annotation files: a cached scan is reused only while they are unchanged."""
        def stat(p: Path):
            try:
                st = p.stat()
            except OSError:
                return [str(p), None]
            return [str(p), st.st_size, st.st_mtime_ns]

        if self.format in ("ovis", "burst"):
            return [stat(self._path("annotations"))]
        if self.format == "sav":
            return [stat(p) for _, p in sorted(self._sav_index().items())]
        out = []
        if self.format == "png":
            _, ann = self._png_dirs()
            if self.cfg.get("split"):
                out.append(stat(Path(self.cfg["split"])))
        else:
            ann = self._path("root") / "Annotations"
            out.append(stat(self._path("meta", required=False) or self._path("root") / "meta.json")
                       if self.format == "youtubevos" or self.cfg.get("meta") else
                       [stat(p) for p in sorted(self._path("root").glob("*_meta.json"))])
        for entry in sorted(os.scandir(ann), key=lambda e: e.name) if ann.is_dir() else []:
            if entry.is_dir():
                out.append([entry.name, sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns)
                                               for f in os.scandir(entry.path))])
        return out

    def clips(self) -> Iterator[SourceClip]:
        for v in self.videos():
            yield self.clip(v)

    # --- PNG roots (DAVIS / MOSE) -------------------------------------------------------------------------------
    def _png_dirs(self) -> tuple[Path, Path]:
        root = self._path("root")
        img, ann = root / "JPEGImages", root / "Annotations"
        if not img.is_dir():
            raise DatasetError("no JPEGImages/ folder", root, "point root at the folder holding JPEGImages/")
        if (img / "480p").is_dir() and not _stems(img / "480p", IMAGE_EXTS):
            img, ann = img / "480p", ann / "480p"
        if not ann.is_dir():
            raise DatasetError("no Annotations/ folder", root, "the root must hold Annotations/<video>/*.png")
        return img, ann

    def _videos_png(self) -> list[str]:
        img, _ = self._png_dirs()
        split = self.cfg.get("split")
        if split:
            from ..dataset import read_split_file
            return sorted(read_split_file(split))
        return sorted(d for d in os.listdir(img) if (img / d).is_dir() and not d.startswith("."))

    def _clip_png(self, video: str) -> SourceClip:
        img, ann = self._png_dirs()
        if not (img / video).is_dir():
            raise DatasetError(f"video {video!r} has no frame folder", img / video, "check the split list")
        return _png_clip(self.name, video, img / video, ann / video, self.fps)

    # --- YouTube-VOS --------------------------------------------------------------------------------------------
    def _ytvos_meta(self) -> dict:
        if not hasattr(self, "_meta"):
            path = self._path("root") / "meta.json"
            meta = _read_json(path)
            videos = meta.get("videos") if isinstance(meta, dict) else None
            if not isinstance(videos, dict):
                raise DatasetError("meta.json has no 'videos' object", path, "use YouTube-VOS's meta.json")
            self._meta, self._meta_path = videos, path
        return self._meta

    def _videos_youtubevos(self) -> list[str]:
        return sorted(self._ytvos_meta())

    def _clip_youtubevos(self, video: str) -> SourceClip:
        meta = self._ytvos_meta()[video]
        root = self._path("root")
        listed: set[str] = set()
        try:
            for info in (meta.get("objects") or {}).values():
                listed.update(info.get("frames", []))
        except AttributeError:
            raise DatasetError(f"video {video!r}: objects must map ids to {{category, frames}}",
                               self._meta_path) from None
        return _png_clip(self.name, video, root / "JPEGImages" / video, root / "Annotations" / video, self.fps,
                         listed=sorted(listed))

    # --- LVOS ----------------------------------------------------------------------------------------------------
    def _lvos_meta(self) -> dict:
        if not hasattr(self, "_meta"):
            path = self._path("meta", required=False)
            root = self._path("root")
            if path is None:
                found = sorted(root.glob("*_meta.json"))
                found = [p for p in found if "expression" not in p.name and "attribute" not in p.name]
                if len(found) != 1:
                    raise DatasetError(f"expected one <split>_meta.json, found {len(found)}", root,
                                       "set meta = '<path to train_meta.json>' for this source")
                path = found[0]
            data = _read_json(path)
            videos = data.get("videos") if isinstance(data, dict) else None
            if not isinstance(videos, dict):
                raise DatasetError("LVOS meta has no 'videos' object", path, "use LVOS's <split>_meta.json")
            for v, info in videos.items():
                for oid, obj in ((info or {}).get("objects") or {}).items():
                    fr = (obj or {}).get("frame_range")
                    if not isinstance(fr, dict) or "start" not in fr or "end" not in fr:
                        raise DatasetError(f"video {v!r} object {oid}: no frame_range {{start, end}}", path,
                                           "use LVOS's <split>_meta.json")
            self._meta, self._meta_path = videos, path
        return self._meta

    def _videos_lvos(self) -> list[str]:
        return sorted(self._lvos_meta())

    def _clip_lvos(self, video: str) -> SourceClip:
        self._lvos_meta()
        root = self._path("root")
        return _png_clip(self.name, video, root / "JPEGImages" / video, root / "Annotations" / video, self.fps)

    # --- SA-V ----------------------------------------------------------------------------------------------------
    def _sav_index(self) -> dict[str, Path]:
        """video -> masklet JSON, in ``root`` or its sub-folders (SA-V train ships ``sav_000/`` .. ``sav_055/``)."""
        if not hasattr(self, "_index"):
            root = self._path("root")
            if not root.is_dir():
                raise DatasetError("SA-V annotation folder not found", root,
                                   "point root at sav_train/ (or one sav_0xx/ folder of it)")
            suffix = f"_{self.cfg.get('masklets', 'manual')}.json"
            index: dict[str, Path] = {}
            for folder in [root] + sorted(p for p in root.iterdir() if p.is_dir()):
                for n in sorted(os.listdir(folder)):
                    if n.endswith(suffix):
                        video = n[: -len(suffix)]
                        if video in index:
                            raise DatasetError(f"video {video} has two masklet files", folder / n,
                                               f"keep one of it and {index[video]}")
                        index[video] = folder / n
            self._index = index
        return self._index

    def _videos_sav(self) -> list[str]:
        return sorted(self._sav_index())

    def _clip_sav(self, video: str) -> SourceClip:
        path = self._sav_index()[video]
        frames_dir = self._path("frames") / video
        ann_every = int(self.cfg.get("ann_every", 4))
        data = _read_json(path)
        try:
            masklet = data["masklet"]
            size = (int(data["video_height"]), int(data["video_width"]))
            if not isinstance(masklet, list):
                raise TypeError
        except (KeyError, TypeError, ValueError):
            raise DatasetError("not an SA-V masklet file (needs masklet, video_height, video_width)", path,
                               "use the *_manual.json files of SA-V train") from None
        names = [f"{i * ann_every:05d}" for i in range(len(masklet))]
        paths = [frames_dir / f"{n}.jpg" for n in names]
        for p in paths:
            if not p.is_file():
                raise DatasetError("extracted frame missing", p,
                                   f"extract the frames of {video} with SAM 2's sav_frame_extraction script")

        def load(i: int) -> np.ndarray:
            lab = np.zeros(size, np.int32)
            row = masklet[i]
            if not isinstance(row, list):
                raise DatasetError(f"masklet frame {i} is not a list of RLEs", path, "re-download the file")
            for j, r in enumerate(row):
                if r is not None:
                    lab[rle.decode(r, path, f"frame {i} object {j}", size)] = j + 1
            return lab

        return SourceClip(self.name, video, names, paths, path, self.fps, load)

    # --- OVIS (YouTube-VIS-style JSON) ----------------------------------------------------------------------------
    def _ovis_index(self):
        if not hasattr(self, "_index"):
            path = self._path("annotations")
            data = _read_json(path)
            try:
                videos = {}
                for v in data["videos"]:
                    files = list(v["file_names"])
                    name = safe_name(os.path.dirname(files[0]) if files and os.path.dirname(files[0]) else str(v["id"]))
                    videos[name] = (v, [])
                by_id = {v["id"]: name for name, (v, _) in videos.items()}
                for a in sorted(data.get("annotations", []), key=lambda a: a["id"]):
                    videos[by_id[a["video_id"]]][1].append(a)
            except (KeyError, TypeError, IndexError):
                raise DatasetError("not a YouTube-VIS/OVIS annotation file (videos[{id, file_names}], "
                                   "annotations[{id, video_id, segmentations}])", path,
                                   "use OVIS's annotations_train.json") from None
            self._index, self._index_path = videos, path
        return self._index

    def _videos_ovis(self) -> list[str]:
        return sorted(self._ovis_index())

    def _clip_ovis(self, video: str) -> SourceClip:
        v, anns = self._ovis_index()[video]
        path = self._index_path
        frames = self._path("frames")
        files = list(v["file_names"])
        size = (int(v["height"]), int(v["width"]))
        names = [os.path.splitext(os.path.basename(f))[0] for f in files]
        paths = [frames / f for f in files]
        for p in paths:
            if not p.is_file():
                raise DatasetError(f"frame of video {video!r} missing", p, "unpack OVIS's train frames")
        for a in anns:
            if len(a.get("segmentations") or []) != len(files):
                raise DatasetError(f"annotation {a.get('id')} of video {video!r} has "
                                   f"{len(a.get('segmentations') or [])} segmentations for {len(files)} frames",
                                   path, "re-download the annotation file")

        def load(i: int) -> np.ndarray:
            lab = np.zeros(size, np.int32)
            for j, a in enumerate(anns):
                seg = a["segmentations"][i]
                if seg is not None:
                    lab[rle.decode(seg, path, f"video {video} annotation {a['id']} frame {i}", size)] = j + 1
            return lab

        return SourceClip(self.name, video, names, paths, path, self.fps, load)

    # --- BURST ----------------------------------------------------------------------------------------------------
    def _burst_index(self):
        if not hasattr(self, "_index"):
            path = self._path("annotations")
            data = _read_json(path)
            try:
                seqs = {safe_name(f"{s['dataset']}_{s['seq_name']}"): s for s in data["sequences"]}
            except (KeyError, TypeError):
                raise DatasetError("not a BURST annotation file (sequences[{dataset, seq_name, ...}])", path,
                                   "use BURST's train.json") from None
            self._index, self._index_path = seqs, path
        return self._index

    def _videos_burst(self) -> list[str]:
        return sorted(self._burst_index())

    def _clip_burst(self, video: str) -> SourceClip:
        s = self._burst_index()[video]
        path = self._index_path
        try:
            size = (int(s["height"]), int(s["width"]))
            files = list(s["annotated_image_paths"])
            segs = list(s["segmentations"])
            n_all = len(s.get("all_image_paths") or files)
            fps = float(s["fps"]) * len(files) / max(1, n_all) if s.get("fps") else self.fps
        except (KeyError, TypeError, ValueError):
            raise DatasetError(f"sequence {video!r} lacks height/width/annotated_image_paths/segmentations", path,
                               "use BURST's annotation JSON") from None
        if len(segs) != len(files):
            raise DatasetError(f"sequence {video!r} has {len(segs)} segmentations for {len(files)} annotated frames",
                               path, "re-download the annotation file")
        folder = self._path("frames") / s["dataset"] / s["seq_name"]
        names = [os.path.splitext(os.path.basename(f))[0] for f in files]
        paths = [folder / f for f in files]
        for p in paths:
            if not p.is_file():
                raise DatasetError(f"frame of sequence {video!r} missing", p, "unpack BURST's frames")

        def load(i: int) -> np.ndarray:
            lab = np.zeros(size, np.int32)
            for tid, ann in sorted(segs[i].items(), key=lambda kv: int(kv[0])):
                counts = ann.get("rle") if isinstance(ann, dict) else None
                if counts is None:
                    raise DatasetError(f"sequence {video} frame {i} track {tid}: no 'rle'", path,
                                       "re-download the annotation file")
                lab[rle.decode({"size": list(size), "counts": counts}, path,
                               f"sequence {video} frame {i} track {tid}", size)] = int(tid)
            return lab

        return SourceClip(self.name, video, names, paths, path, fps, load)
