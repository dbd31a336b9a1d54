"""Result tables: per frame, per object, per video and global, as pandas DataFrames, CSV, Markdown and JSON.

Columns carry the protocol as a suffix (``_davis``, ``_mose``, ``_vosb``) so several protocols computed in one
pass sit side by side; a value a protocol does not define for a row (an object outside its object set, a frame
vos-benchmark does not count yet) is NaN. Values are fractions in [0, 1] in CSV and JSON (``global.csv`` has a
``unit`` column, ``global.json`` a ``units`` field); what a person reads (the summary, the Markdown tables) is in
percent with two decimals, the headers saying so.

pandas is imported only where tables are built: worker processes import this package to score frames and
should not pay for it (time and memory).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from data.atomic import atomic_write_text

from .measures import jaccard, jaccard_mose
from .protocols import global_scores, object_row

if TYPE_CHECKING:
    import pandas as pd

GLOBAL_ORDER = {
    "davis": ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay", "n_objects"],
    "mosev2": ["J&Fdot", "J", "Fdot", "F", "J&F", "disappear_J&Fdot", "reappear_J&Fdot", "n_objects"],
    "vos-benchmark": ["J&F", "J", "F", "n_objects"],
}
HEADLINE = {"davis": "J&F-Mean", "mosev2": "J&Fdot", "vos-benchmark": "J&F"}
VIDEO_HEADLINE = {"davis": "JF_davis", "mosev2": "JFdot_mose", "vos-benchmark": "JF_vosb"}


@dataclass
class Result:
    """Everything one evaluation produced. ``global_`` maps protocol -> {metric: value}."""

    protocols: tuple[str, ...]
    per_frame: pd.DataFrame
    per_object: pd.DataFrame
    per_video: pd.DataFrame
    global_: dict
    strict_compat: bool = False
    notes: list[str] = field(default_factory=list)

    def headline(self, protocol: str | None = None) -> float:
        """The protocol's leaderboard number (DAVIS J&F, MOSEv2 J&F-dot, vos-benchmark J&F)."""
        protocol = protocol or self.protocols[0]
        return self.global_[protocol][HEADLINE[protocol]]

    def worst_videos(self, n: int = 5, protocol: str | None = None) -> list[tuple[str, float]]:
        """The ``n`` videos with the lowest headline score (fractions), worst first."""
        protocol = protocol or self.protocols[0]
        col = VIDEO_HEADLINE[protocol]
        if col not in self.per_video.columns or n <= 0:
            return []
        t = self.per_video[["video", col]].dropna().sort_values(col, kind="mergesort")
        return [(str(v), float(x)) for v, x in t.head(n).itertuples(index=False)]

    def worst_text(self, n: int = 5) -> str:
        """The worst videos as a person reads them (percent, two decimals), one line each."""
        p = self.protocols[0]
        worst = self.worst_videos(n, p)
        if not worst:
            return ""
        width = max(len(v) for v, _ in worst)
        lines = [f"worst {len(worst)} of {len(self.per_video)} videos by {p} {HEADLINE[p]}:"]
        lines += [f"  {v:<{width}}  {100 * x:6.2f} %" for v, x in worst]
        return "\n".join(lines)

    def global_table(self) -> pd.DataFrame:
        import pandas as pd
        rows = []
        for p in self.protocols:
            for k in GLOBAL_ORDER[p]:
                rows.append({"protocol": p, "metric": k, "value": self.global_[p][k]})
        return pd.DataFrame(rows, columns=["protocol", "metric", "value"], dtype=object)

    def summary(self) -> str:
        n_vid = self.per_video.shape[0]
        n_frames = int(self.per_frame.groupby("video")["frame"].nunique().sum()) if len(self.per_frame) else 0
        lines = [f"J&F evaluation (scores in %): {_n(n_vid, 'video')}, {_n(len(self.per_object), 'object')}, "
                 f"{_n(n_frames, 'scored frame')}"
                 + (" (strict compatibility)" if self.strict_compat else "")]
        for p in self.protocols:
            g = self.global_[p]
            pc = lambda k: "n/a" if g[k] is None or math.isnan(g[k]) else f"{100 * g[k]:.2f}"  # noqa: E731
            if p == "davis":
                text = (f"J&F {pc('J&F-Mean')}  J {pc('J-Mean')} (recall {pc('J-Recall')}, decay {pc('J-Decay')})"
                        f"  F {pc('F-Mean')} (recall {pc('F-Recall')}, decay {pc('F-Decay')})")
            elif p == "mosev2":
                text = (f"J&Fdot {pc('J&Fdot')}  J {pc('J')}  Fdot {pc('Fdot')}  F {pc('F')}  J&F {pc('J&F')}"
                        f"  disappear J&Fdot {pc('disappear_J&Fdot')}  reappear J&Fdot {pc('reappear_J&Fdot')}")
            else:
                text = f"J&F {pc('J&F')}  J {pc('J')}  F {pc('F')}"
            lines.append(f"  {p:<14} {text}  [{_n(g['n_objects'], 'object')}]")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def write(self, out_dir: str | os.PathLike) -> dict[str, Path]:
        """Write global.{json,csv,md}, per_video.{csv,md}, per_object.{csv,md}, per_frame.csv, summary.txt."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {}

        def put(name, text):
            paths[name] = out / name
            atomic_write_text(out / name, text)

        put("global.json", json.dumps({"protocols": list(self.protocols), "strict_compat": self.strict_compat,
                                       "units": UNITS, "scores": _jsonable(self.global_)}, indent=1) + "\n")
        g = self.global_table()
        g["unit"] = ["count" if str(m).startswith("n_") else "fraction" for m in g["metric"]]
        put("global.csv", g.to_csv(index=False, float_format="%.10g"))
        put("global.md", global_markdown(g))
        for name, df in (("per_video", self.per_video), ("per_object", self.per_object)):
            put(f"{name}.csv", df.to_csv(index=False, float_format="%.10g"))
            put(f"{name}.md", to_markdown(percent_columns(df, score_columns(df)), digits=2))
        put("per_frame.csv", self.per_frame.to_csv(index=False, float_format="%.10g"))
        put("summary.txt", self.summary() + "\n")
        return paths


def _n(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (float, np.floating)):
        return None if math.isnan(obj) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


_COUNT_PREFIXES = ("n_", "nframes", "first_counted")
UNITS = {"scores": "fraction in [0, 1] (J&F 0.8123 = 81.23 %)", "n_objects": "count",
         "csv": "per_*.csv and global.csv scores are fractions; the Markdown tables and printed summaries are percent"}


def score_columns(df: pd.DataFrame) -> list[str]:
    """The columns of an evaluation table that hold scores (not names, ids or counts)."""
    return [c for c in df.columns if c not in ("video", "obj", "frame", "frame_name", "protocol", "metric", "unit")
            and not str(c).startswith(_COUNT_PREFIXES) and c not in ("emptyGT", "gt_area", "pred_area")]


def percent_columns(df: pd.DataFrame, columns) -> pd.DataFrame:
    """A copy with ``columns`` (fractions) in percent, their headers marked ``(%)``: for tables people read."""
    out = df.copy()
    for c in columns:
        out[c] = 100 * out[c].astype("float64")
    return out.rename(columns={c: f"{c} (%)" for c in columns})


def global_markdown(g: pd.DataFrame) -> str:
    """The global table for people: scores in percent (two decimals), counts as integers."""
    rows = ["| protocol | metric | value |", "|---|---|---|"]
    for _, r in g.iterrows():
        v = r["value"]
        if v is None or (isinstance(v, float) and math.isnan(v)):
            text = ""
        elif str(r["metric"]).startswith("n_"):
            text = f"{int(v)}"
        else:
            text = f"{100 * float(v):.2f} %"
        rows.append(f"| {r['protocol']} | {r['metric']} | {text} |")
    return "\n".join(rows) + "\n"


def to_markdown(df: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub Markdown table (no tabulate dependency); scores rounded to ``digits``, counts kept short."""
    import pandas as pd

    def cell(v, count):
        if v is None or v is pd.NA:
            return ""
        if isinstance(v, (float, np.floating)):
            if math.isnan(v):
                return ""
            return f"{v:.6g}" if count else f"{v:.{digits}f}"
        return str(v)
    counts = [str(c).startswith(_COUNT_PREFIXES) for c in df.columns]
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(cell(v, c) for v, c in zip(row, counts)) + " |"
            for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body]) + "\n"


