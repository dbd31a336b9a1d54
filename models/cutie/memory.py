"""Cutie's memory: pixel-level working/long-term key-value memory, sensory memory, object memory.

Buckets: objects that are first memorised on the same frame share one memory *bucket*, i.e. the same
keys (the frames memorised since they appeared). Objects given later get a new bucket whose first
frame is again permanent. Values are stored per bucket as one tensor (B, K_bucket, C, N), so reading a
bucket is a single matmul against its affinity.

Working memory: the first memory frame of a bucket is permanent; the rest is FIFO-trimmed to
``max_mem_frames - 1`` frames, or, with long-term memory, consolidated into prototypes (XMem-style)
when it reaches ``long_term.max_mem_frames - 1`` frames, keeping the newest ``min_mem_frames - 1``.
Long-term memory is pruned by usage (accumulated affinity / age) when it gets too large.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from .config import CutieSettings


def similarity(mem_key: torch.Tensor, mem_shrinkage: torch.Tensor, query_key: torch.Tensor,
               query_selection: torch.Tensor) -> torch.Tensor:
    """Anisotropic negative squared L2 distance, scaled by the memory shrinkage: (B, N, HW).

    mem_key (B,CK,N), mem_shrinkage (B,1,N), query_key/selection (B,CK,HW).
    -sum_c e_q (k_m - k_q)^2 is expanded so that it costs two matmuls.
    """
    ck = mem_key.shape[1]
    mk = mem_key.transpose(1, 2)
    a_sq = mk.pow(2) @ query_selection
    two_ab = 2 * (mk @ (query_key * query_selection))
    b_sq = (query_selection * query_key.pow(2)).sum(1, keepdim=True)
    sim = -a_sq + two_ab - b_sq
    return sim * mem_shrinkage.flatten(start_dim=1).unsqueeze(2) / math.sqrt(ck)


def topk_softmax(sim: torch.Tensor, top_k: int) -> torch.Tensor:
    """Softmax over the top-k memory entries of every query pixel (dim 1); others get 0. In place on ``sim``.

    The max is subtracted before exp (the reference does not); equal up to rounding, but safe
    against underflow when every candidate is far away.
    """
    values, indices = torch.topk(sim, k=min(top_k, sim.shape[1]), dim=1)
    x = torch.exp(values - values.max(dim=1, keepdim=True)[0])
    x /= torch.sum(x, dim=1, keepdim=True)
    return sim.zero_().scatter_(1, indices, x)


def full_softmax(sim: torch.Tensor) -> torch.Tensor:
    """Softmax over dim 1 (all memory entries)."""
    x = torch.exp(sim - torch.max(sim, dim=1, keepdim=True)[0])
    return x / torch.sum(x, dim=1, keepdim=True)


def readout(affinity: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """values (B, K, C, N) or (B, C, N) times affinity (B, N, M) -> (B, K, C, M) / (B, C, M)."""
    if values.dim() == 3:
        return values @ affinity
    b, k, c, n = values.shape
    return (values.reshape(b, k * c, n) @ affinity).view(b, k, c, -1)


@dataclass
class PreparedKeys:
    """What the similarity needs from a memory, computed once per memory state (it changes every few frames,
    the query every frame): ``rhs`` (B, 2CK, N) = [-k^2; 2k] and ``scale`` (B, 1, N) = shrinkage / sqrt(CK)."""

    key: torch.Tensor
    shrinkage: torch.Tensor
    rhs: torch.Tensor
    scale: torch.Tensor


def prepare_keys(mem_key: torch.Tensor, mem_shrinkage: torch.Tensor) -> PreparedKeys:
    ck = mem_key.shape[1]
    rhs = torch.cat([-mem_key.pow(2), 2 * mem_key], dim=1)
    return PreparedKeys(mem_key, mem_shrinkage, rhs, mem_shrinkage.flatten(start_dim=1).unsqueeze(1) / math.sqrt(ck))


def similarity_by_query(prepared: PreparedKeys, query_key: torch.Tensor, query_selection: torch.Tensor) -> torch.Tensor:
    """``similarity`` transposed, (B, HW, N): one row per query pixel, so top-k runs along contiguous memory.

    The three terms of the expanded distance are one matmul over [e_q; e_q k_q] (2CK channels) plus -b^2.
    """
    lhs = torch.cat([query_selection, query_key * query_selection], dim=1).transpose(1, 2)
    b_sq = (query_selection * query_key.pow(2)).sum(1).unsqueeze(2)
    return torch.baddbmm(-b_sq, lhs, prepared.rhs).mul_(prepared.scale)


def topk_by_query(sim_t: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax weights over each query pixel's top-k memory entries: (weights, indices), both (B, HW, k)."""
    values, indices = torch.topk(sim_t, k=min(top_k, sim_t.shape[-1]), dim=-1)
    x = torch.exp(values - values.max(dim=-1, keepdim=True)[0])
    x /= torch.sum(x, dim=-1, keepdim=True)
    return x, indices


