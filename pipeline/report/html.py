"""`masseg report RUN`: one self-contained static HTML page (``index.html`` + ``assets/``) about a run.

It opens offline from the file system (no server, no CDN: CSS and the small table-sorting script are inline,
pictures are files in ``assets/``). Sections: run metadata (config, checkpoints with sha256, timings,
environment); J&F, J, F (J&Ḟ for MOSEv2) globally, per video and per object for every member and the fusion,
sortable, the fusion's gain over the best member coloured; the sweep's ranking and plots when the run has one;
per video the per-object J curves, the worst frames as overlay strips (frame + GT, each member, the fusion)
and a member-disagreement heat map. Without ground truth on every frame (a test split) there are no scores:
overlays and member agreement only, worst frames being those where the members disagree most.
"""
from __future__ import annotations

import html
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from data.atomic import atomic_write_bytes, atomic_write_text, make_output_dir
from data.errors import MassegError

from . import plots
from .scores import FRAME_J, FUSION, GLOBAL_KEYS, METRICS, Scores, member_labels, member_scores, pct

REPORT_DIR = "report"
MAX_AGREEMENT_FRAMES = 200
ASSETS = "assets"


@dataclass
class RunContext:
    run: Path
    dataset: object
    fusion: object
    protocol: str                  # "none" when nothing is scored
    has_gt: bool
    meta: dict = field(default_factory=dict)


def _read_json(path: Path, default):
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return default


def open_run(run: str | Path, root: str | None = None, split: str | None = None,
             protocol: str | None = None) -> RunContext:
    """The run folder's dataset, fusion and protocol (from ``resolved.json``; options override it)."""
    from data.dataset import VOSDataset
    from ensemble.config import load_config
    from ensemble.fuse import CONFIG_NAME
    from submission.writer import LABELS_SUBDIR
    run = Path(run)
    if not run.is_dir():
        raise MassegError("run folder not found", run, "pass the folder `masseg run` or `masseg fuse` wrote")
    if not (run / CONFIG_NAME).is_file() or not (run / LABELS_SUBDIR).is_dir():
        raise MassegError(f"not a fused run folder (no {CONFIG_NAME} and {LABELS_SUBDIR}/)", run,
                          "run the fuse stage first (`masseg run CONFIG` or `masseg fuse ... --out RUN`)")
    resolved = _read_json(run / "resolved.json", {})
    data = resolved.get("data", {})
    root = root or data.get("root")
    if not root:
        raise MassegError("the run folder does not say which dataset it is (no resolved.json)", run,
                          "pass --root (and --split)")
    split = split if split is not None else (data.get("split") or None)
    ds = VOSDataset(root, split, objects_from=data.get("objects_from", "auto"))
    protocol = protocol or data.get("protocol") or "davis"
    has_gt = all(len(v.annotation_names) == len(v) for v in ds)
    meta = {k: _read_json(run / f"{k}.json", None) for k in ("resolved", "environment", "checkpoints", "timings",
                                                            "summary")}
    return RunContext(run, ds, load_config(run / CONFIG_NAME), protocol, has_gt and protocol != "none", meta)


# ------------------------------------------------------------------------------------------------ helpers
def esc(x) -> str:
    return html.escape(str(x), quote=True)


def _num_cell(v, kind="score") -> str:
    if v is None or (isinstance(v, float) and v != v):
        return '<td data-v="" class="na">–</td>'
    f = float(v)
    if kind == "gain":
        cls = "gain-pos" if f > 0 else ("gain-neg" if f < 0 else "gain-zero")
        return f'<td data-v="{f:.8g}" class="num {cls}">{100 * f:+.2f}</td>'
    if kind == "int":
        return f'<td data-v="{f:g}" class="num">{int(f)}</td>'
    return f'<td data-v="{f:.8g}" class="num">{pct(f)}</td>'


