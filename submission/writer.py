"""Write label maps as official submission PNGs: ``<out_dir>/<video>/<frame>.png``, palette mode, atomic.

This is the one way label maps reach disk in the official layout: the ensemble writes a run's fused labels
through it into ``<run>/labels/`` (:data:`LABELS_SUBDIR`), and ``masseg submit`` zips that folder. Each PNG is
renamed into place only when complete, so a file that exists is a finished frame and a killed run resumes
by asking what is already written (:meth:`SubmissionWriter.written`, :meth:`SubmissionWriter.missing`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from data.errors import LabelFormatError, MassegError
from data.labels import DAVIS_PALETTE, encode_labels
from data.atomic import atomic_write_bytes

from .expected import ExpectedVideo

# A fused run folder keeps its label maps here (the ensemble writes them with SubmissionWriter).
LABELS_SUBDIR = "labels"


def check_name(name: str, what: str) -> str:
    """Reject names that would escape the folder, hide the file or nest folders in the zip."""
    if (not name or name in (".", "..") or name.startswith(".") or "/" in name or "\\" in name
            or os.sep in name or "\0" in name):
        raise MassegError(f"invalid {what} name {name!r}", None,
                          f"use the dataset's {what} names (no path separators, not starting with '.')")
    return name


class SubmissionWriter:
    """Palette PNG writer for one submission folder.

    ``palette``: 768 palette bytes for every frame (default: the DAVIS palette); ``write(..., palette=)``
    overrides it per frame, e.g. with each video's own first-frame palette.
    ``expected``: optional {video: ExpectedVideo}; when given, each write is checked (known video and frame,
    original size, only the video's object ids) so a bad label map fails at once, naming the file.
    """

    def __init__(self, out_dir: str | os.PathLike, palette: bytes | None = None,
                 expected: Mapping[str, ExpectedVideo] | None = None):
        if palette is not None and len(palette) != 768:
            raise ValueError(f"palette must be 768 bytes (256 RGB triples), got {len(palette)}")
        self.out_dir = Path(out_dir)
        self.palette = palette if palette is not None else DAVIS_PALETTE
        self.expected = expected

    def path(self, video: str, frame_name: str) -> Path:
        return self.out_dir / check_name(video, "video") / f"{check_name(frame_name, 'frame')}.png"

    def write(self, video: str, frame_name: str, labels: np.ndarray, palette: bytes | None = None) -> Path:
        """Write one frame's (H, W) map of object ids (not channel indices) atomically; returns its path.
        Any integer array or torch tensor with values 0..255 is accepted."""
        path = self.path(video, frame_name)
        if hasattr(labels, "detach"):  # a torch tensor, possibly on the GPU (torch is not imported here)
            labels = labels.detach().cpu().numpy()
        labels = np.asarray(labels)
        if labels.ndim != 2:
            raise LabelFormatError(f"label map must be 2-D (H, W), got shape {labels.shape}", path,
                                   "pass one id map per frame, not logits or a stack")
        if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
            raise LabelFormatError(f"label map has dtype {labels.dtype}; object ids must be integers", path,
                                   "argmax the probabilities into integer ids first")
        if labels.size and (labels.min() < 0 or labels.max() > 255):
            raise LabelFormatError(f"ids {int(labels.min())}..{int(labels.max())} do not fit in 0..255", path,
                                   "use the dataset's object ids (0 = background)")
        labels = labels.astype(np.uint8, copy=False)
        if self.expected is not None:
            self._check_expected(path, video, frame_name, labels)
        atomic_write_bytes(path, encode_labels(labels, palette if palette is not None else self.palette))
        return path

    def _check_expected(self, path: Path, video: str, frame_name: str, labels: np.ndarray) -> None:
        ev = self.expected.get(video)
        if ev is None:
            raise MassegError(f"video {video!r} is not in the split", path, "check the split the run was made for")
        if frame_name not in ev.frame_names:
            raise MassegError(f"{video} has no frame {frame_name!r}", path, "use the JPEG names of the video")
        if labels.shape != tuple(ev.size):
            raise LabelFormatError(f"label map is {labels.shape[1]}x{labels.shape[0]}, the video is "
                                   f"{ev.size[1]}x{ev.size[0]}", path, "resize predictions to the original size")
        unknown = sorted(set(np.unique(labels).tolist()) - {0} - set(ev.object_ids))
        if unknown:
            raise LabelFormatError(f"ids {unknown} are not objects of {video} ({sorted(ev.object_ids)})", path,
                                   "map labels to the annotation's object ids; objects first given on later "
                                   "frames need --objects-from appearance (in the store, or passed here)")

    # ---- resume -------------------------------------------------------------------------------------------
    def videos(self) -> list[str]:
        """Video folders present (sorted; hidden/temp entries ignored)."""
        if not self.out_dir.is_dir():
            return []
        return sorted(d.name for d in self.out_dir.iterdir() if d.is_dir() and not d.name.startswith("."))

    def written(self, video: str) -> list[str]:
        """Frame names already written for ``video`` (sorted). Temp files of interrupted writes are hidden
        (``.<name>.*.tmp``) and never listed, so every listed frame is complete."""
        folder = self.out_dir / check_name(video, "video")
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return []
        return sorted(n[:-4] for n in names if n.endswith(".png") and not n.startswith("."))

    def missing(self, video: str, frame_names: Iterable[str]) -> list[str]:
        """The frames of ``frame_names`` not yet written, in the given order."""
        done = set(self.written(video))
        return [f for f in frame_names if f not in done]

    def is_complete(self, video: str, frame_names: Iterable[str]) -> bool:
        return not self.missing(video, frame_names)
