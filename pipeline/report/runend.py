"""The end of `masseg run`: each member against the fusion per video, and the HTML report."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from .scores import METRICS, member_configs, member_scores, per_video_table, table_text


def report_stage(run: Path, fusion, dataset, protocol: str, scored: bool, echo: Callable[[str], None]) -> dict:
    """Summary entries: ``members`` (headline fractions), ``members_table`` (Markdown, percent), ``report``."""
    from .html import build_report
    out: dict = {}
    if scored and protocol != "none" and len(member_configs(fusion)) >= 2:
        scores = member_scores(run, fusion, dataset, protocol, fusion_eval=run / "eval", echo=echo)
        out["members"] = {n: s.headline for n, s in scores.items()}
        out["members_table"] = table_text(per_video_table(scores), METRICS[protocol][0][0], out["members"])
    out["report"] = str(build_report(run, echo=echo))
    return out
