"""Exactness against the official evaluators' numbers on the shared synthetic benchmark (a CI-sized subset of
videos at 720p and 480p; `make bench` compares all 30).

Tolerance 1e-9 absolute: the golden CSVs are printed with 10 significant digits.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from submission.jf import evaluate, evaluate_arrays
from data.labels import read_labels
from tests.submission.jf.synthetic import SUBSET, golden, video_names

TOL = 1e-9
KEYS = {"per_frame": ["video", "obj", "frame"], "per_object": ["video", "obj"], "per_video": ["video"]}


def compare(ours: pd.DataFrame, gold: pd.DataFrame, keys: list[str]) -> dict[str, float]:
    """Max |difference| per golden column; NaN must match NaN (e.g. frames vos-benchmark does not count)."""
    m = gold.merge(ours, on=keys, how="left", suffixes=("_g", ""), indicator=True)
    assert (m["_merge"] == "both").all(), "rows missing from our table"
    assert len(ours) == len(gold), f"{len(ours)} rows, golden has {len(gold)}"
    worst = {}
    for c in gold.columns:
        if c in keys:
            continue
        a, b = m[c + "_g"].to_numpy(float), m[c].to_numpy(float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), f"{c}: NaN pattern differs"
        worst[c] = float(np.nanmax(np.abs(a - b))) if (~np.isnan(a)).any() else 0.0
    return worst


@pytest.fixture(scope="module")
def results(synth_root):
    """res -> (res, video names, data folder, Result of all protocols), each evaluated once per module."""
    done = {}

    def get(res):
        if res not in done:
            names = [video_names()[v] for v in SUBSET]
            base = synth_root / res
            done[res] = (res, names, base, evaluate(base / "GT" / "Annotations", base / "pred", videos=names,
                                                    protocol="all", n_jobs=2, meta=base / "meta.json"))
        return done[res]
    return get


@pytest.fixture(params=["720p", "480p"])
def run(request, results):
    return results(request.param)


@pytest.mark.parametrize("level", ["per_frame", "per_object", "per_video"])
def test_tables_match_golden(run, level):
    res, names, _, result = run
    gold = golden(res, level)
    gold = gold[gold.video.isin(names)]
    worst = compare(getattr(result, level), gold, KEYS[level])
    bad = {c: d for c, d in worst.items() if d > TOL}
    assert not bad, f"{res} {level}: {bad}"


def test_global_scores_match_golden_object_means(run):
    # dataset score = unweighted mean over (video, object) pairs, so the subset's golden global is the mean of
    # its golden per-object rows
    res, names, _, result = run
    g = golden(res, "per_object")
    g = g[g.video.isin(names)]
    d, m, v = "davis", "mosev2", "vos-benchmark"
    expect = {
        (d, "J-Mean"): g.J_davis.mean(), (d, "F-Mean"): g.F_davis.mean(), (d, "J-Recall"): g.JR_davis.mean(),
        (d, "J-Decay"): g.JD_davis.mean(), (d, "F-Recall"): g.FR_davis.mean(), (d, "F-Decay"): g.FD_davis.mean(),
        (d, "J&F-Mean"): (g.J_davis.mean() + g.F_davis.mean()) / 2,
        (m, "J"): g.J_mose.mean(), (m, "Fdot"): g.Fdot_mose.mean(), (m, "F"): g.F_mose.mean(),
        (m, "J&Fdot"): (g.J_mose.mean() + g.Fdot_mose.mean()) / 2,
        (v, "J"): g.J_vosb.mean(), (v, "F"): g.F_vosb.mean(), (v, "J&F"): (g.J_vosb.mean() + g.F_vosb.mean()) / 2,
    }
    for (protocol, key), want in expect.items():
        got = result.global_[protocol][key]
        assert abs(got - want) < TOL, (protocol, key, got, want)
    n = {p: result.global_[p]["n_objects"] for p in (d, m, v)}
    assert set(n.values()) == {len(g)}, n


def test_single_protocol_runs_and_strict_mode_agree(results):
    res, names, base, result = results("480p")
    for protocol, cols in (("davis", ["J_davis", "F_davis"]), ("mosev2", ["J_mose", "F_mose", "Fdot_mose"]),
                           ("vos-benchmark", ["J_vosb", "F_vosb"])):
        alone = evaluate(base / "GT" / "Annotations", base / "pred", videos=names[:2], protocol=protocol,
                         n_jobs=1, meta=base / "meta.json", strict_compat=True)
        both = result.per_frame[result.per_frame.video.isin(names[:2])].reset_index(drop=True)
        assert np.array_equal(alone.per_frame[cols].to_numpy(float), both[cols].to_numpy(float), equal_nan=True)


def test_in_memory_entry_point_matches(results):
    res, names, base, result = results("720p")
    v = names[0]
    frames = sorted(p.name for p in (base / "GT" / "Annotations" / v).glob("*.png"))
    arrays = {v: ([read_labels(base / "GT" / "Annotations" / v / f) for f in frames],
                  [read_labels(base / "pred" / v / f) for f in frames])}
    mem = evaluate_arrays(arrays, protocol="all", meta=base / "meta.json")
    ours = result.per_object[result.per_object.video == v].reset_index(drop=True)
    cols = [c for c in ours.columns if c not in ("video", "obj")]
    assert np.allclose(mem.per_object[cols].to_numpy(float), ours[cols].to_numpy(float), equal_nan=True,
                       rtol=0, atol=0)