def build_result(videos, protocols: tuple[str, ...], strict_compat: bool) -> Result:
    """Per-frame, per-object, per-video tables and global scores from merged ``VideoScores``."""
    import pandas as pd
    davis, mose, vosb = ("davis" in protocols), ("mosev2" in protocols), ("vos-benchmark" in protocols)
    frame_parts, object_rows = [], []
    for vs in videos:
        reported_vosb = set(vs.gt_seen) if vosb else set()
        objects = sorted(set(vs.davis_ids) | set(vs.mose_ids) | reported_vosb)
        n = len(vs.frames)
        for o in objects:
            ga, pa, inter = (vs.column(o, c).astype(np.int64) for c in ("gt_area", "pred_area", "inter"))
            F, F_mose, Fdot = (vs.column(o, c) for c in ("F", "F_mose", "Fdot"))
            union = ga + pa - inter
            J, J_m = jaccard(inter, union), jaccard_mose(inter, union)
            in_davis, in_mose = o in vs.davis_ids, o in vs.mose_ids
            cols = {"video": [vs.name] * n, "obj": np.full(n, o), "frame": vs.frame_index,
                    "frame_name": vs.frames}
            nan = np.full(n, np.nan)
            if davis:
                cols.update(J_davis=J if in_davis else nan, F_davis=F if in_davis else nan)
            if mose:
                cols.update(J_mose=J_m if in_mose else nan, Fdot_mose=Fdot if in_mose else nan,
                            F_mose=F_mose if in_mose else nan)
            row = object_row(protocols, strict_compat, J, F, J_m, F_mose, Fdot, ga, pa, vs.frame_index,
                             in_davis, in_mose)
            if vosb:
                jv, fv = nan.copy(), nan.copy()
                if "first_counted_frame_vosb" in row:
                    start = int(np.searchsorted(vs.frame_index, row["first_counted_frame_vosb"]))
                    jv[start:], fv[start:] = J[start:], F[start:]
                cols.update(J_vosb=jv, F_vosb=fv)
            cols.update(emptyGT=(ga == 0).astype(np.int64), gt_area=ga, pred_area=pa)
            frame_parts.append(pd.DataFrame(cols))
            object_rows.append({"video": vs.name, "obj": o, **row})

    per_frame = pd.concat(frame_parts, ignore_index=True) if frame_parts else pd.DataFrame()
    obj_cols = ["video", "obj"] + _object_columns(protocols)
    per_object = pd.DataFrame(object_rows).reindex(columns=obj_cols)
    for c in obj_cols:
        if c.startswith("nframes") or c.startswith("first_counted"):
            per_object[c] = per_object[c].astype("Int64")
    per_video = _per_video(per_object, [v.name for v in videos])
    return Result(protocols, per_frame, per_object, per_video, global_scores(protocols, per_object),
                  strict_compat)


def _object_columns(protocols) -> list[str]:
    cols = []
    if "davis" in protocols:
        cols += ["J_davis", "JR_davis", "JD_davis", "F_davis", "FR_davis", "FD_davis", "JF_davis", "nframes_davis"]
    if "mosev2" in protocols:
        cols += ["J_mose", "Fdot_mose", "F_mose", "JFdot_mose", "JF_mose", "disappear_JFdot_mose",
                 "reappear_JFdot_mose", "disappear_J_mose", "disappear_Fdot_mose", "reappear_J_mose",
                 "reappear_Fdot_mose", "nframes_mose"]
    if "vos-benchmark" in protocols:
        cols += ["J_vosb", "F_vosb", "JF_vosb", "nframes_vosb", "first_counted_frame_vosb"]
    return cols


def _per_video(per_object: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Mean over each video's objects (objects a protocol does not score are skipped, as NaN)."""
    value_cols = [c for c in per_object.columns if c not in ("video", "obj")]
    numeric = per_object[value_cols].astype("float64")
    numeric.insert(0, "video", per_object["video"])
    g = numeric.groupby("video", sort=False)
    out = g.mean()
    out.insert(0, "n_obj", g.size())
    return out.reindex(order).reset_index()