def sortable_table(df: pd.DataFrame, kinds: dict[str, str], cls: str = "", best_cols=()) -> str:
    """An HTML table whose headers sort it (inline script); numbers carry their exact value in data-v."""
    head = "".join(f'<th title="click to sort">{esc(c)}</th>' for c in df.columns)
    rows = []
    for _, r in df.iterrows():
        cells = []
        for c in df.columns:
            k = kinds.get(c, "text")
            cells.append(f'<td data-v="{esc(r[c])}">{esc(r[c])}</td>' if k == "text" else _num_cell(r[c], k))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="sortable {cls}"><thead><tr>{head}</tr></thead><tbody>' + "".join(rows)
            + "</tbody></table>")


def _system_table(scores: dict[str, Scores], key: str, index_cols: list[str]) -> tuple[pd.DataFrame, dict]:
    """Wide table: index columns, then per metric every system's value (fusion first), gain after the headline."""
    protocol = next(iter(scores.values())).protocol
    frames = {n: getattr(s, key).set_index(index_cols) for n, s in scores.items()}
    base = frames[FUSION].index
    out = pd.DataFrame(index=base)
    kinds = {c: ("int" if c == "obj" else "text") for c in index_cols}
    if "n_obj" in frames[FUSION].columns:
        out["objects"] = frames[FUSION]["n_obj"]
        kinds["objects"] = "int"
    members = [n for n in scores if n != FUSION]
    for k, (label, col) in enumerate(METRICS[protocol]):
        for n in [FUSION, *members]:
            name = f"{n} {label} (%)"
            out[name] = frames[n].reindex(base)[col] if col in frames[n].columns else np.nan
            kinds[name] = "score"
        if k == 0 and members:
            best = pd.concat([frames[n].reindex(base)[col] for n in members], axis=1).max(axis=1)
            out["fusion gain (points)"] = out[f"{FUSION} {label} (%)"] - best
            kinds["fusion gain (points)"] = "gain"
    return out.reset_index(), kinds


# ------------------------------------------------------------------------------------------------ per video
def _labels(folder: Path, video: str, frame: str) -> np.ndarray | None:
    from data.labels import read_labels
    p = folder / video / f"{frame}.png"
    return read_labels(p) if p.is_file() else None


def disagreement(label_dirs: dict[str, Path], video, frames: list[str]) -> tuple[np.ndarray, dict[str, float]]:
    """Per pixel the share of frames where the members' labels are not all equal; per frame the share of
    pixels where they differ."""
    heat = np.zeros(video.size, np.float64)
    per_frame = {}
    n = 0
    for f in frames:
        maps = [m for m in (_labels(d, video.name, f) for d in label_dirs.values()) if m is not None]
        if len(maps) < 2:
            continue
        diff = np.zeros(video.size, bool)
        for m in maps[1:]:
            diff |= m != maps[0]
        heat += diff
        per_frame[f] = float(diff.mean())
        n += 1
    return heat / max(n, 1), per_frame


def _worst_frames(ctx: RunContext, scores, video, per_frame_disagree: dict[str, float], k: int) -> list[tuple]:
    """(frame name, why) of the ``k`` worst frames: lowest fusion J (mean over objects) with ground truth, else
    most member disagreement, else evenly spread frames."""
    if scores is not None:
        pf = scores[FUSION].per_frame
        col = FRAME_J[ctx.protocol]
        sub = pf[pf["video"] == video.name].dropna(subset=[col])
        if len(sub):
            mean_j = sub.groupby("frame_name")[col].mean().sort_values(kind="mergesort")
            return [(str(f), f"fusion J {pct(j)}%") for f, j in mean_j.head(k).items()]
    if per_frame_disagree:
        ranked = sorted(per_frame_disagree.items(), key=lambda kv: -kv[1])[:k]
        return [(f, f"members disagree on {100 * d:.2f}% of pixels") for f, d in ranked]
    names = video.frame_names
    picks = sorted({names[int(i)] for i in np.linspace(0, len(names) - 1, min(k, len(names)))})
    return [(f, "") for f in picks]


