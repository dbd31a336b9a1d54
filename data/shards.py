"""Deterministic sharding of a video list, balanced by frame count.

Every worker computes the same assignment from the same inputs, so shards need no coordination: a Slurm array
task or one process per GPU just passes ``--shard i/n``.
"""
from __future__ import annotations

import heapq
import re
from typing import Mapping

from .errors import MassegError


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/n"`` (0 <= i < n) -> (i, n); None -> (0, 1)."""
    if text is None:
        return 0, 1
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m or int(m.group(2)) < 1 or int(m.group(1)) >= int(m.group(2)):
        raise MassegError(f"bad shard {text!r}", fix="write it as i/n with 0 <= i < n, e.g. 0/4")
    return int(m.group(1)), int(m.group(2))


def assign_shards(frame_counts: Mapping[str, int], n: int) -> list[list[str]]:
    """Longest-processing-time-first: videos by descending length (name breaks ties) go to the lightest shard
    (lowest index breaks ties). Each shard keeps the input order of its videos."""
    order = {v: i for i, v in enumerate(frame_counts)}
    heap = [(0, k) for k in range(n)]
    shards: list[list[str]] = [[] for _ in range(n)]
    for video in sorted(frame_counts, key=lambda v: (-frame_counts[v], v)):
        load, k = heapq.heappop(heap)
        shards[k].append(video)
        heapq.heappush(heap, (load + frame_counts[video], k))
    return [sorted(s, key=order.__getitem__) for s in shards]


def shard_videos(frame_counts: Mapping[str, int], shard: str | tuple[int, int] | None) -> list[str]:
    i, n = parse_shard(shard) if not isinstance(shard, tuple) else shard
    if n == 1:
        return list(frame_counts)
    return assign_shards(frame_counts, n)[i]
