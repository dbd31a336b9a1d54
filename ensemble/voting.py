"""Fusing members' common-footing maps: weighted soft voting, weighted majority voting, and groups.

Maps are float32 tensors ``(C, ...)`` (channel 0 background, channel c object ``ids[c-1]``); the trailing dims
are a frame (H, W) or a list of pixels (P,). Each map comes with ``present`` (bool, (C,)): whether the member
has an entry for that object on this frame.

* Soft voting: per channel, the weighted mean over the members that have the object. A member with no entry
  for an object (not tracked, or not yet appeared for it) abstains on it instead of voting it down; where no
  member has it, it stays 0. Then ``argmax`` (first maximum: ties go to the background, then the lower id).
* Majority voting: every group's label map (argmax of its own map) votes with the group's weight; the label
  with the largest total wins (plurality). Ties (totals equal up to 1e-9 of the total weight, e.g. three
  equal-weight groups voting three different labels) go to the tied label with the largest soft-voting
  probability, so a tie is decided by the members' confidence and not by the order they are listed in; an
  exact tie of that too goes to the lower channel (background, then the lower id).
* Groups: members of one group (scales or flips of one model) are first merged by soft voting with their own
  weights; the group's weight is the sum of its members' configured weights. Soft voting over groups is then
  the plain weighted mean over all members; majority voting gives each group one vote.

Where every member with a positive weight has the same label and all of them have every object, any weighted
mean (and any vote) has that label too, so only the pixels where members disagree are fused (:func:`fuse_frame`).
One member alone is therefore its own label map, bit for bit. The weighted sums use separate multiply and add
steps (no fused multiply-add), so a pixel's result does not depend on where it sits in the array: the sweep
and ``fuse`` get the same labels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .ops import first_argmax

TIE_RTOL = 1e-9
MODES = ("soft", "majority")


@dataclass
class Vote:
    """One map taking part in a fusion: its weight, its (C, ...) map and which channels it has."""

    weight: float
    map: torch.Tensor
    present: np.ndarray


def soft_merge(votes: Sequence[Vote]) -> Vote:
    """Weighted mean per channel over the votes that have the channel; weight of the result = sum of weights."""
    votes = [v for v in votes if v.weight > 0]
    if not votes:
        raise ValueError("soft_merge needs at least one vote with a positive weight")
    total = float(sum(v.weight for v in votes))
    if len(votes) == 1:
        return Vote(total, votes[0].map, votes[0].present)
    present = np.stack([v.present for v in votes])                     # (M, C)
    weights = np.array([v.weight for v in votes], np.float64)
    wsum = (present * weights[:, None]).sum(0)                          # (C,)
    shape = (-1,) + (1,) * (votes[0].map.ndim - 1)
    out = None
    for v in votes:
        coef = np.where(v.present, v.weight / np.where(wsum > 0, wsum, 1.0), 0.0).astype(np.float32)
        term = v.map * torch.from_numpy(coef).view(shape)
        out = term if out is None else out.add_(term)
    return Vote(total, out, present.any(0))


def majority(labels: Sequence[torch.Tensor], weights: Sequence[float], n_channels: int,
             soft: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted plurality of channel-index maps of one shape; ties as in the module docstring.

    ``labels[i]`` is group i's channel-index map (uint8), ``weights[i]`` its weight (> 0). ``soft`` is the
    soft-voting map (C, ...) used to break ties (without it, ties go to the lower channel).
    """
    if len(labels) == 1:
        return labels[0]
    shape = tuple(labels[0].shape)
    score = torch.zeros((n_channels,) + shape, dtype=torch.float64)
    for lab, w in zip(labels, weights):
        score.scatter_add_(0, lab.long()[None], torch.full((1,) + shape, float(w), dtype=torch.float64))
    best = torch.amax(score, dim=0) - TIE_RTOL * float(sum(weights))
    tied = score >= best
    if soft is None:
        return first_argmax(tied.to(torch.uint8))
    # among the tied labels, the most probable under soft voting (probabilities are >= 0, so -1 masks out)
    return first_argmax(torch.where(tied, soft, torch.full_like(soft, -1.0)))


@dataclass
class GroupVotes:
    """The present members of one group on one frame, and the group's configured weight."""

    name: str
    weight: float
    votes: list[Vote]


