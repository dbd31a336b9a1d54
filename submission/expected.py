"""What a split expects from a submission: per video the frame names, the resolution and the allowed ids.

Kept apart from the dataset so the validator and the writer can be driven by a plain mapping (tests, other
tools) and so the dataset's annotations are read once per video, not once per checked frame.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from data.dataset import VOSDataset, Video
from data.errors import MassegError
from data.labels import DAVIS_PALETTE, read_labels

PALETTES = ("davis", "dataset")


@dataclass(frozen=True)
class ExpectedVideo:
    """One video of a split as the server scores it: every frame, at this size, with these object ids."""

    name: str
    frame_names: tuple[str, ...]
    size: tuple[int, int]  # (H, W)
    object_ids: frozenset[int]

    @classmethod
    def from_video(cls, video: Video) -> "ExpectedVideo":
        # object_ids follows the dataset's objects_from: first-frame objects for DAVIS/MOSE, objects given
        # anywhere in the annotations for YouTube-VOS-style splits (Video.first_given).
        return cls(video.name, tuple(video.frame_names), tuple(video.size), frozenset(video.object_ids))


def expected_from_dataset(ds: VOSDataset) -> dict[str, ExpectedVideo]:
    """Expectations for every video of the split (reads one frame header and the prompt annotations each)."""
    return {v.name: ExpectedVideo.from_video(v) for v in ds}


def restrict_frames(expected: Mapping[str, ExpectedVideo], benchmark: VOSDataset) -> dict[str, ExpectedVideo]:
    """Only the frames a sparse benchmark scores (YouTube-VOS: every 5th frame in ``valid/JPEGImages``), for
    labels inferred on every frame (``valid_all_frames``). Each benchmark frame must be one of the video's."""
    out = {}
    for name, ev in expected.items():
        if name not in benchmark:
            raise MassegError(f"video {name!r} is not in the benchmark's frame list", benchmark.image_root,
                              "pass the --frames-root of the same split")
        frames = benchmark[name].frame_names
        unknown = [f for f in frames if f not in set(ev.frame_names)]
        if unknown:
            raise MassegError(f"the benchmark's frame {unknown[0]} of {name!r} is not a frame of the inferred "
                              f"video ({len(unknown)} such frames)", benchmark[name].image_dir,
                              "infer on a root that holds every frame of the benchmark (e.g. valid_all_frames)")
        out[name] = ExpectedVideo(name, tuple(frames), ev.size, ev.object_ids)
    return out


def first_given_palette(video: Video) -> bytes:
    """The palette of the video's first prompt annotation; DAVIS palette when that PNG is grayscale."""
    _, pal = read_labels(video.annotation_path(video.prompt_frames[0]), with_palette=True)
    return pal if pal is not None else DAVIS_PALETTE


def palettes_for(ds: VOSDataset, palette: str) -> Mapping[str, bytes]:
    """Per-video palette for ``palette`` = 'davis' (one palette) or 'dataset' (each video's own)."""
    if palette == "davis":
        return {name: DAVIS_PALETTE for name in ds.video_names}
    if palette == "dataset":
        return {v.name: first_given_palette(v) for v in ds}
    raise ValueError(f"palette must be one of {PALETTES}, got {palette!r}")
