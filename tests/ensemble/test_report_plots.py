"""Sweep plots people can read: two members -> a line per mode over member 1's weight; maps share one colour
scale and say each cell is the best over the other settings; axes name the members; ranks start at 1; Markdown
in percent, CSV/JSON fractions labelled."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from data.dataset import VOSDataset
from ensemble.config import FusionConfig
from ensemble.grid import make_settings, parse_member_values, parse_weights
from ensemble.report import plot_heatmap, plot_lines, plot_scores, write_report
from ensemble.sweep import sweep


def _cfg(stores, names):
    return FusionConfig.from_dict({"members": [{"store": str(stores[n]), "name": n} for n in names]})


def _sweep(small_members, names, weights, scales=()):
    tmp, stores, root = small_members
    cfg = _cfg(stores, names)
    settings = make_settings(cfg, ["soft", "majority"], parse_weights(weights, len(names)),
                             parse_member_values(list(scales), cfg.names, "scale"), {})
    return sweep(cfg, settings, VOSDataset(root), protocol="davis")


def test_two_members_line_plot(small_members, tmp_path):
    res = _sweep(small_members, ["good", "drift"], "simplex:0.25")
    fig = plot_lines(res, tmp_path / "lines.png")
    assert fig and (tmp_path / "lines.png").stat().st_size > 1000
    ax = fig.axes[0]
    assert "weight of good" in ax.get_xlabel() and "drift" in ax.get_xlabel()
    assert "(%)" in ax.get_ylabel() and "best over the other" in ax.get_title()
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert set(lines) == {"soft voting", "majority voting"}
    assert list(lines["soft voting"].get_xdata()) == [0.0, 0.25, 0.5, 0.75, 1.0]
    # each point: the best score (%) of that mode at that weight
    t = res.table
    at_half = t[(t["mode"] == "soft") & np.isclose(t["w_good"], 0.5)]["score"].max()
    assert lines["soft voting"].get_ydata()[2] == pytest.approx(100 * at_half)
    # a map over two weights of two members would be a diagonal: not drawn
    assert not plot_heatmap(res, tmp_path / "map.png")
    fig = plot_scores(res, tmp_path / "scores.png")
    bars = [p.get_x() + p.get_width() / 2 for p in fig.axes[0].patches]
    assert min(bars) == pytest.approx(1) and "rank (1 = best)" in fig.axes[0].get_xlabel()


def test_maps_share_one_colour_scale(small_members, tmp_path):
    res = _sweep(small_members, ["good", "drift", "swap"], "simplex:0.5", ["good=0.5,1,2", "drift=1,2"])
    fig = plot_heatmap(res, tmp_path / "map.png")
    assert fig
    panels = [ax for ax in fig.axes if ax.get_images()]
    assert len(panels) == 2
    clims = {ax.get_images()[0].get_clim() for ax in panels}
    assert len(clims) == 1
    lo, hi = clims.pop()
    cells = res.table.groupby(["mode", "scale_good", "scale_drift"])["score"].max()   # best over the weights
    assert lo == pytest.approx(100 * cells.min()) and hi == pytest.approx(100 * cells.max())
    for ax in panels:
        assert "best over the other swept settings" in ax.get_title()
        assert ax.get_xlabel() == "output scale of good" and ax.get_ylabel() == "output scale of drift"
        assert all(t.get_fontsize() >= 8 for t in ax.texts)


def test_sweep_files_units(small_members, tmp_path):
    res = _sweep(small_members, ["good", "drift"], "simplex:0.5")
    paths = write_report(res, tmp_path / "out")
    assert "sweep_lines.png" in paths
    md = (tmp_path / "out" / "sweep_ranked.md").read_text()
    assert "score (%)" in md and "scores in percent" in md
    best = res.table.iloc[0]
    assert f"{100 * best['score']:.2f}" in md
    csv = pd.read_csv(tmp_path / "out" / "sweep_ranked.csv")
    assert csv["score"].max() <= 1.0
    info = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert info["units"]["score"].startswith("fraction")
