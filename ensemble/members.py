"""One member's logits for one video: opened, checked against the video, mapped frame by frame on demand.

A frame's maps are cached per (object ids, scale, bias), and the scale-independent part of its recipe's mapping
(SAM2's video-resolution logits) once per frame, so a sweep over many output scalings decodes and upsamples each
member frame only once. The mapping is looked up by the recipe's type (``ensemble.recipes.MAPPINGS``).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from data.errors import StoreError
from data.recipes import from_dict
from data.store import FrameLogits, LogitStore

from . import recipes
from .config import MemberSpec


class MemberVideo:
    """A member store's view of one video. Raises StoreError (naming store, video and fix) on any mismatch,
    unless the member is optional, in which case :attr:`available` is False (whole video missing) or
    :meth:`has` is False for its missing frames."""

    def __init__(self, spec: MemberSpec, video: str, frame_names: Sequence[str], video_hw: Sequence[int],
                 store: LogitStore | None = None):
        self.spec = spec
        self.video = video
        self.video_hw = (int(video_hw[0]), int(video_hw[1]))
        self.reader = None
        self.recipe = None
        self.mapping = None
        self.missing_frames: list[str] = []
        store = store if store is not None else LogitStore.open(spec.store)
        if not store.is_complete(video):
            if spec.optional:
                self.available = False
                return
            raise StoreError(f"member {spec.name!r} has no complete logits for video {video!r}", spec.store,
                             "run (or finish) inference of this member on the split, or mark it optional = true")
        self.available = True
        self.reader = store.reader(video)
        self.recipe = recipe = from_dict(self.reader.recipe, self.reader.path)
        self.mapping = recipes.mapping_for(recipe, self.reader.path)   # dispatch by recipe type
        self.hflip = recipe.hflip
        hw = tuple(int(v) for v in self.reader.video_hw)
        rec_hw = recipe.video_hw
        if hw != self.video_hw or rec_hw != self.video_hw:
            raise StoreError(f"member {spec.name!r} maps video {video!r} to {rec_hw[1]}x{rec_hw[0]} "
                             f"(index {hw[1]}x{hw[0]}) but the video is {self.video_hw[1]}x{self.video_hw[0]}",
                             self.reader.path, "re-run this member's inference on the same dataset")
        have = set(self.reader.frame_names)
        extra = [f for f in self.reader.frame_names if f not in set(frame_names)]
        if extra:
            raise StoreError(f"member {spec.name!r} has {len(extra)} frame{'' if len(extra) == 1 else 's'} of video "
                             f"{video!r} that the video does not have (first: {extra[0]}; store {len(have)} frames, video {len(frame_names)})",
                             self.reader.path, "this store was made from another copy of the dataset: re-run this "
                             "member's inference on the same root")
        self.missing_frames = [f for f in frame_names if f not in have]
        if self.missing_frames and not spec.optional:
            raise StoreError(f"member {spec.name!r} lacks {len(self.missing_frames)} frame(s) of video {video!r} "
                             f"(first: {self.missing_frames[0]})", self.reader.path,
                             "re-run this member's inference on the same frames, or mark it optional = true")
        self._missing = set(self.missing_frames)

    def verify(self) -> None:
        """Check the store zip's CRCs up front, so a damaged video fails before any of its labels is written."""
        if self.reader is not None:
            self.reader.verify()

    def has(self, frame_name: str) -> bool:
        return self.available and frame_name not in self._missing

    def frame(self, frame_name: str) -> "MemberFrame":
        fl = self.reader.read(frame_name)
        if not all(0 < int(o) <= 255 for o in fl.obj_ids):
            raise StoreError(f"member {self.spec.name!r}, {self.video}/{frame_name}: object ids {fl.obj_ids} "
                             "are outside 1..255", self.reader.path, "label maps hold ids 1..255 only")
        if len(set(fl.obj_ids)) != len(fl.obj_ids):
            raise StoreError(f"member {self.spec.name!r}, {self.video}/{frame_name}: repeated object ids "
                             f"{fl.obj_ids}", self.reader.path, "re-run this member's inference")
        if fl.logits.size and not np.isfinite(fl.logits).all():
            fl = self._drop_unpredicted(fl, frame_name)
        return MemberFrame(self, fl)

    def _drop_unpredicted(self, fl: FrameLogits, frame_name: str) -> FrameLogits:
        """Rows that are entirely NaN mark objects the model did not predict on this frame (Cutie, where the
        object's mask was given): the member has no entry for them there, so it abstains on them. Anything
        else non-finite is corruption."""
        flat = fl.logits.reshape(fl.logits.shape[0], -1)
        nan_rows = np.isnan(flat).all(axis=1)
        rest = flat[~nan_rows]
        if not np.isfinite(rest).all():
            raise StoreError(f"member {self.spec.name!r}, {self.video}/{frame_name}: logits hold NaN or inf",
                             self.reader.path, "the stage must store finite logits (or all-NaN rows for objects "
                                               "it did not predict)")
        keep = np.flatnonzero(~nan_rows)
        return FrameLogits(fl.frame_index, fl.frame_name, [fl.obj_ids[i] for i in keep], fl.logits[keep], None)

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()


class MemberFrame:
    """One member's logits on one frame; :meth:`map` gives its common-footing map for a channel layout."""

    def __init__(self, member: MemberVideo, fl: FrameLogits):
        self.member = member
        self.obj_ids = [int(o) for o in fl.obj_ids]
        self._native = recipes.as_tensor(fl.logits)
        self._prepared: torch.Tensor | None = None
        self._cache: dict[tuple, torch.Tensor] = {}

    def present(self, ids: Sequence[int]) -> np.ndarray:
        """(C,) bool: background, then whether this frame has an entry for each of ``ids``."""
        have = set(self.obj_ids)
        return np.array([True] + [i in have for i in ids], dtype=bool)

    def _rows(self, ids: Sequence[int]) -> list[int]:
        channel = {oid: c for c, oid in enumerate(ids, 1)}
        return [channel[o] for o in self.obj_ids]

    def map(self, ids: Sequence[int], scale: float = 1.0, bias: float = 0.0) -> torch.Tensor:
        """(C, H, W) float32 map for the channel layout ``[background, *ids]`` under output scaling."""
        key = (tuple(ids), float(scale), float(bias))
        out = self._cache.get(key)
        if out is None:
            m = self.member
            if self._prepared is None:   # the scale-independent part (SAM2: upsampling), once per frame
                self._prepared = m.mapping.prepare(self._native, m.recipe)
            out = m.mapping.channels(self._prepared, m.recipe, self._rows(ids), len(ids) + 1, scale, bias)
            self._cache[key] = out
        return out

    def drop_cache(self) -> None:
        self._cache.clear()
