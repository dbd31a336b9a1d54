"""Each member's own labels and J&F next to the fusion's, for the end-of-run table and the report.

A member's own labels are a fusion of that member alone (its scales / flips merged as in the run, output scaling
1 / 0: the model's own masks) made with the ensemble's public ``fuse``, into ``RUN/members/<member>/labels``;
they are then scored with the project's evaluator into ``RUN/members/<member>/eval``. Both are cached: a rerun
reuses them while the member config, the videos and the protocol are the same.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import pandas as pd

from data.atomic import atomic_write_text

MEMBERS_DIR = "members"
FUSION = "fusion"

# (label shown to a person, per-video / per-object column) per protocol, headline first
METRICS = {
    "davis": [("J&F", "JF_davis"), ("J", "J_davis"), ("F", "F_davis")],
    "mosev2": [("J&Ḟ", "JFdot_mose"), ("J&F", "JF_mose"), ("J", "J_mose"), ("F", "F_mose"), ("Ḟ", "Fdot_mose")],
    "vos-benchmark": [("J&F", "JF_vosb"), ("J", "J_vosb"), ("F", "F_vosb")],
}
GLOBAL_KEYS = {
    "davis": {"J&F": "J&F-Mean", "J": "J-Mean", "F": "F-Mean"},
    "mosev2": {"J&Ḟ": "J&Fdot", "J&F": "J&F", "J": "J", "F": "F", "Ḟ": "Fdot"},
    "vos-benchmark": {"J&F": "J&F", "J": "J", "F": "F"},
}
FRAME_J = {"davis": "J_davis", "mosev2": "J_mose", "vos-benchmark": "J_vosb"}


def pct(v) -> str:
    """A score as a person reads it: percent with two decimals."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return ""
    return "" if f != f else f"{100 * f:.2f}"


@dataclass
class Scores:
    """One system's (a member's or the fusion's) evaluation tables, fractions in [0, 1]."""

    name: str
    protocol: str
    global_: dict
    per_video: pd.DataFrame
    per_object: pd.DataFrame
    per_frame: pd.DataFrame

    @property
    def headline(self) -> float:
        label = METRICS[self.protocol][0][0]
        return float(self.global_[GLOBAL_KEYS[self.protocol][label]])


def member_configs(fusion) -> dict:
    """Configured member (fusion group) -> a FusionConfig of that member alone: its stores with their weights
    within the group (equal when the fusion gave them none), output scaling 1 / 0 (the model's own masks)."""
    from ensemble.config import FusionConfig
    out = {}
    for group, specs in fusion.groups().items():
        weights = [m.weight for m in specs]
        equal = sum(weights) <= 0
        members = tuple(replace(m, weight=1.0 if equal else m.weight, scale=1.0, bias=0.0, optional=False)
                        for m in specs)
        out[group] = FusionConfig(members, mode="soft")
    return out