def fuse_channels(groups: Sequence[GroupVotes], mode: str) -> torch.Tensor:
    """Fused channel-index map (uint8) of (C, ...) maps. Groups without a present member are skipped."""
    merged = [(g.weight, soft_merge(g.votes)) for g in groups if g.weight > 0 and any(v.weight > 0 for v in g.votes)]
    if not merged:
        raise ValueError("no member with a positive weight is available on this frame")
    if mode == "soft":
        if len(merged) == 1:
            return first_argmax(merged[0][1].map)
        return first_argmax(soft_merge([Vote(w, v.map, v.present) for w, v in merged]).map)
    if mode == "majority":
        n_channels = merged[0][1].map.shape[0]
        labels = [first_argmax(v.map) for _, v in merged]
        if len(merged) == 1:
            return labels[0]
        soft = soft_merge([Vote(w, v.map, v.present) for w, v in merged]).map
        return majority(labels, [w for w, _ in merged], n_channels, soft)
    raise ValueError(f"unknown fusion mode {mode!r}")


# ---- one frame, many settings --------------------------------------------------------------------------------
@dataclass(frozen=True)
class MemberUse:
    """How one member takes part in one setting."""

    name: str
    weight: float
    scale: float = 1.0
    bias: float = 0.0

    @property
    def key(self) -> tuple:
        return (self.name, self.scale, self.bias)


@dataclass(frozen=True)
class GroupUse:
    name: str
    members: tuple[MemberUse, ...]

    @property
    def weight(self) -> float:
        """The group's configured weight: the sum of its members' weights (present on this frame or not)."""
        return float(sum(m.weight for m in self.members))


class FrameFusion:
    """One frame's member maps, computed once and fused under any number of settings.

    ``maps(name, scale, bias)`` must return ``(map (C, H, W), present (C,))`` for the frame's channel layout,
    or None when that member has no logits for this frame. Maps, their labels and the disagreement pixels of
    each set of members are cached, so a setting costs only the fusion of the pixels where members disagree.
    """

    def __init__(self, maps, n_channels: int, hw: tuple[int, int]):
        self._maps = maps
        self.n_channels = n_channels
        self.hw = (int(hw[0]), int(hw[1]))
        self._entries: dict[tuple, tuple | None] = {}
        self._split: dict[tuple, tuple] = {}

    def _entry(self, key: tuple):
        if key not in self._entries:
            got = self._maps(*key)
            if got is not None:
                mp, present = got
                got = (mp, present, first_argmax(mp))
            self._entries[key] = got
        return self._entries[key]

    def _disagreement(self, keys: tuple) -> tuple:
        """(base label map, flat indices of the pixels to fuse, {key: gathered (C, P) map}) of a member set."""
        hit = self._split.get(keys)
        if hit is not None:
            return hit
        entries = [self._entry(k) for k in keys]
        base = entries[0][2]
        if len(entries) == 1:
            hit = (base, None, {})
        else:
            if all(e[1].all() for e in entries):
                agree = torch.ones(self.hw, dtype=torch.bool)
                for e in entries[1:]:
                    agree &= e[2] == base
                idx = torch.nonzero(~agree.view(-1)).view(-1)
            else:   # a member abstains on some object: its absence can change the result anywhere
                idx = torch.arange(self.hw[0] * self.hw[1])
            gathered = {k: e[0].reshape(self.n_channels, -1)[:, idx] for k, e in zip(keys, entries)} if idx.numel() else {}
            hit = (base, idx, gathered)
        self._split[keys] = hit
        return hit

    def fuse(self, groups: Sequence[GroupUse], mode: str) -> torch.Tensor:
        """Fused channel-index map (H, W) uint8 of this frame under one setting."""
        if mode not in MODES:
            raise ValueError(f"unknown fusion mode {mode!r}")
        uses = [(g, m) for g in groups for m in g.members if m.weight > 0 and self._entry(m.key) is not None]
        if not uses:
            raise ValueError("no member with a positive weight is available on this frame")
        keys = tuple(dict.fromkeys(m.key for _, m in uses))
        base, idx, gathered = self._disagreement(keys)
        if idx is None or idx.numel() == 0:
            return base
        votes = []
        for g in groups:
            vs = [Vote(m.weight, gathered[m.key], self._entry(m.key)[1]) for gg, m in uses if gg is g]
            if vs:
                votes.append(GroupVotes(g.name, g.weight, vs))
        out = base.clone()
        out.view(-1)[idx] = fuse_channels(votes, mode)
        return out


def to_ids(channels: torch.Tensor, ids: Sequence[int]) -> np.ndarray:
    """Channel-index map -> uint8 object-id map (channel 0 -> 0, channel c -> ids[c-1])."""
    lut = np.array([0, *ids], dtype=np.uint8)
    return lut[channels.numpy()]