def sparse_readout(weights: torch.Tensor, indices: torch.Tensor, values_t: torch.Tensor) -> torch.Tensor:
    """Top-k readout as a sparse (HW x N, k entries per row) times dense (N x KC) product: (B, HW, KC).

    The dense affinity is all zeros but k entries per query pixel; multiplying it densely costs N/k times
    more (N = 1620 tokens per 480p memory frame, k = 30).
    """
    b, hw, k = weights.shape
    rows = torch.arange(0, hw * k + 1, k, device=weights.device)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        for bi in range(b):
            a = torch.sparse_csr_tensor(rows, indices[bi].flatten(), weights[bi].flatten(), size=(hw, values_t.shape[1]),
                                        check_invariants=False)
            out.append(a @ values_t[bi])
    return torch.stack(out, 0)


class KeyValueStore:
    """Keys, shrinkage (and for working memory: selection and usage) per bucket; values per bucket.

    Layout along the last (token) axis: [permanent part | temporary part]. Selection and usage
    counters only cover the temporary part.
    """

    def __init__(self, *, save_selection: bool, save_usage: bool):
        self.save_selection = save_selection
        self.save_usage = save_usage
        self.buckets: dict[int, list[int]] = {}  # bucket id -> object ids (fixed order)
        self.k: dict[int, torch.Tensor] = {}  # (B, CK, N)
        self.s: dict[int, torch.Tensor] = {}  # (B, 1, N)
        self.v: dict[int, torch.Tensor] = {}  # (B, K_bucket, CV, N)
        self.e: dict[int, torch.Tensor] = {}  # (B, CK, N_temp)
        self.use_cnt: dict[int, torch.Tensor] = {}  # (B, N_temp)
        self.life_cnt: dict[int, torch.Tensor] = {}  # (B, N_temp)
        self.perm_end: dict[int, int] = {}
        self._next_id = 0

    # -- queries ---------------------------------------------------------------------------------
    def size(self, bucket: int) -> int:
        return self.k[bucket].shape[-1] if bucket in self.k else 0

    def non_perm_size(self, bucket: int) -> int:
        return self.size(bucket) - self.perm_end.get(bucket, 0)

    def engaged(self, bucket: int | None = None) -> bool:
        return bool(self.buckets) if bucket is None else bucket in self.buckets

    def bucket_of(self, obj: int) -> int | None:
        for bucket, objs in self.buckets.items():
            if obj in objs:
                return bucket
        return None

    def usage(self, bucket: int) -> torch.Tensor:
        """Normalised usage (accumulated affinity / life time) of the temporary part."""
        if not self.save_usage:
            raise RuntimeError("usage is not counted in this memory store (long_term.count_usage=False)")
        return self.use_cnt[bucket] / self.life_cnt[bucket]

    # -- updates ---------------------------------------------------------------------------------
    def add(self, key: torch.Tensor, shrinkage: torch.Tensor, values: torch.Tensor, obj_ids: Sequence[int],
            selection: torch.Tensor | None = None, *, permanent: str = "no", bucket: int | None = None) -> None:
        """Append one frame (or a set of prototypes) of N tokens.

        values: (B, K, CV, N) for ``obj_ids``. Every object of an existing bucket must be present;
        objects not in any bucket form one new bucket. ``permanent``: 'no', 'first' (permanent only if
        the bucket is new/empty) or 'all'. ``bucket`` forces all objects into that bucket id (used to
        keep long-term bucket ids in sync with working memory).
        """
        if permanent not in ("no", "first", "all"):
            raise ValueError(f"permanent must be 'no', 'first' or 'all', got {permanent!r}")
        index = {obj: i for i, obj in enumerate(obj_ids)}
        if bucket is not None:
            groups = {bucket: list(obj_ids)}
        else:
            groups = {}
            for b_id, objs in self.buckets.items():
                missing = [o for o in objs if o not in index]
                if missing:
                    raise ValueError(f"memory update lacks objects {missing} of bucket {b_id}")
                groups[b_id] = objs
            new = [o for o in obj_ids if self.bucket_of(o) is None]
            if new:
                groups[self._next_id] = new
        for b_id, objs in groups.items():
            if b_id not in self.buckets:
                self.buckets[b_id] = list(objs)
                self.perm_end[b_id] = 0
                self._next_id = max(self._next_id, b_id + 1)
            idx = [index[o] for o in self.buckets[b_id]]
            vals = values if idx == list(range(values.shape[1])) else values[:, idx]
            self._append(b_id, key, shrinkage, vals, selection, permanent)

    def _append(self, b_id, key, shrinkage, values, selection, permanent) -> None:
        n = key.shape[-1]
        as_perm = permanent == "all" or (permanent == "first" and self.perm_end[b_id] == 0)
        if as_perm:
            self.perm_end[b_id] += n
        for store, new in ((self.k, key), (self.s, shrinkage), (self.v, values)):
            if b_id not in store:
                store[b_id] = new
            else:
                store[b_id] = torch.cat([new, store[b_id]] if as_perm else [store[b_id], new], -1)
        if as_perm:
            return
        extras = []
        if self.save_selection:
            extras.append((self.e, selection))
        if self.save_usage:
            b = key.shape[0]
            extras.append((self.use_cnt, torch.zeros((b, n), device=key.device, dtype=torch.float32)))
            extras.append((self.life_cnt, torch.zeros((b, n), device=key.device, dtype=torch.float32) + 1e-7))
        for store, new in extras:
            store[b_id] = new if b_id not in store else torch.cat([store[b_id], new], -1)

    def update_usage(self, bucket: int, usage: torch.Tensor) -> None:
        """Accumulate usage (B, N) of a read over the whole bucket; ages the temporary entries by one."""
        if not self.save_usage:
            return
        usage = usage[:, self.perm_end[bucket]:]
        if usage.shape[-1] == 0:
            return
        self.use_cnt[bucket] += usage.view_as(self.use_cnt[bucket])
        self.life_cnt[bucket] += 1

    def _cut(self, bucket: int, start: int, end: int) -> None:
        """Drop temporary tokens [start, end) (start relative to the temporary part, end <= 0 from the end)."""
        p = self.perm_end[bucket]
        if end == 0:
            end = self.k[bucket].shape[-1] + 1  # no tail kept
        full = [self.k, self.s, self.v]
        for store in full:
            t = store[bucket]
            store[bucket] = torch.cat([t[..., : start + p], t[..., end:]], -1)
        temp = ([self.e] if self.save_selection else []) + ([self.use_cnt, self.life_cnt] if self.save_usage else [])
        for store in temp:
            t = store[bucket]
            store[bucket] = torch.cat([t[..., :start], t[..., end:]], -1)

    def sieve(self, bucket: int, start: int, end: int, min_size: int) -> None:
        """Remove temporary tokens [start, end) unless the temporary part has at most ``min_size`` tokens."""
        if self.non_perm_size(bucket) <= min_size:
            return
        self._cut(bucket, start, end)

    def remove_old(self, bucket: int, max_len: int) -> None:
        """FIFO: keep only the newest ``max_len`` temporary tokens."""
        self.sieve(bucket, 0, -max_len, max_len)

    def remove_obsolete(self, bucket: int, max_size: int) -> None:
        """Long-term pruning: keep the ``max_size`` most used tokens (per batch element, by usage order)."""
        if self.perm_end[bucket] != 0:
            raise RuntimeError("pruning by usage expects no permanent memory")
        usage = self.usage(bucket)
        keep = [torch.topk(usage[bi], k=min(max_size, usage.shape[-1])).indices for bi in range(usage.shape[0])]

        def take(t: torch.Tensor) -> torch.Tensor:
            return torch.stack([t[bi, ..., idx] for bi, idx in enumerate(keep)], 0)

        stores = [self.k, self.s, self.v, self.use_cnt, self.life_cnt] + ([self.e] if self.save_selection else [])
        for store in stores:
            store[bucket] = take(store[bucket])

    def temporary(self, bucket: int, end: int):
        """Temporary tokens [0, end) (end <= 0 counts from the end, 0 = all): k, s, e, v, usage."""
        p = self.perm_end[bucket]
        stop = None if end == 0 else end
        sl = slice(p, stop) if stop is not None else slice(p, None)
        sl_t = slice(0, stop)
        return (self.k[bucket][..., sl], self.s[bucket][..., sl],
                self.e[bucket][..., sl_t] if self.save_selection else None,
                self.v[bucket][..., sl], self.usage(bucket)[..., sl_t] if self.save_usage else None)