def _fingerprint(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def member_labels(run: Path, fusion, dataset, echo: Callable[[str], None] | None = None) -> dict[str, Path]:
    """Each member's own label folder (fused alone, cached); a single-member run has none (its fusion is it)."""
    from ensemble.config import load_config
    from ensemble.fuse import CONFIG_NAME, fuse
    from submission.writer import LABELS_SUBDIR
    configs = member_configs(fusion)
    if len(configs) < 2:
        return {}
    out = {}
    for name, cfg in configs.items():
        folder = run / MEMBERS_DIR / name
        previous = folder / CONFIG_NAME
        mine = cfg.to_dict(relative_to=folder)
        changed = previous.is_file() and load_config(previous).to_dict(relative_to=folder) != mine
        done = folder / ".labels.json"
        fp = _fingerprint([mine, dataset.video_names])
        if changed or not (done.is_file() and json.loads(done.read_text()).get("fingerprint") == fp):
            if echo:
                echo(f"[members] {name}: its own labels (" + ", ".join(m.name for m in cfg.members) + ")")
            fuse(cfg, folder, dataset=dataset, overwrite=changed, progress_desc=f"member {name}")
            atomic_write_text(done, json.dumps({"fingerprint": fp}) + "\n")
        out[name] = folder / LABELS_SUBDIR
    return out


def load_scores(name: str, eval_dir: Path, protocol: str) -> Scores:
    g = json.loads((eval_dir / "global.json").read_text())
    text = {"video": str, "frame_name": str}   # names like 00003 or 0062f687f1 stay names
    return Scores(name, protocol, g["scores"][protocol], pd.read_csv(eval_dir / "per_video.csv", dtype=text),
                  pd.read_csv(eval_dir / "per_object.csv", dtype=text),
                  pd.read_csv(eval_dir / "per_frame.csv", dtype=text))


def evaluate_into(labels: Path, eval_dir: Path, dataset, protocol: str, fp: str) -> None:
    """Score ``labels`` into ``eval_dir`` unless it already holds this exact evaluation (marker ``fp``)."""
    from submission.jf.evaluate import evaluate
    marker = eval_dir / ".scored.json"
    if marker.is_file() and json.loads(marker.read_text()).get("fingerprint") == fp \
            and (eval_dir / "per_frame.csv").is_file():
        return
    result = evaluate(dataset.ann_root, labels, videos=dataset.video_names, protocol=protocol)
    result.write(eval_dir)
    atomic_write_text(marker, json.dumps({"fingerprint": fp}) + "\n")


def member_scores(run: Path, fusion, dataset, protocol: str, fusion_eval: Path | None = None,
                  echo: Callable[[str], None] | None = None) -> dict[str, Scores]:
    """Scores of every member (own labels) and of the fusion (``FUSION``), members first, in config order.

    ``fusion_eval``: a folder already holding the fusion's evaluation with this protocol (the run's ``eval/``)."""
    from submission.writer import LABELS_SUBDIR
    labels = member_labels(run, fusion, dataset, echo)
    out = {}
    for name, folder in labels.items():
        ev = folder.parent / "eval"
        evaluate_into(folder, ev, dataset, protocol, _fingerprint([(folder.parent / ".labels.json").read_text(),
                                                                  protocol]))
        out[name] = load_scores(name, ev, protocol)
    if fusion_eval is None or not (fusion_eval / "per_frame.csv").is_file() or \
            protocol not in json.loads((fusion_eval / "global.json").read_text()).get("protocols", []):
        fusion_eval = run / MEMBERS_DIR / FUSION / "eval"
        evaluate_into(run / LABELS_SUBDIR, fusion_eval, dataset, protocol,
                      _fingerprint([fusion.to_dict(relative_to=run), dataset.video_names, protocol]))
    out[FUSION] = load_scores(FUSION, fusion_eval, protocol)
    return out


def per_video_table(scores: dict[str, Scores], metric: int = 0) -> pd.DataFrame:
    """video | <member>... | fusion | gain: one metric (default the headline) per system, fractions; ``gain`` is
    the fusion minus the best member on that video."""
    any_ = next(iter(scores.values()))
    label, col = METRICS[any_.protocol][metric]
    t = pd.DataFrame({"video": any_.per_video["video"]})
    for name, s in scores.items():
        t[name] = s.per_video.set_index("video").reindex(t["video"])[col].to_numpy()
    members = [n for n in scores if n != FUSION]
    if members:
        t["gain"] = t[FUSION] - t[members].max(axis=1)
    return t


def table_text(table: pd.DataFrame, label: str, totals: dict[str, float] | None = None,
               worst_first: bool = False) -> str:
    """A Markdown table of ``per_video_table`` in percent (two decimals); ``totals`` (each system's global score)
    makes a last row "all videos"."""
    t = table.sort_values(FUSION) if worst_first else table
    if totals:
        row = {"video": "**all videos**", **totals}
        members = [n for n in totals if n != FUSION]
        if "gain" in t.columns and members:
            row["gain"] = totals[FUSION] - max(totals[n] for n in members)
        t = pd.concat([t, pd.DataFrame([row])], ignore_index=True)
    cols = [c for c in t.columns if c != "video"]
    head = "| video | " + " | ".join(f"{c} {label} (%)" if c != "gain" else "fusion gain (points)" for c in cols) \
        + " |"
    lines = [head, "|" + "---|" * (len(cols) + 1)]
    for _, r in t.iterrows():
        cells = [(f"{100 * r[c]:+.2f}" if c == "gain" else pct(r[c])) if r[c] == r[c] else "" for c in cols]
        lines.append(f"| {r['video']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
