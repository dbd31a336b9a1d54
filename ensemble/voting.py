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
  the weighted mean over the group maps; majority voting gives each group one vote.

Where every member with a positive weight has the same label and all of them have every object, any weighted
mean (and any vote) has that label too, so only the pixels where members disagree are fused
(:class:`FrameFusion`). One member alone is therefore its own label map, bit for bit.

Many settings of one frame are fused as a batch (leading dim S): settings that differ only in their numbers
run the same sequence of element-wise multiplies and adds, each rounded on its own (no fused multiply-add), so
a setting's labels do not depend on the batch or on where a pixel sits in the array: ``fuse`` (one setting)
and the sweep (many) get the same labels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .ops import first_argmax

TIE_RTOL = 1e-9
MODES = ("soft", "majority")


# ---- batched primitives (leading dim S = settings) -----------------------------------------------------------
def soft_coefs(weights: np.ndarray, present: np.ndarray) -> torch.Tensor:
    """(S, M) weights, (M, C) presence -> (S, M, C) float32 coefficients of the per-channel weighted mean over
    the members that have the channel (0 for a member that abstains)."""
    weights = np.asarray(weights, np.float64)
    present = np.asarray(present, bool)
    wsum = np.zeros((weights.shape[0], present.shape[1]))
    for j in range(present.shape[0]):                 # member order, as a sequential sum
        wsum = wsum + weights[:, j:j + 1] * present[j][None]
    coef = np.where(present[None], weights[:, :, None] / np.where(wsum > 0, wsum, 1.0)[:, None, :], 0.0)
    return torch.from_numpy(coef.astype(np.float32))


def weighted_sum(maps: Sequence[torch.Tensor], coefs: torch.Tensor, spatial: int) -> torch.Tensor:
    """sum_j maps[j] * coefs[:, j] as separate multiplies and adds, in member order -> (S, C, *spatial dims).

    ``maps[j]`` is (C, ...) (shared by all settings) or (S, C, ...), with ``spatial`` trailing dims."""
    out = None
    for j, m in enumerate(maps):
        c = coefs[:, j].reshape(coefs.shape[0], coefs.shape[2], *([1] * spatial))
        term = m * c
        out = term if out is None else out.add_(term)
    return out


def _argmax_c(x: torch.Tensor, batched: bool) -> torch.Tensor:
    """First-maximum channel of a (C, ...) map, or of each (S, C, ...) map when ``batched``."""
    return first_argmax(x.transpose(0, 1)) if batched else first_argmax(x)


def majority_batch(labels: Sequence[torch.Tensor], weights: np.ndarray, n_channels: int,
                   soft: torch.Tensor | None) -> torch.Tensor:
    """Weighted plurality, batched. ``labels[g]``: (S, ...) channel maps of group g; ``weights``: (S, G) float64;
    ``soft``: (S, C, ...) soft-voting maps that break ties (None: ties go to the lower channel)."""
    weights = np.asarray(weights, np.float64)
    shape = tuple(labels[0].shape)                   # (S, ...)
    S = shape[0]
    score = torch.zeros((S, n_channels) + shape[1:], dtype=torch.float64)
    for g, lab in enumerate(labels):
        w = torch.from_numpy(weights[:, g].copy()).view(S, 1, *([1] * (len(shape) - 1)))
        score.scatter_add_(1, lab.long().unsqueeze(1), w.expand((S, 1) + shape[1:]).contiguous())
    tol = torch.from_numpy(TIE_RTOL * weights.sum(axis=1)).view(S, *([1] * (len(shape) - 1)))
    best = torch.amax(score, dim=1) - tol
    tied = score >= best.unsqueeze(1)
    if soft is None:
        return first_argmax(tied.to(torch.uint8).transpose(0, 1))
    # among the tied labels, the most probable under soft voting (probabilities are >= 0, so -1 masks out)
    return first_argmax(torch.where(tied, soft, torch.full_like(soft, -1.0)).transpose(0, 1))


# ---- single-setting forms (the reference semantics, used by tests) --------------------------------------------
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
    present = np.stack([v.present for v in votes])
    coefs = soft_coefs(np.array([[v.weight for v in votes]]), present)
    return Vote(total, weighted_sum([v.map for v in votes], coefs, votes[0].map.ndim - 1)[0], present.any(0))


