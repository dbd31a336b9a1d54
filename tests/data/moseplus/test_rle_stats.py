"""COCO RLE checking/decoding and the difficulty measures, on hand-made inputs."""
from __future__ import annotations

import numpy as np
import pytest

from data.errors import DatasetError
from data.moseplus import rle, stats
from data.moseplus.sources import safe_name


def _mask(seed=0, h=13, w=17):
    return np.random.default_rng(seed).random((h, w)) > 0.6


def test_string_counts_match_pycocotools():
    from pycocotools import mask as mu
    for seed in range(5):
        m = _mask(seed)
        enc = mu.encode(np.asfortranarray(m.astype(np.uint8)))
        counts = rle.string_counts(enc["counts"].decode())
        assert sum(counts) == m.size
        flat = m.ravel(order="F")
        assert counts[0] == int(np.argmax(flat)) if flat.any() else counts == [m.size]
        out = rle.decode({"size": [13, 17], "counts": enc["counts"].decode()}, "x.json", "obj")
        assert np.array_equal(out, m)


def test_uncompressed_counts_decode():
    m = np.zeros((4, 5), bool)
    m[1:3, 2:4] = True
    flat = m.ravel(order="F").tolist()
    counts, cur, run = [], False, 0
    for v in flat:
        if v == cur:
            run += 1
        else:
            counts.append(run)
            cur, run = v, 1
    counts.append(run)
    assert np.array_equal(rle.decode({"size": [4, 5], "counts": counts}, "a.json", "o"), m)


@pytest.mark.parametrize("bad", [
    {"size": [13, 17], "counts": "~~"},             # not RLE digits
    {"size": [13, 17], "counts": [5, 3]},           # too few pixels
    {"size": [13, 17], "counts": [300, -79]},       # negative run
    {"size": [13], "counts": "PP"},                 # no width
    {"counts": "PP"},                               # no size
])
def test_corrupt_rle_is_a_clear_error(bad):
    with pytest.raises(DatasetError) as exc:
        rle.decode(bad, "/data/ann.json", "frame 3 object 1")
    assert "/data/ann.json" in str(exc.value) and "frame 3 object 1" in str(exc.value)


def test_truncated_string_is_caught():
    from pycocotools import mask as mu
    enc = mu.encode(np.asfortranarray(_mask(1).astype(np.uint8)))["counts"].decode()
    with pytest.raises(DatasetError, match="corrupt RLE"):
        rle.decode({"size": [13, 17], "counts": enc[:-2]}, "a.json", "o")


def test_size_mismatch_with_frame():
    with pytest.raises(DatasetError, match="17x13 but the frames are 20x10"):
        rle.decode({"size": [13, 17], "counts": [13 * 17]}, "a.json", "o", size=(10, 20))


def test_measures_by_hand():
    f = lambda *objs: {o[0]: o[1:] for o in objs}  # noqa: E731  id -> (area, y0, x0, y1, x1)
    big, small = (400, 0, 0, 20, 20), (4, 30, 30, 32, 32)
    infos = [f((1, *big), (2, *small)), f((1, *big)), f((1, 150, 0, 0, 20, 20), (2, *small)),
             f((1, *big), (2, 9, 5, 5, 8, 8))]
    m = stats.measure(infos, 1000)
    assert m["objects"] == 2 and m["crowding"] == pytest.approx(7 / 4) and m["max_visible"] == 2
    assert m["small_share"] == pytest.approx(4 / 1000)      # object 2's median area
    assert m["overlap_frac"] == pytest.approx(1 / 4)        # frame 3: object 2 inside object 1's box
    assert m["area_drops"] == 1                              # 400 -> 150
    assert (m["disappearances"], m["reappearances"]) == (1, 1)
    assert stats.criteria(m) == ["occlusion", "disappearance", "small"]
    assert stats.criteria(m, {"occlusion_overlap_frac": 0.5, "occlusion_area_drops": 2, "crowding": 1.5}) == \
        ["disappearance", "small", "crowding"]


def test_frame_info_boxes_and_large_ids():
    lab = np.zeros((6, 8), np.int64)
    lab[1:3, 2:5] = 7
    lab[4, 0] = 70000  # beyond the bincount fast path
    info = stats.frame_info(lab)
    assert info == {7: (6, 1, 2, 3, 5), 70000: (1, 4, 0, 5, 1)}
    assert stats.frame_info(np.zeros((3, 3), np.int32)) == {}


def test_safe_names():
    assert safe_name("YFCC100M_v_2a/b c") == "YFCC100M_v_2a_b_c"
    assert safe_name("..") == "clip"
