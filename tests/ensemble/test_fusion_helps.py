"""Fusion helps: three members with independent, realistic errors (see synthetic.py), stored as real logit
stores, on two shared clips (davis2016/libby, pumavos/chair) and two videos of the shared synthetic benchmark.

Soft and majority voting with equal weights must beat the best single member's J&F (DAVIS protocol, the
project's evaluator) on each subset, and the sweep must rank first a setting that favours the least noisy
member. The weight candidates give each member the lead in turn, so "favours good" is a real choice.
"""
from __future__ import annotations

import itertools

import numpy as np

from data.dataset import VOSDataset
from ensemble.config import FusionConfig
from ensemble.grid import make_settings
from ensemble.sweep import sweep

THIRD = 1.0 / 3.0


def _weights():
    vertices = [(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)]
    leads = sorted(set(itertools.permutations((0.4, 0.3, 0.3))) | set(itertools.permutations((0.5, 0.25, 0.25))))
    return vertices + [(THIRD, THIRD, THIRD)] + leads


def _subset_score(result, videos) -> float:
    """DAVIS J&F over the (video, object) pairs of some videos, from the evaluator's per-object table."""
    po = result.per_object
    sub = po[po["video"].isin(videos)]
    return float(((sub["J_davis"] + sub["F_davis"]) / 2).mean())


def test_soft_and_majority_beat_the_best_member_and_sweep_favours_the_least_noisy(proof_members, capsys):
    tmp, stores, root, subsets = proof_members
    cfg = FusionConfig.from_dict({"members": [{"store": str(p), "name": n} for n, p in stores.items()]})
    settings = make_settings(cfg, ["soft", "majority"], _weights())
    res = sweep(cfg, settings, VOSDataset(root), protocol="davis")
    idx = {(s.mode, s.weights): i for i, s in enumerate(settings)}
    report = {}
    for subset, videos in [("all", sum(subsets.values(), []))] + list(subsets.items()):
        single = {n: _subset_score(res.results[idx[("soft", w)]], videos)
                  for n, w in zip(cfg.names, [(1.0, 0, 0), (0, 1.0, 0), (0, 0, 1.0)])}
        soft = _subset_score(res.results[idx[("soft", (THIRD,) * 3)]], videos)
        major = _subset_score(res.results[idx[("majority", (THIRD,) * 3)]], videos)
        report[subset] = (single, soft, major)
        best_single = max(single.values())
        assert single["good"] == best_single, f"{subset}: the least noisy member must be the best alone {single}"
        assert soft > best_single + 0.005, f"{subset}: soft voting {soft:.4f} does not beat {best_single:.4f}"
        assert major > best_single + 0.005, f"{subset}: majority voting {major:.4f} does not beat {best_single:.4f}"
    best = res.best
    w = dict(zip(cfg.names, best.weights))
    assert w["good"] > w["drift"] and w["good"] > w["swap"], f"best setting {best} does not favour 'good'"
    assert res.table.iloc[0]["score"] > max(report["all"][0].values())
    with capsys.disabled():   # the numbers the final report quotes
        for subset, (single, soft, major) in report.items():
            print(f"\n[fusion-helps] {subset}: members " + ", ".join(f"{n} {100 * v:.2f}" for n, v in single.items())
                  + f"; soft(1/3 each) {100 * soft:.2f}; majority(1/3 each) {100 * major:.2f}")
        print(f"[fusion-helps] sweep best: {res.table.iloc[0]['label']} {100 * res.table.iloc[0]['score']:.2f}")


def test_synthetic_members_have_the_intended_errors(proof_members):
    """Guard for the proof's premise: each member really is wrong somewhere, and differently."""
    tmp, stores, root, _ = proof_members
    cfg = FusionConfig.from_dict({"members": [{"store": str(p), "name": n} for n, p in stores.items()]})
    settings = make_settings(cfg, ["soft"], [(1.0, 0, 0), (0, 1.0, 0), (0, 0, 1.0)])
    res = sweep(cfg, settings, VOSDataset(root), protocol="davis", videos=["libby"])
    per_frame = [r.per_frame.set_index("frame")["J_davis"] for r in res.results]
    bad = [set(np.flatnonzero(pf.to_numpy() < 0.5)) for pf in per_frame]
    for name, b in zip(cfg.names, bad):
        assert b, f"member {name} has no grossly wrong frame"
    assert not (bad[0] & bad[1] & bad[2]), "the members' gross errors must not coincide"