def majority(labels: Sequence[torch.Tensor], weights: Sequence[float], n_channels: int,
             soft: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted plurality of channel-index maps of one shape (one setting); ties as in the module docstring."""
    if len(labels) == 1:
        return labels[0]
    out = majority_batch([lab[None] for lab in labels], np.array([list(weights)], np.float64), n_channels,
                         None if soft is None else soft[None])
    return out[0]


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
                got = (mp, np.asarray(present, bool), first_argmax(mp))
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
        return self.fuse_many([(groups, mode)])[0]

    def _plan(self, settings):
        """Settings with the same structure (mode, which members in which groups) run as one batch."""
        batches: dict[tuple, list] = {}
        for i, (groups, mode) in enumerate(settings):
            if mode not in MODES:
                raise ValueError(f"unknown fusion mode {mode!r}")
            active = []
            for g in groups:
                ms = tuple(m for m in g.members if m.weight > 0 and self._entry(m.key) is not None)
                if ms:
                    active.append((g, ms))
            if not active:
                raise ValueError("no member with a positive weight is available on this frame")
            structure = (mode, tuple(tuple(m.key for m in ms) for _, ms in active))
            batches.setdefault(structure, []).append(
                (i, [g.weight for g, _ in active], [[m.weight for m in ms] for _, ms in active]))
        return batches

    def disagreement(self, settings) -> tuple[torch.Tensor, torch.Tensor]:
        """(base (H, W), flat pixel indices): outside the indices every setting's label is the base's.

        The pixels where the members used by any of ``settings`` do not all agree (all pixels when one of them
        abstains on some object)."""
        keys = tuple(dict.fromkeys(k for structure in self._plan(settings) for ks in structure[1] for k in ks))
        base, idx, _ = self._disagreement(keys)
        if idx is None:
            idx = torch.zeros(0, dtype=torch.long)
        return base, idx

    def fuse_many(self, settings: Sequence[tuple[Sequence[GroupUse], str]],
                  at: torch.Tensor | None = None) -> torch.Tensor:
        """Fused channel-index maps of this frame under each (groups, mode) setting: (S, H, W) uint8, or
        (S, P) at the sorted flat pixel indices ``at`` (which must hold every pixel where settings may differ,
        e.g. ``disagreement(settings)[1]``)."""
        shape = (len(settings),) + (self.hw if at is None else (int(at.numel()),))
        out = torch.empty(shape, dtype=torch.uint8)
        for structure, rows in self._plan(settings).items():
            index = torch.tensor([r[0] for r in rows])
            base, idx, labels = self._fuse_batch(structure, rows)
            if at is None:
                block = base.reshape(1, -1).repeat(len(rows), 1)
                if labels is not None:
                    block[:, idx] = labels
                out[index] = block.view((len(rows),) + self.hw)
            else:
                block = base.reshape(-1)[at].reshape(1, -1).repeat(len(rows), 1)
                if labels is not None:
                    block[:, torch.searchsorted(at, idx)] = labels
                out[index] = block
        return out

    def _fuse_batch(self, structure, rows):
        """(base map, pixel indices, (S, P) fused labels there or None) of one batch of settings."""
        mode, group_keys = structure
        keys = tuple(dict.fromkeys(k for ks in group_keys for k in ks))
        base, idx, gathered = self._disagreement(keys)
        if idx is None or idx.numel() == 0:
            return base, idx, None
        S = len(rows)
        group_maps, group_present = [], []
        for g, ks in enumerate(group_keys):
            present = np.stack([self._entry(k)[1] for k in ks])
            if len(ks) == 1:
                group_maps.append(gathered[ks[0]])               # (C, P), shared by the batch
            else:
                w = np.array([r[2][g] for r in rows], np.float64)  # (S, M_g)
                group_maps.append(weighted_sum([gathered[k] for k in ks], soft_coefs(w, present), 1))
            group_present.append(present.any(0))
        if len(group_keys) == 1:
            m = group_maps[0]
            labels = _argmax_c(m, m.ndim == 3)
        else:
            gw = np.array([r[1] for r in rows], np.float64)       # (S, G)
            top = weighted_sum(group_maps, soft_coefs(gw, np.stack(group_present)), 1)   # (S, C, P)
            if mode == "soft":
                labels = first_argmax(top.transpose(0, 1))
            else:
                votes = [(_argmax_c(m, m.ndim == 3)).expand(S, -1) for m in group_maps]
                labels = majority_batch(votes, gw, self.n_channels, top)
        return base, idx, labels.expand(S, -1) if labels.ndim == 1 else labels


def to_ids(channels: torch.Tensor, ids: Sequence[int]) -> np.ndarray:
    """Channel-index map(s) -> uint8 object-id map(s) (channel 0 -> 0, channel c -> ids[c-1])."""
    lut = np.array([0, *ids], dtype=np.uint8)
    return lut[channels.numpy()]