def _frame_j(scores, system: str, video: str, frame: str, protocol: str) -> float | None:
    if scores is None:
        return None
    pf = scores[system].per_frame
    sel = pf[(pf["video"] == video) & (pf["frame_name"].astype(str) == frame)][FRAME_J[protocol]].dropna()
    return float(sel.mean()) if len(sel) else None


def video_section(ctx: RunContext, video, scores, label_dirs: dict[str, Path], out: Path, worst: int) -> str:
    """One video's curves, strips and heat map: pictures written under assets/<video>/, HTML returned."""
    from submission.overlay import blend
    assets = out / ASSETS / video.name
    rel = f"{ASSETS}/{video.name}"
    parts = [f'<section class="video" id="v-{esc(video.name)}"><h3>{esc(video.name)}</h3>']
    curves = {}
    if scores is not None:
        s = scores[FUSION].per_video.set_index("video")
        label, col = METRICS[ctx.protocol][0]
        members = [n for n in scores if n != FUSION]
        line = [f"fusion {esc(label)} <b>{pct(s.loc[video.name, col])}%</b>"]
        for n in members:
            line.append(f"{esc(n)} {pct(scores[n].per_video.set_index('video').loc[video.name, col])}%")
        parts.append('<p class="scoreline">' + " · ".join(line) + "</p>")
        jcol = FRAME_J[ctx.protocol]
        for n, sc in scores.items():
            pf = sc.per_frame[sc.per_frame["video"] == video.name]
            for o, g in pf.groupby("obj"):
                g = g.dropna(subset=[jcol])
                if len(g):
                    curves.setdefault(int(o), {})[n] = (g["frame"].to_numpy(), g[jcol].to_numpy())
    row = []
    if scores is not None and curves:
        atomic_write_bytes(assets / "j_curves.png", plots.j_curves(video.name, curves, FUSION))
        row.append(f'<img class="plot" src="{rel}/j_curves.png" alt="J per frame of {esc(video.name)}">')
    members = {n: d for n, d in label_dirs.items() if n != FUSION}
    names = video.frame_names
    if len(names) > MAX_AGREEMENT_FRAMES:   # long videos: an even sample of frames is enough for the map
        names = [names[int(i)] for i in np.linspace(0, len(names) - 1, MAX_AGREEMENT_FRAMES)]
    heat, per_frame = disagreement(members, video, names) if len(members) >= 2 else (None, {})
    if heat is not None:
        atomic_write_bytes(assets / "disagreement.png",
                           plots.disagreement_map(video.name, video.frame(0), heat, list(members)))
        mean = 100 * float(np.mean(list(per_frame.values()))) if per_frame else 0.0
        row.append(f'<figure class="heat"><img class="plot heat" src="{rel}/disagreement.png" '
                   f'alt="member disagreement of {esc(video.name)}"><figcaption>Member disagreement: the members\' '
                   f"labels differ on {mean:.2f}% of the pixels on average</figcaption></figure>")
    if row:
        parts.append('<div class="plots">' + "".join(row) + "</div>")
    frames = _worst_frames(ctx, scores, video, per_frame, worst)
    index = {n: i for i, n in enumerate(video.frame_names)}
    strips = []
    for f, why in frames:
        full = video.frame(index[f])
        tiles = []
        gt = video.annotation(f) if f in set(video.annotation_names) else None
        img, small_gt = plots.shrink(full, gt)
        first = blend(img, small_gt) if gt is not None else img
        atomic_write_bytes(assets / f"{f}_gt.jpg", plots.tile(first))
        tiles.append((f"{f}_gt.jpg", "frame + ground truth" if gt is not None else "frame"))
        for n, d in label_dirs.items():
            lab = _labels(d, video.name, f)
            if lab is None:
                continue
            j = _frame_j(scores, n, video.name, f, ctx.protocol) if scores is not None else None
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in n)
            atomic_write_bytes(assets / f"{f}_{safe}.jpg", plots.tile(blend(img, plots.shrink(full, lab)[1])))
            tiles.append((f"{f}_{safe}.jpg", n + (f" · J {pct(j)}%" if j is not None else "")))
        figs = "".join(f'<figure><img src="{rel}/{esc(t)}" alt="{esc(c)}"><figcaption>{esc(c)}</figcaption>'
                       f"</figure>" for t, c in tiles)
        strips.append(f'<div class="strip-head">frame {esc(f)}{" — " + esc(why) if why else ""}</div>'
                      f'<div class="strip">{figs}</div>')
    parts.append('<h4>Worst frames</h4>' if scores is not None or per_frame else '<h4>Frames</h4>')
    parts += strips
    parts.append("</section>")
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------------ sections
def metadata_section(ctx: RunContext) -> str:
    from data.store import LogitStore
    parts = ["<h2 id='run'>Run</h2>"]
    cfg = ctx.run / "config.toml"
    rows = []
    ck = (ctx.meta.get("checkpoints") or {}).get("members", {})
    for m in ctx.fusion.members:
        entry = ck.get(m.name, {})
        sha, name = entry.get("sha256"), entry.get("checkpoint")
        manifest = {}
        try:
            manifest = LogitStore.open(m.store).manifest
        except Exception:  # a moved store: the run's own record is enough
            pass
        sha = sha or manifest.get("checkpoint_sha256") or "unknown"
        name = name or manifest.get("checkpoint") or ""
        rows.append({"store": m.name, "member": m.group_name, "model": manifest.get("model", ""),
                     "checkpoint": Path(str(name)).name if name else "", "sha256": sha,
                     "weight": f"{m.weight:g}", "scale / bias": f"{m.scale:g} / {m.bias:g}"})
    parts.append(f"<p>fusion: <b>{esc(ctx.fusion.mode)}</b> voting of {len(ctx.fusion.members)} stores "
                 f"({len(ctx.fusion.groups())} members); dataset <code>{esc(ctx.dataset.root)}</code>, "
                 f"{len(ctx.dataset.video_names)} videos; protocol {esc(ctx.protocol)}</p>")
    if rows:
        t = pd.DataFrame(rows)
        parts.append("<h3>Members and checkpoints</h3>" + sortable_table(t, {}, "meta"))
    timings = ctx.meta.get("timings") or {}
    order = ["infer", "sweep", "fuse", "submit", "evaluate", "report"]
    timings = dict(sorted(timings.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99))
    if timings:
        t = pd.DataFrame({"stage": list(timings), "seconds": [f"{v:.1f}" for v in timings.values()]})
        parts.append("<h3>Timings</h3>" + sortable_table(t, {}, "meta small"))
    if cfg.is_file():
        parts.append(f"<details><summary>config.toml</summary><pre>{esc(cfg.read_text())}</pre></details>")
    env = ctx.meta.get("environment")
    if env:
        parts.append(f"<details><summary>environment</summary><pre>{esc(json.dumps(env, indent=1))}</pre>"
                     "</details>")
    return "\n".join(parts)


