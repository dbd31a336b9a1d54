"""Writing a sweep's outcome: ranked table (CSV + Markdown), per-video table, plots, and the best config.

Files (all written atomically into the sweep folder)::

    sweep_ranked.csv / .md      one row per setting, best first: mode, w_/scale_/bias_<member>, the
                                protocol's global metrics, score (the ranking metric)
    sweep_per_video.csv / .md   the ranking metric per (setting, video); the Markdown shows the top settings
    sweep_heatmap.png           the ranking metric over two weights (three or more members), or over one member's
                                scale x bias; each cell the best over the other swept settings, one colour scale
    sweep_lines.png             two members: the ranking metric against member 1's weight share, a line per mode
    sweep_scores.png            the ranking metric of every setting by rank (1 = best)

Scores are fractions in the CSV and JSON files (``sweep.json`` says so in ``units``) and percent with two
decimals in the Markdown tables and plots.
    best.toml                   the best setting as a fusion config (``masseg fuse --config best.toml``)
    sweep.json                  what was swept (protocol, settings count, members, timings)
"""
from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from data.atomic import atomic_write_bytes, atomic_write_text
from submission.jf.tables import percent_columns, to_markdown

from .sweep import SweepResult

TOP_VIDEO_SETTINGS = 10


def _figure(width=6.4, height=4.8):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)   # no pyplot: no global backend state, Agg only
    return fig


