"""Label folder -> checked, byte-identical submission zip (the work behind ``masseg submit``).

One pass over the input checks every frame (any P or L PNG is accepted, whatever its palette) and, while the
input is clean, re-encodes it with the chosen palette straight into the zip; once a problem is seen it keeps
checking but stops encoding, so the report lists every problem. The closed zip is then validated again as the
server will read it, and only a clean zip is renamed into place: a refused submission leaves no zip behind.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from data.errors import MassegError
from data.progress import progress
from data.labels import DAVIS_PALETTE, encode_labels

from .expected import ExpectedVideo
from .package import building_zip
from .validate import INPUT_TOLERATED, FolderSource, Report, iter_frames, layout_prefix, scan_layout, validate
from .writer import LABELS_SUBDIR


@dataclass
class SubmitResult:
    """Outcome of :func:`build_submission`. ``report`` holds the problems that refused the zip (input or
    output); ``ignored`` the input layout faults that do not reach the zip (extra videos, stray files...)."""

    ok: bool
    report: Report
    ignored: list
    zip_path: Path | None = None
    sha256: str | None = None
    videos: int = 0
    frames: int = 0
    zip_bytes: int = 0


class _Refused(Exception):
    def __init__(self, report: Report):
        self.report = report


def resolve_labels_dir(path: str | os.PathLike, video_names) -> Path:
    """The folder holding ``<video>/<frame>.png``: ``path`` itself, or ``path/labels`` for a fused run folder."""
    path = Path(path)
    if not path.is_dir():
        raise MassegError("label folder not found", path,
                          "pass the folder holding <video>/<frame>.png, or a run folder with labels/")
    names = list(video_names)
    for cand in (path, path / LABELS_SUBDIR):
        if cand.is_dir() and any((cand / v).is_dir() for v in names):
            return cand
    raise MassegError("holds no folder of a video of the split", path,
                      "pass the folder holding <video>/<frame>.png (or a run folder with labels/), "
                      "and check --root/--split")


def build_submission(labels_dir: str | os.PathLike, expected: Mapping[str, ExpectedVideo],
                     zip_path: str | os.PathLike,
                     palettes: Mapping[str, bytes] | None = None, zip_layout: str = "root") -> SubmitResult:
    """Check ``labels_dir`` against ``expected`` and write ``zip_path`` (atomic, deterministic) when clean.

    ``palettes``: {video: 768 palette bytes}; videos not in it (or all, when None) get the DAVIS palette.
    ``zip_layout``: where the video folders go in the zip (``validate.LAYOUTS``: the root, or ``Annotations/``).
    Only the frames of ``expected`` are packed (a folder inferred on every frame gives a sparse benchmark
    exactly its frames; the others are listed as ignored).
    """
    labels_dir, zip_path = Path(labels_dir), Path(zip_path)
    prefix = layout_prefix(zip_layout)
    palettes = palettes or {}
    with FolderSource(labels_dir) as src:
        layout = scan_layout(src, expected)
        report = Report(os.fspath(labels_dir), [p for p in layout.problems if p.kind not in INPUT_TOLERATED],
                        videos_checked=len(layout.frames))
        ignored = [p for p in layout.problems if p.kind in INPUT_TOLERATED]

        def check_zip(tmp: Path) -> None:
            out = validate(tmp, expected, zip_layout)
            out.source = os.fspath(zip_path)
            if not out.ok:
                raise _Refused(out)

        try:
            with building_zip(zip_path, check_zip) as zw, \
                    progress(desc="submit", total=sum(len(f) for f in layout.frames.values()), unit="frame") as bar:
                current = None
                if prefix:
                    zw.add_dir(prefix)
                for video, stem, labels, probs in iter_frames(src, layout, expected, binary_255=True):
                    bar.update()
                    report.frames_checked += 1
                    report.problems.extend(probs)
                    if not report.ok:
                        continue  # keep checking so every problem is reported; the zip is dropped below
                    if video != current:
                        zw.add_dir(prefix + video)
                        current = video
                    zw.add_file(f"{prefix}{video}/{stem}.png", encode_labels(labels, palettes.get(video, DAVIS_PALETTE)))
                if not report.ok:
                    raise _Refused(report)
        except _Refused as refused:
            return SubmitResult(False, refused.report, ignored)
    digest = hashlib.sha256()
    with open(zip_path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return SubmitResult(True, report, ignored, zip_path, digest.hexdigest(), videos=len(layout.frames),
                        frames=report.frames_checked, zip_bytes=zip_path.stat().st_size)


def submit_dataset_labels(labels_dir: str | os.PathLike, dataset, zip_path: str | os.PathLike,
                          palette: str = "dataset", layout: str = "root", frames_from=None) -> SubmitResult:
    """The submission zip of a split's label maps (a fusion's ``RUN/labels``, or any folder of them): validated
    against the dataset, written only when clean; :class:`MassegError` listing the problems otherwise.

    ``palette``: "dataset" (each video's first-frame annotation palette) or "davis". ``layout``: "root" or
    "annotations-root" (YouTube-VOS). ``frames_from``: a dataset whose frames the benchmark scores (a sparse
    copy of the split); only those frames are packed."""
    from .expected import expected_from_dataset, palettes_for, restrict_frames

    expected = expected_from_dataset(dataset)
    if frames_from is not None:
        expected = restrict_frames(expected, frames_from)
    result = build_submission(labels_dir, expected, zip_path, palettes_for(dataset, palette), layout)
    if not result.ok:
        raise MassegError(f"the labels do not make a valid submission:\n{result.report.format(20)}", labels_dir,
                          "see the problems listed above")
    return result
