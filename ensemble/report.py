"""Writing a sweep's outcome: ranked table (CSV + Markdown), per-video table, plots, and the best config.

Files (all written atomically into the sweep folder)::

    sweep_ranked.csv / .md      one row per setting, best first: mode, w_/scale_/bias_<member>, the
                                protocol's global metrics, score (the ranking metric)
    sweep_per_video.csv / .md   the ranking metric per (setting, video); the Markdown shows the top settings
    sweep_heatmap.png           the ranking metric over two weights, or over one member's scale x bias
    sweep_scores.png            the ranking metric of every setting, ranked
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
from submission.jf.tables import to_markdown

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


def heatmap_axes(result: SweepResult) -> tuple[str, str] | None:
    """Two columns to plot against each other: one member's scale x bias if that is what varies, else the two
    weights that vary most (for three members on the simplex, the third is 1 minus the two)."""
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
    if len(weights) >= 2:
        best = t.iloc[0]
        weights.sort(key=lambda c: -float(best[c]))
        return tuple(sorted(weights[:2], key=list(t.columns).index))
    if len(weights) == 1 and (scales or biases):
        return weights[0], (scales + biases)[0]
    return None


def plot_heatmap(result: SweepResult, path: Path) -> bool:
    """Heat map of the ranking metric (best over the other swept dimensions), one panel per mode."""
    axes = heatmap_axes(result)
    if axes is None:
        return False
    x, y = axes
    t = result.table
    modes = list(dict.fromkeys(t["mode"]))
    fig = _figure(5.2 * len(modes), 4.4)
    for k, mode in enumerate(modes):
        ax = fig.add_subplot(1, len(modes), k + 1)
        sub = t[t["mode"] == mode]
        grid = sub.pivot_table(index=y, columns=x, values="score", aggfunc="max").sort_index(ascending=False)
        im = ax.imshow(100 * grid.to_numpy(dtype=float), cmap="viridis", aspect="auto")
        ax.set_xticks(range(grid.shape[1]), [f"{v:g}" for v in grid.columns], rotation=45)
        ax.set_yticks(range(grid.shape[0]), [f"{v:g}" for v in grid.index])
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.set_title(f"{mode}: {result.protocol} score (%)")
        for (i, j), v in np.ndenumerate(grid.to_numpy(dtype=float)):
            if not math.isnan(v):
                ax.text(j, i, f"{100 * v:.1f}", ha="center", va="center", fontsize=7, color="w")
        fig.colorbar(im, ax=ax, shrink=0.8)
    _save(fig, path)
    return True


def plot_scores(result: SweepResult, path: Path) -> None:
    """The ranking metric of every setting, best first, coloured by mode; single-member settings marked."""
    t = result.table
    fig = _figure(max(6.4, 0.12 * len(t) + 2), 4.2)
    ax = fig.add_subplot(1, 1, 1)
    wcols = [c for c in t.columns if c.startswith("w_")]
    single = (t[wcols] > 0).sum(axis=1) == 1
    for mode, colour in (("soft", "tab:blue"), ("majority", "tab:orange")):
        sel = t["mode"] == mode
        ax.bar(t.index[sel], 100 * t.loc[sel, "score"], color=colour, label=mode, width=0.8)
    ax.scatter(t.index[single], 100 * t.loc[single, "score"], marker="v", color="k", zorder=3,
               label="one member alone")
    ax.set_xlabel("setting rank (best first)")
    ax.set_ylabel(f"{result.protocol} score (%)")
    lo = 100 * float(t["score"].min())
    hi = 100 * float(t["score"].max())
    ax.set_ylim(max(0.0, lo - 0.1 * (hi - lo + 1)), min(100.0, hi + 0.1 * (hi - lo + 1)))
    ax.set_title(f"{len(t)} fusion settings; best: {t.iloc[0]['label']}", fontsize=9)
    ax.legend(fontsize=8)
    _save(fig, path)


def write_report(result: SweepResult, out_dir, extra: dict | None = None) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}

    def put(name, text):
        paths[name] = out / name
        atomic_write_text(out / name, text)

    t = result.table
    put("sweep_ranked.csv", t.to_csv(index=False, float_format="%.10g"))
    put("sweep_ranked.md", f"Fusion settings ranked by {result.protocol} ({result.notes[0] if result.notes else ''})"
                           "\n\n" + to_markdown(t))
    pv = result.per_video
    put("sweep_per_video.csv", pv.to_csv(index=False, float_format="%.10g"))
    top = list(t["setting"].head(TOP_VIDEO_SETTINGS))
    wide = pv[pv["setting"].isin(top)].pivot(index="video", columns="setting", values="score")[top]
    wide.columns = [f"#{r} (setting {s})" for r, s in zip(range(1, len(top) + 1), top)]
    put("sweep_per_video.md", f"Per-video {result.protocol} score of the top {len(top)} settings\n\n"
                              + to_markdown(wide.reset_index()))
    if plot_heatmap(result, out / "sweep_heatmap.png"):
        paths["sweep_heatmap.png"] = out / "sweep_heatmap.png"
    plot_scores(result, out / "sweep_scores.png")
    paths["sweep_scores.png"] = out / "sweep_scores.png"
    best = t.iloc[0]
    result.best_config().save(out / "best.toml", comment=f"best of {len(t)} settings by {result.protocol}: "
                                                         f"score {best['score']:.6f} ({best['label']})")
    paths["best.toml"] = out / "best.toml"
    info = {"protocol": result.protocol, "settings": len(t), "members": result.config.names,
            "best": {"setting": int(best["setting"]), "label": best["label"], "score": float(best["score"])},
            "seconds": result.seconds, **(extra or {})}
    put("sweep.json", json.dumps(info, indent=1) + "\n")
    return paths