def _save(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def _varying(table: pd.DataFrame, prefix: str) -> list[str]:
    return [c for c in table.columns if c.startswith(prefix) and table[c].nunique() > 1]


def axis_label(col: str) -> str:
    """A plot axis named after the member: w_X -> weight of X, scale_X -> output scale of X."""
    for prefix, what in (("w_", "weight of "), ("scale_", "output scale of "), ("bias_", "output bias of ")):
        if col.startswith(prefix):
            return what + col[len(prefix):]
    return col


def heatmap_axes(result: SweepResult) -> tuple[str, str] | None:
    """Two columns to plot against each other: one member's scale x bias if that is what varies, else the two
    weights that vary most (for three members on the simplex, the third is 1 minus the two). With two members
    the weights are one number (the line plot shows them), so a map of two weights is never drawn."""
    t = result.table
    scales, biases = _varying(t, "scale_"), _varying(t, "bias_")
    for sc in scales:
        name = sc[len("scale_"):]
        if f"bias_{name}" in biases:
            return sc, f"bias_{name}"
    if len(scales) + len(biases) >= 2:
        cols = scales + biases
        return cols[0], cols[1]
    weights = _varying(t, "w_")
    if len(weights) >= 2 and len(result.config.names) > 2:
        best = t.iloc[0]
        weights.sort(key=lambda c: -float(best[c]))
        return tuple(sorted(weights[:2], key=list(t.columns).index))
    if len(weights) >= 1 and (scales or biases):
        return weights[0], (scales + biases)[0]
    return None


def _score_name(result: SweepResult) -> str:
    from submission.jf.tables import HEADLINE
    return f"{result.protocol} {HEADLINE.get(result.protocol, 'score')}"


def plot_heatmap(result: SweepResult, path: Path):
    """Heat map of the ranking metric (each cell: the best over the other swept settings), one panel per mode,
    one colour scale shared by the panels so that equal colours mean equal scores."""
    axes = heatmap_axes(result)
    if axes is None:
        return False
    x, y = axes
    t = result.table
    modes = list(dict.fromkeys(t["mode"]))
    grids = {}
    for mode in modes:
        sub = t[t["mode"] == mode]
        grids[mode] = 100 * sub.pivot_table(index=y, columns=x, values="score", aggfunc="max") \
            .sort_index(ascending=False).astype(float)
    values = np.concatenate([g.to_numpy().ravel() for g in grids.values()])
    vmin, vmax = float(np.nanmin(values)), float(np.nanmax(values))
    if vmax - vmin < 1e-9:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    fig = _figure(5.4 * len(modes) + 0.8, 4.8)
    ims = []
    for k, mode in enumerate(modes):
        ax = fig.add_subplot(1, len(modes), k + 1)
        grid = grids[mode]
        arr = grid.to_numpy()
        im = ax.imshow(arr, cmap="viridis", aspect="auto", vmin=vmin, vmax=vmax)
        ims.append(im)
        ax.set_xticks(range(grid.shape[1]), [f"{v:g}" for v in grid.columns], rotation=45, fontsize=9)
        ax.set_yticks(range(grid.shape[0]), [f"{v:g}" for v in grid.index], fontsize=9)
        ax.set_xlabel(axis_label(x), fontsize=10)
        ax.set_ylabel(axis_label(y), fontsize=10)
        ax.set_title(f"{mode} voting: {_score_name(result)} (%)\neach cell: best over the other swept settings",
                     fontsize=10)
        mid = (vmin + vmax) / 2
        for (i, j), v in np.ndenumerate(arr):
            if not math.isnan(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                        color="black" if v > mid else "white")
    fig.colorbar(ims[-1], ax=fig.axes, shrink=0.85, label=f"{_score_name(result)} (%)")
    _save(fig, path)
    return fig


def plot_lines(result: SweepResult, path: Path):
    """Two members: the score against the weight share of member 1, one line per mode (each point the best over
    the other swept settings), the best setting marked."""
    names = result.config.names
    if len(names) != 2:
        return False
    t = result.table
    w1, w2 = f"w_{names[0]}", f"w_{names[1]}"
    if w1 not in t.columns or w2 not in t.columns:
        return False
    total = (t[w1] + t[w2]).replace(0, np.nan)
    share = (t[w1] / total).round(6)
    if share.nunique() < 2:
        return False
    fig = _figure(7.0, 4.4)
    ax = fig.add_subplot(1, 1, 1)
    for mode, colour in (("soft", "tab:blue"), ("majority", "tab:orange")):
        sel = t["mode"] == mode
        if not sel.any():
            continue
        best = (100 * t.loc[sel, "score"]).groupby(share[sel]).max().sort_index()
        ax.plot(best.index, best.to_numpy(), marker="o", color=colour, linewidth=2, label=f"{mode} voting")
    top = t.iloc[0]
    ax.scatter([share.iloc[0]], [100 * top["score"]], s=160, facecolors="none", edgecolors="k", linewidths=2,
               zorder=3, label=f"best (rank 1): {100 * top['score']:.2f}%")
    ax.set_xlabel(f"weight of {names[0]} (share of the two; {names[1]} gets the rest)", fontsize=10)
    ax.set_ylabel(f"{_score_name(result)} (%)", fontsize=10)
    ax.set_xlim(-0.03, 1.03)
    ax.set_title(f"{names[0]} + {names[1]}: each point is the best over the other swept settings", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    _save(fig, path)
    return fig


def plot_scores(result: SweepResult, path: Path):
    """The ranking metric of every setting by rank (1 = best), coloured by mode; single-member settings marked."""
    t = result.table
    fig = _figure(max(6.4, 0.12 * len(t) + 2), 4.2)
    ax = fig.add_subplot(1, 1, 1)
    wcols = [c for c in t.columns if c.startswith("w_")]
    single = (t[wcols] > 0).sum(axis=1) == 1
    for mode, colour in (("soft", "tab:blue"), ("majority", "tab:orange")):
        sel = t["mode"] == mode
        ax.bar(t.loc[sel, "rank"], 100 * t.loc[sel, "score"], color=colour, label=f"{mode} voting", width=0.8)
    if single.any():
        ax.scatter(t.loc[single, "rank"], 100 * t.loc[single, "score"], marker="v", color="k", zorder=3,
                   label="one member alone")
    ax.set_xlabel("rank (1 = best)", fontsize=10)
    ax.set_ylabel(f"{_score_name(result)} (%)", fontsize=10)
    ax.xaxis.get_major_locator().set_params(integer=True)
    lo = 100 * float(t["score"].min())
    hi = 100 * float(t["score"].max())
    ax.set_ylim(max(0.0, lo - 0.1 * (hi - lo + 1)), min(100.0, hi + 0.1 * (hi - lo + 1)))
    ax.set_title(f"{len(t)} fusion settings; rank 1: {t.iloc[0]['label']} ({100 * t.iloc[0]['score']:.2f}%)",
                 fontsize=10)
    ax.legend(fontsize=9)
    _save(fig, path)
    return fig


def write_report(result: SweepResult, out_dir, extra: dict | None = None) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}

    def put(name, text):
        paths[name] = out / name
        atomic_write_text(out / name, text)

    t = result.table
    put("sweep_ranked.csv", t.to_csv(index=False, float_format="%.10g"))
    score_cols = [c for c in t.columns if c == "score" or (":" in c and not c.endswith("n_objects"))]
    put("sweep_ranked.md", f"Fusion settings ranked by {result.protocol} ({result.notes[0] if result.notes else ''}); "
                           "scores in percent\n\n" + to_markdown(percent_columns(t, score_cols), digits=2))
    pv = result.per_video
    put("sweep_per_video.csv", pv.to_csv(index=False, float_format="%.10g"))
    top = list(t["setting"].head(TOP_VIDEO_SETTINGS))
    wide = pv[pv["setting"].isin(top)].pivot(index="video", columns="setting", values="score")[top]
    wide.columns = [f"#{r} (setting {s})" for r, s in zip(range(1, len(top) + 1), top)]
    put("sweep_per_video.md", f"Per-video {result.protocol} score (%) of the top {len(top)} settings\n\n"
                              + to_markdown((100 * wide).reset_index(), digits=2))
    if plot_heatmap(result, out / "sweep_heatmap.png"):
        paths["sweep_heatmap.png"] = out / "sweep_heatmap.png"
    if plot_lines(result, out / "sweep_lines.png"):
        paths["sweep_lines.png"] = out / "sweep_lines.png"
    plot_scores(result, out / "sweep_scores.png")
    paths["sweep_scores.png"] = out / "sweep_scores.png"
    best = t.iloc[0]
    result.best_config().save(out / "best.toml", comment=f"best of {len(t)} settings by {result.protocol}: "
                                                         f"score {100 * best['score']:.2f}% ({best['label']})")
    paths["best.toml"] = out / "best.toml"
    info = {"protocol": result.protocol, "settings": len(t), "members": result.config.names,
            "units": {"score": "fraction in [0, 1]", "seconds": "s"},
            "best": {"setting": int(best["setting"]), "label": best["label"], "score": float(best["score"])},
            "seconds": result.seconds, **(extra or {})}
    put("sweep.json", json.dumps(info, indent=1) + "\n")
    return paths