class MemoryManager:
    """All memories of one video and the transitions between them (see module docstring)."""

    def __init__(self, settings: CutieSettings, sensory_dim: int):
        self.settings = settings
        self.sensory_dim = sensory_dim
        self.top_k = settings.top_k
        self.use_long_term = settings.use_long_term
        lt = settings.long_term
        # frame counts exclude the permanent first frame
        if self.use_long_term:
            self.max_mem_frames = lt.max_mem_frames - 1
            self.min_mem_frames = lt.min_mem_frames - 1
            self.num_prototypes = lt.num_prototypes
            self.max_long_tokens = lt.max_num_tokens
            self.buffer_tokens = lt.buffer_tokens
        else:
            self.max_mem_frames = settings.max_mem_frames - 1
        self.hw: int | None = None
        self.sensory: dict[int, torch.Tensor] = {}  # obj -> (B, C, h, w)
        self.obj_v: dict[int, torch.Tensor] = {}  # obj -> (B, Q, C+1) running sums and area
        self.work = KeyValueStore(save_selection=self.use_long_term, save_usage=self.use_long_term)
        self.long = KeyValueStore(save_selection=False, save_usage=lt.count_usage) if self.use_long_term else None
        # per bucket, derived from the memory tensors and reused while they stay the same objects
        # (every change of a store replaces them): prepared keys, values as (B, N, K*C)
        self._keys_cache: dict[int, PreparedKeys] = {}
        self._values_t_cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def engaged(self) -> bool:
        return self.work.engaged()

    # -- sensory ---------------------------------------------------------------------------------
    def init_sensory(self, like_key: torch.Tensor, obj_ids: Sequence[int]) -> None:
        b, _, h, w = like_key.shape
        for obj in obj_ids:
            if obj not in self.sensory:
                self.sensory[obj] = torch.zeros((b, self.sensory_dim, h, w), device=like_key.device)

    def get_sensory(self, obj_ids: Sequence[int]) -> torch.Tensor:
        return torch.stack([self.sensory[o] for o in obj_ids], dim=1)

    def set_sensory(self, sensory: torch.Tensor, obj_ids: Sequence[int]) -> None:
        for i, obj in enumerate(obj_ids):
            self.sensory[obj] = sensory[:, i]

    # -- reading ---------------------------------------------------------------------------------
    def _affinity(self, bucket: int, query_key: torch.Tensor, selection: torch.Tensor):
        """Top-k affinity over (long-term +) working memory of a bucket, and its values; records usage.

        On CPU the affinity is kept sparse, as (weights, indices) of each query pixel's top-k entries;
        elsewhere it is the dense (B, N, HW) matrix.
        """
        work = self.work
        long_engaged = self.long is not None and self.long.engaged(bucket)
        if long_engaged:
            n_long = self.long.size(bucket)
            key = torch.cat([self.long.k[bucket], work.k[bucket]], -1)
            shrinkage = torch.cat([self.long.s[bucket], work.s[bucket]], -1)
            values = torch.cat([self.long.v[bucket], work.v[bucket]], -1)
        else:
            key, shrinkage, values = work.k[bucket], work.s[bucket], work.v[bucket]
        if query_key.device.type != "cpu":  # dense: one big matmul suits a GPU
            affinity = topk_softmax(similarity(key, shrinkage, query_key, selection), self.top_k)
            if self.use_long_term:
                self._record_usage(bucket, affinity.sum(dim=2), n_long if long_engaged else None)
            return affinity, values
        prepared = self._keys_cache.get(bucket)
        if prepared is None or prepared.key is not key or prepared.shrinkage is not shrinkage:
            prepared = self._keys_cache[bucket] = prepare_keys(key, shrinkage)
        weights, indices = topk_by_query(similarity_by_query(prepared, query_key, selection), self.top_k)
        if self.use_long_term:
            usage = torch.zeros(key.shape[0], key.shape[-1], device=key.device, dtype=weights.dtype)
            self._record_usage(bucket, usage.scatter_add_(1, indices.flatten(1), weights.flatten(1)),
                               n_long if long_engaged else None)
        return (weights, indices), values

    def _record_usage(self, bucket: int, usage: torch.Tensor, n_long: int | None) -> None:
        if n_long is not None:
            self.work.update_usage(bucket, usage[:, n_long:])
            self.long.update_usage(bucket, usage[:, :n_long])
        else:
            self.work.update_usage(bucket, usage)

    def _values_t(self, bucket: int, values: torch.Tensor) -> torch.Tensor:
        """(B, K, C, N) values as (B, N, K*C), cached while the bucket's values tensor is unchanged."""
        cached = self._values_t_cache.get(bucket)
        if cached is None or cached[0] is not values:
            b, k, c, n = values.shape
            cached = self._values_t_cache[bucket] = (values, values.permute(0, 3, 1, 2).reshape(b, n, k * c))
        return cached[1]

    def _readout(self, bucket: int, affinity, values: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """(B, K, C, h, w) visual readout, channels-last like the network's maps."""
        if isinstance(affinity, torch.Tensor):
            b, k = values.shape[:2]
            return readout(affinity, values).view(b, k, -1, h, w)
        b, k, c, _ = values.shape
        out = sparse_readout(*affinity, self._values_t(bucket, values))  # (B, HW, K*C)
        return out.view(b, h, w, k, c).permute(0, 3, 1, 2, 4).contiguous().permute(0, 1, 4, 2, 3)

    def read(self, network, pix_feat: torch.Tensor, query_key: torch.Tensor, selection: torch.Tensor,
             last_mask: torch.Tensor, obj_ids: Sequence[int], *, chunk_size: int = -1) -> torch.Tensor:
        """Memory readout for all objects, in ``obj_ids`` order: (B, K, C, h, w).

        last_mask: previous frame's object probabilities (B, K, H, W) in ``obj_ids`` order.
        Per bucket: one affinity, one value matmul, pixel fusion, then the object transformer over the
        bucket's objects together (its attention masks compare the objects of the bucket).
        """
        b, _, h, w = pix_feat.shape
        query_key = query_key.flatten(start_dim=2)
        selection = selection.flatten(start_dim=2)
        last_mask16 = F.interpolate(last_mask, size=(h, w), mode="area")
        position = {obj: i for i, obj in enumerate(obj_ids)}
        out: list[torch.Tensor | None] = [None] * len(obj_ids)
        for bucket, objs in self.work.buckets.items():
            affinity, values = self._affinity(bucket, query_key, selection)
            visual = self._readout(bucket, affinity, values, h, w)
            idx = [position[o] for o in objs]
            fused = network.pixel_fusion(pix_feat, visual, self.get_sensory(objs), last_mask16[:, idx],
                                         chunk_size=chunk_size)
            obj_memory = torch.stack([self.obj_v[o] for o in objs], dim=1)
            result = network.readout_query(fused, obj_memory)
            for j, i in enumerate(idx):
                out[i] = result[:, j]
        missing = [obj_ids[i] for i, r in enumerate(out) if r is None]
        if missing:
            raise RuntimeError(f"objects {missing} have no memory")
        if len(self.work.buckets) == 1 and idx == list(range(len(obj_ids))):
            return result  # the usual case: keeps the transformer's channels-last layout, no copy
        # (B, K, h, w, C) memory order, seen as (B, K, C, h, w): the channels-last layout the decoder expects
        return torch.stack([r.permute(0, 2, 3, 1) for r in out], dim=1).permute(0, 1, 4, 2, 3)

    # -- writing ---------------------------------------------------------------------------------
    def add_memory(self, key: torch.Tensor, shrinkage: torch.Tensor, mask_value: torch.Tensor,
                   obj_value: torch.Tensor, obj_ids: Sequence[int], selection: torch.Tensor, *,
                   permanent: str = "first") -> None:
        """Memorise one frame: key (B,CK,h,w), mask_value (B,K,CV,h,w), obj_value (B,K,Q,C+1)."""
        if self.hw is None:
            self.hw = mask_value.shape[-2] * mask_value.shape[-1]
            self.max_work_tokens = self.max_mem_frames * self.hw
            if self.use_long_term:
                self.min_work_tokens = self.min_mem_frames * self.hw
        for i, obj in enumerate(obj_ids):
            summary = obj_value[:, i]
            self.obj_v[obj] = self.obj_v[obj] + summary if obj in self.obj_v else summary.clone()
        self.work.add(key.flatten(start_dim=2), shrinkage.flatten(start_dim=2), mask_value.flatten(start_dim=3),
                      obj_ids, selection.flatten(start_dim=2) if self.use_long_term else None,
                      permanent=permanent)
        for bucket in list(self.work.buckets):
            if not self.use_long_term:
                self.work.remove_old(bucket, self.max_work_tokens)
            elif self.work.non_perm_size(bucket) >= self.max_work_tokens:
                if self.long.non_perm_size(bucket) >= self.max_long_tokens - self.num_prototypes:
                    self.long.remove_obsolete(bucket, self.max_long_tokens - self.num_prototypes - self.buffer_tokens)
                self._consolidate(bucket)

    def _consolidate(self, bucket: int) -> None:
        """Turn all but the newest ``min_mem_frames - 1`` temporary frames into long-term prototypes."""
        key, shrinkage, sel, values, usage = self.work.temporary(bucket, -self.min_work_tokens)
        num = min(self.num_prototypes, key.shape[-1])
        picks = [torch.topk(usage[bi], k=num, dim=-1, sorted=True).indices for bi in range(key.shape[0])]
        proto_key = torch.stack([key[bi, :, idx] for bi, idx in enumerate(picks)], 0)
        proto_sel = torch.stack([sel[bi, :, idx] for bi, idx in enumerate(picks)], 0)
        # potentiation: prototypes read values and shrinkage from all candidates
        affinity = full_softmax(similarity(key, shrinkage, proto_key, proto_sel))
        proto_values = readout(affinity, values)
        proto_shrinkage = readout(affinity, shrinkage)
        self.work.sieve(bucket, 0, -self.min_work_tokens, min_size=self.min_work_tokens)
        self.long.add(proto_key, proto_shrinkage, proto_values, self.work.buckets[bucket], bucket=bucket)
