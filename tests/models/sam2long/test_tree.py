"""SAM2Long's decisions in isolation (README 2.4.1 and 2.4.6-2.5 of ../shared/golden/sam2long), and the spill."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from models.sam2long.model import rank_weights
from models.sam2long.spill import LogitSpill
from models.sam2long.tree import Entry, Slot, Tree, score_entries, select_entries


def entries(rows):
    return [Entry(p, j, s, v) for p, j, s, v in rows]


def test_scores_are_float64_log_iou_sums_with_signed_iou():
    got = score_entries([0.0, -1.5], [[0.5, 0.25, 0.0], [1.0, 0.5, 0.125]], [1.2, -0.3])
    assert [(e.pathway, e.cand) for e in got] == [(p, j) for p in range(2) for j in range(3)]
    assert got[0].score == float(np.log(0.5 + 1e-5)) and got[2].score == float(np.log(1e-5))
    assert got[3].score == -1.5 + float(np.log(1.0 + 1e-5))
    assert [e.signed_iou for e in got] == [0.5, 0.25, 0.0, -1.0, -0.5, -0.125]  # pathway 1 has no object


def test_confident_frame_keeps_best_scores_duplicates_included():
    es = entries([(0, 0, -0.1, 0.9), (0, 1, -2.0, 0.1), (0, 2, -0.5, 0.6),
                  (1, 0, -0.1, 0.9), (1, 1, -2.0, 0.1), (1, 2, -0.5, 0.6)])
    kept, uncertain = select_entries(es, 3, 2.0, [2.5, -2.1])
    assert not uncertain
    # stable: the tie between the two identical pathways keeps pathway order
    assert [(e.pathway, e.cand) for e in kept] == [(0, 0), (1, 0), (0, 2)]


def test_uncertain_frame_dedups_on_rounded_signed_iou():
    es = entries([(0, 0, -0.10, 0.901), (0, 1, -3.0, 0.05), (0, 2, -0.20, 0.6),
                  (1, 0, -0.11, 0.899), (1, 1, -3.1, 0.05), (1, 2, -0.30, 0.4)])
    kept, uncertain = select_entries(es, 3, 2.0, [1.9, -1.0])  # max |score| 1.9 <= 2: uncertain
    assert uncertain
    # 0.899 rounds to 0.90 like 0.901: dropped; next distinct values are 0.6 and 0.4
    assert [(e.pathway, e.cand) for e in kept] == [(0, 0), (0, 2), (1, 2)]
    # the boundary is inclusive: |score| == U is uncertain
    assert select_entries(es, 3, 1.9, [1.9, -1.0])[1]


def test_uncertain_fill_up_gives_every_uncovered_pathway_its_best_child():
    # all children share one rounded IoU: dedup keeps one; pathways 1 and 2 then add their best child each
    es = entries([(p, j, -0.1 * (3 * p + j), 0.5) for p in range(3) for j in range(3)])
    kept, _ = select_entries(es, 3, 2.0, [1.0, 1.0, 1.0])
    assert [(e.pathway, e.cand) for e in kept] == [(0, 0), (1, 0), (2, 0)]


def _slot(iou, osl, parent=0, cand=0, acc=0.0, canon=0):
    return Slot(iou=iou, osl=osl, acc=acc, parent=parent, cand=cand, record=-1, canon=canon)


def test_memory_frames_skip_invalid_cap_and_always_end_with_previous_frame():
    tree = Tree(start=0, num_pathway=1, iou_threshold=0.1, max_valid=3)
    tree.frames[1] = [_slot(0.8, 1.0)]
    for t in range(2, 9):
        tree.frames[t] = [_slot(0.05 if t in (4, 8) else 0.8, -1.0 if t == 6 else 1.0)]
    # frame 8 is invalid (IoU 0.05 <= 0.1) but still appended as the newest memory
    assert [f for f, _ in tree.memory(9, 0)] == [3, 5, 7, 8]  # 3 valid kept (cap), then 8
    tree.max_valid = 15
    assert [f for f, _ in tree.memory(9, 0)] == [1, 2, 3, 5, 7, 8]  # 4 (IoU), 6 (object score) are skipped
    assert [f for f, _ in tree.memory(8, 0)] == [1, 2, 3, 5, 7]
    assert [f for f, _ in tree.memory(2, 0)] == [1]


def test_memory_follows_each_pathway_history_and_backtrace_takes_slot_zero():
    tree = Tree(start=0, num_pathway=2, iou_threshold=0.1, max_valid=15)
    tree.frames[1] = [_slot(0.8, 1.0, canon=0)]
    tree.frames[2] = [_slot(0.8, 1.0, 0, 0, canon=1), _slot(0.01, 1.0, 1, 2, canon=2)]
    tree.frames[3] = [_slot(0.8, 1.0, 1, 0, canon=3), _slot(0.8, 1.0, 0, 1, canon=4)]
    # pathway 0 at frame 4 = slot 0 of frame 3, whose parent is slot 1 of frame 2 (invalid: skipped)
    assert [(f, s.canon) for f, s in tree.memory(4, 0)] == [(1, 0), (3, 3)]
    assert [(f, s.canon) for f, s in tree.memory(4, 1)] == [(1, 0), (2, 1), (3, 4)]
    assert tree.backtrace(3) == {0: -1, 1: 0, 2: 1, 3: 0}
    assert tree.live_canons(3) == {0, 1, 3, 4}  # slot 1 of frame 2 is no longer readable by anyone
    assert tree.backtrace(1) == {0: -1, 1: 0} and tree.backtrace(0) == {0: -1}


def test_rank_weights_follow_ascending_score_rank():
    w = rank_weights([10.0, 1.5, 2.5, 0.5])
    assert torch.equal(w, torch.linspace(0.95, 1.05, 4)[[3, 1, 2, 0]])
    assert torch.equal(rank_weights([10.0]), torch.tensor([0.95]))  # one pointer: the prompt's 0.95 (quirk)


def test_spill_round_trip_leaves_no_file(tmp_path):
    with LogitSpill((4, 5), tmp_path) as spill:
        a = np.arange(20, dtype=np.float32).reshape(4, 5)
        r0, r1 = spill.put(a), spill.put(torch.from_numpy(-a))
        assert (r0, r1) == (0, 1) and spill.bytes_on_disk == 160
        assert np.array_equal(spill.get(1), -a) and np.array_equal(spill.get(0), a)
        assert os.listdir(tmp_path) == []  # anonymous: never visible, cannot linger
        with pytest.raises(IndexError):
            spill.get(2)
    assert os.listdir(tmp_path) == []
