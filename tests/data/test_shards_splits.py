import pytest

from data.errors import MassegError
from data.shards import assign_shards, parse_shard, shard_videos
from data.splits import carve_split


def test_parse_shard():
    assert parse_shard("1/4") == (1, 4) and parse_shard(None) == (0, 1)
    for bad in ("4/4", "a/b", "1", "-1/2", "0/0"):
        with pytest.raises(MassegError):
            parse_shard(bad)


def test_assign_balanced_complete_deterministic():
    counts = {f"v{i}": n for i, n in enumerate([100, 90, 80, 10, 10, 10, 5, 300])}
    shards = assign_shards(counts, 3)
    flat = [v for s in shards for v in s]
    assert sorted(flat) == sorted(counts) and len(flat) == len(set(flat))
    loads = [sum(counts[v] for v in s) for s in shards]
    assert max(loads) == 300  # the long video alone; the rest split 135/170 (optimal)
    assert sorted(loads) == [135, 170, 300]
    assert shards == assign_shards(dict(counts), 3)
    assert shard_videos(counts, "2/3") == shards[2]
    assert shard_videos(counts, None) == list(counts)


def test_carve_split():
    vids = [f"v{i:03d}" for i in range(50)]
    held, rest = carve_split(vids, fraction=0.2, seed=3)
    assert len(held) == 10 and not set(held) & set(rest) and len(rest) == 40
    assert carve_split(list(reversed(vids)), count=10, seed=3)[0] == held
    assert carve_split(vids, count=10, seed=4)[0] != held
    with pytest.raises(MassegError):
        carve_split(vids)
    with pytest.raises(MassegError):
        carve_split(vids, count=50)
