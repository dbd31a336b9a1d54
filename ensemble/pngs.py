"""PNG members: label maps written by any other tool (XMem, DeAOT, a teammate's ``masseg fuse`` run) taking part
in a fusion next to the logit stores.

Layout: ``<folder>/<video>/<frame>.png``, palette (P) or 8-bit grayscale (L) PNGs whose pixel values are object
ids (0 = background), one per frame, named like the dataset's JPEGs. A ``masseg fuse`` run folder
(``RUN/fusion.toml`` + ``RUN/labels/``) may be given as is: its ``labels/`` folder is read.

Such a member has hard labels and no logits, so on the fusion's common footing (channel 0 background, channel c
object ``ids[c-1]``) each pixel becomes a one-hot vote softened by the member's ``confidence`` c:

    p[label] = c,   p[every other channel of the frame] = (1 - c) / (C - 1)     (C = number of channels)

The map sums to one like the SAM2 and Cutie maps it is averaged with. ``c = 1`` (the default) is the plain
one-hot: in soft voting the member then adds its full weight to its label. A lower c says how much a
probability from the member is worth against the models' own probabilities (it can be tuned on a split with
ground truth). c must be in (0.5, 1]: above 0.5 the member's label is always its most probable channel, so a PNG
member alone reproduces its PNGs exactly, and in majority voting it votes for its own label whatever c is.

A PNG member is a complete segmentation of every frame it has: an object it does not paint is, for it,
absent there (it votes background), rather than "not tracked" (it never abstains). It has no logits, so the
MASSeg output scaling (scale, bias) does not apply to it.

The checks are those of a store member, each a one-line error naming the file: a missing video folder or frame
(unless the member is optional), a PNG whose size differs from the video's, an RGB/16-bit PNG, an undecodable
PNG, an object id the video does not have. A PNG folder, unlike a store, can change after a fusion used it, so
the run folder records a fingerprint (names, sizes, modification times) of the PNGs it fused (``png_members.json``) and a resumed fusion refuses
PNGs that changed since (see :func:`check_fingerprints`).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from data.atomic import atomic_write_text
from data.errors import LabelFormatError, StoreError
from data.labels import read_labels

PNG_KIND = "png"
STORE_KIND = "store"
DEFAULT_CONFIDENCE = 1.0
FINGERPRINTS = "png_members.json"
_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_confidence(c) -> str | None:
    """None when ``c`` is a usable confidence, else what is wrong with it."""
    if isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c):
        return f"confidence must be a number in (0.5, 1], got {c!r}"
    if not 0.5 < float(c) <= 1.0:
        return (f"confidence must be in (0.5, 1], got {c!r} (at 0.5 or below the member's own label would not "
                "be its most probable channel)")
    return None


def labels_folder(path: str | os.PathLike) -> Path:
    """The folder holding ``<video>/<frame>.png``: ``path`` itself, or ``path/labels`` for a masseg run folder."""
    path = Path(path)
    if (path / "labels").is_dir() and (path / "fusion.toml").is_file():
        return path / "labels"
    return path


def is_store(path: str | os.PathLike) -> bool:
    """A logit store (the store says what makes one); anything else given as a member is a folder of PNGs."""
    from data.store import LogitStore
    return LogitStore.is_store(path)


def png_header(path: Path) -> tuple[int, int, int, int]:
    """(H, W, bit depth, colour type) from a PNG's IHDR chunk (33 bytes read, no pixel decode)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(33)
    except OSError as exc:
        raise LabelFormatError(f"cannot read PNG ({exc.strerror or exc})", path) from None
    if len(head) < 33 or head[:8] != _SIGNATURE or head[12:16] != b"IHDR":
        raise LabelFormatError("not a PNG file (bad signature or header)", path,
                               "re-export the tool's output as palette PNGs")
    w, h = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    return h, w, head[24], head[25]


def check_header(path: Path, video_hw: Sequence[int], member: str) -> None:
    """Size and pixel format of one member PNG, from its header: a one-line error naming the file."""
    h, w, depth, ctype = png_header(path)
    if ctype not in (0, 3) or depth > 8 or (ctype == 0 and depth != 8):
        kind = {2: "RGB", 4: "grey+alpha", 6: "RGBA"}.get(ctype, f"{depth}-bit")
        raise LabelFormatError(f"member {member!r}: PNG is {kind}; object ids must be stored as an indexed (P) or "
                               "8-bit grayscale image", path,
                               "convert it to a palette PNG whose pixel values are object ids (0 = background)")
    if (h, w) != (int(video_hw[0]), int(video_hw[1])):
        raise StoreError(f"member {member!r}: PNG is {w}x{h} but the video is {int(video_hw[1])}x{int(video_hw[0])}",
                         path, "write the tool's masks at the video's original resolution")