def scores_section(scores: dict[str, Scores]) -> str:
    protocol = next(iter(scores.values())).protocol
    members = [n for n in scores if n != FUSION]
    rows = []
    for n in [FUSION, *members]:
        g = scores[n].global_
        rows.append({"system": n, **{f"{lab} (%)": g.get(GLOBAL_KEYS[protocol][lab]) for lab, _ in
                                     METRICS[protocol]}})
    t = pd.DataFrame(rows)
    kinds = {c: "score" for c in t.columns if c != "system"}
    head = METRICS[protocol][0][0]
    best_member = max((scores[n].headline for n in members), default=None)
    gain = ""
    if best_member is not None:
        d = scores[FUSION].headline - best_member
        cls = "gain-pos" if d > 0 else ("gain-neg" if d < 0 else "gain-zero")
        gain = (f'<p class="gain {cls}">fusion {esc(head)} {pct(scores[FUSION].headline)}%: '
                f"{100 * d:+.2f} points over the best member</p>")
    pv, pv_kinds = _system_table(scores, "per_video", ["video"])
    po, po_kinds = _system_table(scores, "per_object", ["video", "obj"])
    return ("<h2 id='scores'>Scores</h2>" + gain
            + f"<p>{esc(protocol)} protocol; all scores in percent (two decimals); gain = fusion minus the best "
              "member on that row, in points. Click a column header to sort.</p>"
            + sortable_table(t, kinds, "global")
            + "<h3 id='per-video'>Per video</h3>" + sortable_table(pv, pv_kinds, "wide")
            + "<h3 id='per-object'>Per object</h3>" + sortable_table(po, po_kinds, "wide"))


