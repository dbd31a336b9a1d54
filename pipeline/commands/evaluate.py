"""`masseg evaluate`: J&F of a prediction folder against ground truth, with the official evaluators' numbers.

Point it at a dataset root (``Annotations/`` found inside, DAVIS's ``Annotations/480p`` too, ``meta.json`` used
for MOSEv2) or directly at an annotation folder. Any bad input (missing video or frame, size mismatch, RGB PNG,
unknown object id, empty split) stops with one line naming the file and a non-zero exit status.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import click

from data.dataset import SAV_ANNOTATIONS, read_split_file
from data.labels import flatten_object_folders
from submission.jf.errors import EvaluationError


def _annotations(root: Path) -> Path:
    ann = root / "Annotations"
    if not ann.is_dir() and (root / SAV_ANNOTATIONS).is_dir():
        return root / SAV_ANNOTATIONS  # SA-V: per-object folders, flattened below
    if not ann.is_dir():
        raise EvaluationError("no Annotations/ folder in the dataset root", root,
                              "pass --gt with the annotation folder instead")
    return ann / "480p" if (ann / "480p").is_dir() else ann


def _split_file(root: Path | None, split: str) -> Path:
    p = Path(split)
    if p.is_file():
        return p
    name = p.name if p.suffix == ".txt" else f"{p.name}.txt"
    candidates = []
    if root is not None:
        candidates += [root / name, root / "ImageSets" / name]
        if (root / "ImageSets").is_dir():
            candidates += sorted((root / "ImageSets").glob(f"*/{name}"))
    for c in candidates:
        if c.is_file():
            return c
    raise EvaluationError(f"split {split!r} not found", root or p,
                          "pass a split file, or a name found as <root>/<name>.txt or <root>/ImageSets/**/<name>.txt")


@click.command()
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="dataset root holding Annotations/ (and meta.json for MOSEv2)")
@click.option("--gt", "gt_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="annotation folder <video>/<frame>.png (instead of --root)")
@click.option("--pred", "pred_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="prediction folder <video>/<frame>.png")
@click.option("--split", default=None, help="split list: a file, or a name looked up under the root")
@click.option("--videos", default=None, help="comma-separated video names (instead of --split)")
@click.option("--protocol", "protocols", multiple=True, default=("davis",), show_default=True,
              type=click.Choice(["davis", "mosev2", "vos-benchmark", "all"]),
              help="evaluator to reproduce; repeat for several (one pass computes all)")
@click.option("--meta", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="MOSEv2 meta.json listing each video's objects (default: <root>/meta.json if present)")
@click.option("-j", "--jobs", type=int, default=2, show_default=True, help="worker processes")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="write global/per-video/per-object/per-frame tables (CSV, Markdown, JSON) here")
@click.option("--strict-compat", is_flag=True, help="reproduce known evaluator bugs (DAVIS uint8 decay bins)")
@click.option("--worst", type=click.IntRange(0), default=5, show_default=True,
              help="list this many videos with the lowest score (0: none)")
@click.option("--unknown-ids", type=click.Choice(["error", "ignore"]), default="error", show_default=True,
              help="a predicted id that is not a ground-truth object: stop, or ignore it as the evaluators do")
@click.option("--extra-frames", type=click.Choice(["error", "ignore"]), default="error", show_default=True,
              help="predicted frames without ground truth (predictions on every frame, sparse GT: YouTube-VOS, "
                   "SA-V): stop, or score only the annotated frames (what vos-benchmark does)")
def evaluate(root, gt_dir, pred_dir, split, videos, protocols, meta, jobs, out_dir, strict_compat, worst,
             unknown_ids, extra_frames):
    """Evaluate predictions with the DAVIS, MOSEv2 and/or vos-benchmark protocol."""
    from submission.jf import evaluate as run_evaluation

    if (root is None) == (gt_dir is None):
        raise click.UsageError("give exactly one of --root and --gt")
    if split and videos:
        raise click.UsageError("give at most one of --split and --videos")
    if root is not None:
        if not root.is_dir():
            raise EvaluationError("dataset root not found", root)
        gt_dir = _annotations(root)
        if meta is None and (root / "meta.json").is_file() and {"mosev2", "all"} & set(protocols):
            meta = root / "meta.json"
    names, source = None, None
    if split:
        source = _split_file(root, split)
        names = read_split_file(source)
    elif videos is not None:
        names = [v.strip() for v in videos.split(",") if v.strip()]
        if not names:
            raise EvaluationError("--videos lists no video", None, "give comma-separated names")
    if jobs < 1:
        raise click.BadParameter("must be >= 1", param_hint="--jobs")
    if out_dir is not None:
        from data.atomic import check_writable
        check_writable(out_dir, "tables folder")
    with tempfile.TemporaryDirectory(prefix="masseg-eval-") as tmp:
        # SA-V stores one folder of binary PNGs per object: scored as label maps (lower id on top on overlap)
        if flatten_object_folders(gt_dir, Path(tmp) / "gt", names):
            gt_dir = Path(tmp) / "gt"
        if flatten_object_folders(pred_dir, Path(tmp) / "pred", names):
            pred_dir = Path(tmp) / "pred"
        result = run_evaluation(gt_dir, pred_dir, videos=names, protocol=list(protocols), n_jobs=jobs,
                                on_unknown_ids=unknown_ids, strict_compat=strict_compat, meta=meta,
                                videos_source=source, extra_frames=extra_frames)
    click.echo(result.summary())
    if worst:
        click.echo(result.worst_text(worst))
    if out_dir is not None:
        paths = result.write(out_dir)
        click.echo(f"tables written to {out_dir} ({', '.join(sorted(p.name for p in paths.values()))})")