class PngFolder:
    """A PNG member's folder, with the listing interface the fusion uses for stores
    (:meth:`videos`, :meth:`is_complete`, :meth:`reader`)."""

    def __init__(self, path: str | os.PathLike, member: str = ""):
        self.given = Path(path)
        self.root = labels_folder(path)
        self.member = member
        if not self.root.is_dir():
            raise StoreError(f"PNG member {member!r}: folder not found" if member else "PNG folder not found",
                             self.given, "pass a folder holding <video>/<frame>.png (or a masseg run folder)")
        self._frames: dict[str, dict[str, Path]] = {}

    def frames(self, video: str) -> dict[str, Path]:
        """Frame name -> PNG path of one video (hidden files, e.g. a writer's temp files, are ignored)."""
        if video not in self._frames:
            folder = self.root / video
            found = {}
            if folder.is_dir():
                for n in os.listdir(folder):
                    if n.lower().endswith(".png") and not n.startswith("."):
                        found[n[:-4]] = folder / n
            self._frames[video] = dict(sorted(found.items()))
        return self._frames[video]

    def videos(self) -> list[str]:
        return sorted(n for n in os.listdir(self.root)
                      if not n.startswith(".") and (self.root / n).is_dir() and self.frames(n))

    def is_complete(self, video: str) -> bool:
        """A video is there when its folder holds PNGs (missing frames are checked against the frame list)."""
        return bool(self.frames(video))

    def reader(self, video: str) -> "PngVideoInfo":
        frames = self.frames(video)
        if not frames:
            raise StoreError(f"no PNGs for video {video!r}", self.root / video, "check the folder and video names")
        h, w, _, _ = png_header(next(iter(frames.values())))
        return PngVideoInfo(list(frames), (h, w))


class PngVideoInfo:
    """Frame names and size of a video known only from a PNG member (no dataset given)."""

    def __init__(self, frame_names: list[str], video_hw: tuple[int, int]):
        self.frame_names = frame_names
        self.video_hw = video_hw

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


class PngMemberVideo:
    """A PNG member's view of one video: the same interface and checks as ``members.MemberVideo``."""

    kind = PNG_KIND

    def __init__(self, spec, video: str, frame_names: Sequence[str], video_hw: Sequence[int],
                 folder: PngFolder | None = None, object_ids: Iterable[int] | None = None,
                 check_headers: bool = True):
        self.spec = spec
        self.video = video
        self.video_hw = (int(video_hw[0]), int(video_hw[1]))
        self.folder = folder if folder is not None else PngFolder(spec.store, spec.name)
        self.object_ids = None if object_ids is None else {int(o) for o in object_ids}
        self.missing_frames: list[str] = []
        files = self.folder.frames(video)
        if not files:
            if spec.optional:
                self.available = False
                self._missing = set(frame_names)
                return
            raise StoreError(f"PNG member {spec.name!r} has no PNGs for video {video!r}", self.folder.root / video,
                             "run the tool on this video (or fix the folder), or mark the member optional = true")
        self.available = True
        self.files = files
        self.missing_frames = [f for f in frame_names if f not in files]
        if self.missing_frames and not spec.optional:
            first = self.folder.root / video / f"{self.missing_frames[0]}.png"
            hint = ""
            if len(self.missing_frames) == len(frame_names):
                hint = f"; the folder's PNGs are named like {next(iter(files))}.png"
            raise StoreError(f"PNG member {spec.name!r} lacks {len(self.missing_frames)} of {len(frame_names)} "
                             f"frames of video {video!r} (first: {first.name}{hint})", first,
                             "name the PNGs like the dataset's JPEGs, one per frame, or mark the member optional = true")
        self._missing = set(self.missing_frames)
        if check_headers:   # (frame() checks size and mode again on decoding)
            for f in frame_names:
                if f in files:
                    check_header(files[f], self.video_hw, spec.name)

    def verify(self) -> None:
        """Nothing to check up front: each PNG is decoded (and checked) when its frame is read."""

    def has(self, frame_name: str) -> bool:
        return self.available and frame_name not in self._missing

    def frame(self, frame_name: str) -> "PngFrame":
        path = self.files[frame_name]
        labels = read_labels(path)
        if labels.shape != self.video_hw:
            raise StoreError(f"member {self.spec.name!r}: PNG is {labels.shape[1]}x{labels.shape[0]} but the video "
                             f"is {self.video_hw[1]}x{self.video_hw[0]}", path,
                             "write the tool's masks at the video's original resolution")
        ids = [int(o) for o in np.flatnonzero(np.bincount(labels.ravel(), minlength=256)) if o != 0]
        if self.object_ids is not None:
            unknown = sorted(set(ids) - self.object_ids)
            if unknown:
                known = ", ".join(map(str, sorted(self.object_ids))) or "none"
                raise StoreError(f"PNG member {self.spec.name!r}: object id(s) {unknown} are not objects of video "
                                 f"{self.video!r} (objects: {known})", path,
                                 "check that the tool ran on this split with its first-frame masks")
        return PngFrame(labels, ids, float(self.spec.confidence))

    def fingerprint(self) -> str:
        """Digest of the video's PNG names, sizes and modification times (what a resumed fusion must find
        unchanged; a rewritten file counts as changed even if its bytes are the same, as for make or rsync)."""
        h = hashlib.blake2b(digest_size=16)
        if self.available:
            for name, path in self.files.items():
                st = path.stat()
                h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()

    def close(self) -> None:
        return None