def sweep_section(run: Path, out: Path) -> str:
    folder = run / "sweep"
    ranked = folder / "sweep_ranked.csv"
    if not ranked.is_file():
        return ""
    t = pd.read_csv(ranked)
    info = _read_json(folder / "sweep.json", {})
    show = t[["rank", "label", "mode", "score"]].head(20).rename(columns={"score": "score (%)"})
    parts = [f"<h2 id='sweep'>Sweep</h2><p>{len(t)} fusion settings ranked by {esc(info.get('protocol', ''))}; "
             f"the top {len(show)} (the best became this run's fusion).</p>",
             sortable_table(show, {"rank": "int", "score (%)": "score"}, "sweep")]
    imgs = []
    for name in ("sweep_lines.png", "sweep_heatmap.png", "sweep_scores.png"):
        if (folder / name).is_file():
            dest = out / ASSETS / "sweep" / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(folder / name, dest)
            imgs.append(f'<img class="plot" src="{ASSETS}/sweep/{name}" alt="{name}">')
    parts.append('<div class="plots">' + "".join(imgs) + "</div>")
    return "\n".join(parts)


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f4f6f9}
header{background:#1d2330;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;color:#c5cbd8}main{padding:8px 28px 40px;max-width:1500px}
nav{margin-top:8px}nav a{color:#9cc3ff;margin-right:14px;text-decoration:none}
h2{margin-top:28px;border-bottom:2px solid #d5dae3;padding-bottom:4px}h3{margin:18px 0 6px}
table{border-collapse:collapse;background:#fff;margin:6px 0 14px;box-shadow:0 1px 2px #0001}
th,td{padding:4px 9px;border-bottom:1px solid #e6e9ef;text-align:left;white-space:nowrap}
th{background:#e9edf3;cursor:pointer;user-select:none;position:sticky;top:0}th:hover{background:#dbe3ef}
th.asc::after{content:" ▲"}th.desc::after{content:" ▼"}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.na{color:#aab}.gain-pos{background:#dff3e2;color:#14632a;font-weight:600}
.gain-neg{background:#fbe1e1;color:#8a1c1c;font-weight:600}.gain-zero{color:#667}
p.gain{display:inline-block;padding:6px 12px;border-radius:6px;font-size:16px}
.wide{font-size:13px}.tablewrap{overflow-x:auto;max-height:560px;overflow-y:auto}
section.video{background:#fff;padding:10px 16px 16px;margin:14px 0;border-radius:8px;box-shadow:0 1px 3px #0002}
section.video h3{margin-top:4px}.scoreline{color:#445}img.plot{max-width:100%;display:block;margin:6px 0}
img.heat{max-width:520px}.strip{display:flex;flex-wrap:wrap;gap:8px;margin-bottom:10px}
.strip figure{margin:0;background:#f4f6f9;padding:4px;border-radius:4px}
.strip img{display:block;max-width:288px}figcaption{font-size:12px;color:#334;padding-top:3px;text-align:center}
.strip-head{font-weight:600;margin:8px 0 4px;color:#334}pre{background:#fff;padding:10px;overflow-x:auto;
border:1px solid #e6e9ef}details{margin:8px 0}summary{cursor:pointer;font-weight:600}
figure.heat{margin:0}figure.heat figcaption{text-align:left;max-width:520px}
.plots{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}.plots img.plot{max-width:680px}
.note{background:#fff7dd;border-left:4px solid #e0b400;padding:8px 12px}
"""

JS = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var asc = !th.classList.contains('asc');
      table.querySelectorAll('th').forEach(function (h) { h.classList.remove('asc', 'desc'); });
      th.classList.add(asc ? 'asc' : 'desc');
      rows.sort(function (a, b) {
        var x = a.cells[col].getAttribute('data-v'), y = b.cells[col].getAttribute('data-v');
        var fx = parseFloat(x), fy = parseFloat(y), d;
        if (x === '' || y === '') { d = (x === '') - (y === ''); return d; }
        d = (!isNaN(fx) && !isNaN(fy) && String(fx) !== 'NaN') ? fx - fy : x.localeCompare(y);
        return asc ? d : -d;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def build_report(run: str | Path, out: str | Path | None = None, root: str | None = None, split: str | None = None,
                 protocol: str | None = None, max_videos: int = 40, worst_frames: int = 3,
                 echo: Callable[[str], None] | None = None) -> Path:
    """Write ``out/index.html`` (default ``RUN/report``) and its ``assets/``; returns the index path."""
    from data.progress import progress
    from submission.writer import LABELS_SUBDIR
    start = time.perf_counter()
    ctx = open_run(run, root, split, protocol)
    out = Path(out) if out is not None else ctx.run / REPORT_DIR
    make_output_dir(out, "report folder")
    scores = None
    if ctx.has_gt:
        scores = member_scores(ctx.run, ctx.fusion, ctx.dataset, ctx.protocol,
                               fusion_eval=ctx.run / "eval", echo=echo)
        label_dirs = member_labels(ctx.run, ctx.fusion, ctx.dataset)
    else:
        label_dirs = member_labels(ctx.run, ctx.fusion, ctx.dataset, echo)
    label_dirs = {**label_dirs, FUSION: ctx.run / LABELS_SUBDIR}
    if (out / ASSETS).is_dir():
        shutil.rmtree(out / ASSETS)   # pictures of an earlier report (other videos, other frames)
    names = list(ctx.dataset.video_names)
    if scores is not None:
        head = METRICS[ctx.protocol][0][1]
        order = scores[FUSION].per_video.set_index("video")[head].reindex(names)
        names = list(order.sort_values(kind="mergesort").index)   # worst first
    shown = names[:max_videos]
    sections = []
    for v in progress(shown, desc="report", unit="video"):
        sections.append(video_section(ctx, ctx.dataset[v], scores, label_dirs, out, worst_frames))
    headline = ""
    if scores is not None:
        label = METRICS[ctx.protocol][0][0]
        headline = f" · fusion {label} {pct(scores[FUSION].headline)}%"
    title = f"MASSeg run {ctx.run.name}"
    nav = ["<a href='#run'>Run</a>"]
    body = [metadata_section(ctx)]
    if scores is not None:
        nav.append("<a href='#scores'>Scores</a>")
        body.append(scores_section(scores))
    else:
        body.append("<p class='note'>This split has no ground truth on every frame (a test split): no scores; "
                    "overlays and member agreement only. The frames shown are those where the members disagree "
                    "most.</p>")
    sw = sweep_section(ctx.run, out)
    if sw:
        nav.append("<a href='#sweep'>Sweep</a>")
        body.append(sw)
    nav.append("<a href='#videos'>Videos</a>")
    more = f" (the {len(shown)} worst of {len(names)}; `--max-videos` shows more)" if len(shown) < len(names) else ""
    body.append(f"<h2 id='videos'>Videos{esc(more)}</h2>" + "".join(sections))
    doc = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
           f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{CSS}</style></head><body>"
           f"<header><h1>{esc(title)}</h1><p>{len(ctx.dataset.video_names)} videos · "
           f"{len(ctx.fusion.groups())} members · {esc(ctx.fusion.mode)} fusion{esc(headline)}</p>"
           f"<nav>{''.join(nav)}</nav></header><main>{''.join(body)}</main>"
           f"<script>{JS}</script></body></html>\n")
    index = out / "index.html"
    atomic_write_text(index, doc)
    if echo:
        echo(f"[report] {index} ({len(shown)} videos, {time.perf_counter() - start:.1f} s)")
    return index