class PngFrame:
    """One PNG member frame on the common footing (see the module docstring)."""

    def __init__(self, labels: np.ndarray, obj_ids: list[int], confidence: float):
        self.labels = labels
        self.obj_ids = obj_ids
        self.confidence = confidence
        self._cache: dict[tuple, torch.Tensor] = {}

    def present(self, ids: Sequence[int]) -> np.ndarray:
        """A complete segmentation: the member has an entry (possibly "absent") for every object."""
        return np.ones(len(ids) + 1, dtype=bool)

    def channels(self, ids: Sequence[int]) -> np.ndarray:
        """(H, W) channel index of each pixel's label in the layout ``[background, *ids]``."""
        lut = np.zeros(256, np.intp)
        lut[list(ids)] = np.arange(1, len(ids) + 1)
        return lut[self.labels]

    def map(self, ids: Sequence[int], scale: float = 1.0, bias: float = 0.0) -> torch.Tensor:
        """(C, H, W) float32: ``confidence`` on the pixel's label, the rest spread evenly (scale/bias unused)."""
        key = tuple(ids)
        out = self._cache.get(key)
        if out is None:
            missing = sorted(set(self.obj_ids) - set(ids))
            if missing:
                raise ValueError(f"channel layout {list(ids)} lacks the member's objects {missing}")
            n = len(ids) + 1
            c = self.confidence if n > 1 else 1.0
            # column k of the table is the map of a pixel labelled with channel k: one gather builds the frame
            table = np.full((n, n), (1.0 - c) / (n - 1) if n > 1 else 0.0, np.float32)
            np.fill_diagonal(table, c)
            out = torch.from_numpy(np.take(table, self.channels(ids), axis=1))   # take: ~3x faster than [:, idx]
            self._cache[key] = out
        return out

    def drop_cache(self) -> None:
        self._cache.clear()


# ---- resume: the PNGs a run folder was fused with ------------------------------------------------------------
def fingerprints(members: dict, video: str) -> dict[str, str]:
    """{member: digest} of the PNG members among ``members`` (name -> opened member video) for ``video``."""
    return {n: mv.fingerprint() for n, mv in members.items() if isinstance(mv, PngMemberVideo)}


def recorded_fingerprints(run_dir: str | os.PathLike) -> dict:
    """The PNG fingerprints a run folder was fused with ({} when none are recorded)."""
    path = Path(run_dir) / FINGERPRINTS
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def check_fingerprints(run_dir: str | os.PathLike, current: dict[str, dict[str, str]], overwrite: bool) -> None:
    """Compare the PNG members' digests with those recorded in ``run_dir`` and record the current ones.

    ``current``: {member: {video: digest}}. A member's PNGs that changed for a video the run folder was already
    fused with would mix two versions of that member in one set of labels: refused unless ``overwrite``."""
    path = Path(run_dir) / FINGERPRINTS
    old = recorded_fingerprints(run_dir)
    if not overwrite:
        for member, videos in current.items():
            for video, digest in videos.items():
                was = old.get(member, {}).get(video)
                if was is not None and was != digest:
                    raise StoreError(f"the PNGs of member {member!r} for video {video!r} changed since this run "
                                     "folder was fused with them", path,
                                     "use a new --out folder, or pass --overwrite to fuse every frame again")
    merged = {} if overwrite else {m: dict(v) for m, v in old.items()}
    for member, videos in current.items():
        merged.setdefault(member, {}).update(videos)
    if merged or path.exists():
        atomic_write_text(path, json.dumps(merged, indent=1, sort_keys=True) + "\n")
