"""`masseg submit` and `masseg validate`: build the official zip from label maps, and check a folder or zip
against a split before uploading it. Problems exit with status 1 and a report of every problem; a bad
argument or unreadable dataset exits with status 2 (``pipeline.cli.main``)."""
from __future__ import annotations

from pathlib import Path

import click

from data.atomic import check_writable
from data.dataset import VOSDataset

DATASET_OPTIONS = [
    click.option("--root", required=True, type=click.Path(file_okay=False),
                 help="dataset root (holds JPEGImages/ and Annotations/)"),
    click.option("--split", "split_name", default=None,
                 help="split list (name in the root/ImageSets, or a file); default: every video of the root"),
    click.option("--resolution", default=None, help="DAVIS resolution folder (e.g. 480p); detected when absent"),
    click.option("--objects-from", type=click.Choice(["auto", "first_frame", "appearance"]), default="auto",
                 show_default=True,
                 help="which objects a video has: first-frame mask (DAVIS/MOSE) or every given one (YouTube-VOS); "
                      "auto = appearance when the root has meta.json"),
    click.option("--max-per-kind", type=int, default=None,
                 help="print at most this many lines per problem kind (default: all)"),
    click.option("--layout", type=click.Choice(["root", "annotations-root"]), default="root", show_default=True,
                 help="where the video folders sit in the zip: at its root (MOSE, DAVIS) or in Annotations/ "
                      "(YouTube-VOS 2019)"),
    click.option("--frames-root", type=click.Path(file_okay=False), default=None,
                 help="a root whose JPEGImages/ lists the frames the benchmark scores (YouTube-VOS valid/, every "
                      "5th frame) when --root is the all-frames copy inference ran on; only those are checked/packed"),
]


class ProblemsFound(click.ClickException):
    """Exit status 1 with a one-line verdict on stderr (the report itself goes to stdout). A ClickException
    because ``pipeline.cli.main`` runs click with standalone_mode=False, which drops ``ctx.exit`` codes."""

    exit_code = 1


def dataset_options(fn):
    for opt in reversed(DATASET_OPTIONS):
        fn = opt(fn)
    return fn


def _expected(root, split_name, resolution, objects_from, frames_root=None):
    from submission.expected import expected_from_dataset, restrict_frames
    ds = VOSDataset(root, split_name, resolution=resolution, objects_from=objects_from)
    expected = expected_from_dataset(ds)
    if frames_root:
        expected = restrict_frames(expected, VOSDataset(frames_root, split_name, objects_from="first_frame"))
    return ds, expected


def _run_stores(labels) -> list[Path]:
    """Member stores of a fused run folder (``fusion.toml`` in the folder or above its labels/)."""
    from ensemble.fuse import CONFIG_NAME
    for folder in (Path(labels), Path(labels).parent):
        if (folder / CONFIG_NAME).is_file():
            from ensemble.config import load_config
            return [m.store for m in load_config(folder / CONFIG_NAME).members]
    return []


@click.command()
@click.argument("source", type=click.Path())
@dataset_options
def validate(source, root, split_name, resolution, objects_from, max_per_kind, layout, frames_root):
    """Check a submission folder or zip against a split; report every problem (exit 1) or OK (exit 0)."""
    from submission.validate import plural, validate as run_validate
    _, expected = _expected(root, split_name, resolution, objects_from, frames_root)
    report = run_validate(source, expected, layout)
    click.echo(report.format(max_per_kind))
    if not report.ok:
        raise ProblemsFound(f"{plural(len(report.problems), 'problem')} in {source}")


@click.command()
@click.option("--labels", "labels", required=True, type=click.Path(file_okay=False),
              help="folder of label maps <video>/<frame>.png (P or L PNGs), or a fused run folder holding labels/")
@click.option("--out", "out", required=True, type=click.Path(), help="zip to write")
@click.option("--palette", type=click.Choice(["davis", "dataset"]), default="davis", show_default=True,
              help="palette of the PNGs: the DAVIS palette, or each video's own first-frame annotation palette")
@dataset_options
def submit(labels, out, palette, root, split_name, resolution, objects_from, max_per_kind, layout, frames_root):
    """Convert label maps to the official layout, validate them and write a byte-identical zip.

    The zip holds <video>/<frame>.png for every frame of every video of the split, at the original
    resolution, as palette PNGs. Nothing is written when a problem is found.
    """
    from submission.build import build_submission, resolve_labels_dir
    from submission.expected import palettes_for
    from submission.validate import Report
    from data.store import resolve_objects_from
    from submission.validate import plural
    check_writable(out, "submission zip", is_dir=False)
    objects_from = resolve_objects_from(objects_from, _run_stores(labels))  # a fused run's stores win "auto"
    ds, expected = _expected(root, split_name, resolution, objects_from, frames_root)
    labels_dir = resolve_labels_dir(labels, ds.video_names)
    result = build_submission(labels_dir, expected, out, palettes_for(ds, palette), layout)
    if result.ignored:
        ignored = Report("", result.ignored).counts()
        click.echo(f"note: ignored in {labels_dir} (not copied to the zip): "
                   + ", ".join(f"{k} {n}" for k, n in ignored.items()))
    if not result.ok:
        click.echo(result.report.format(max_per_kind))
        note = (f"; the existing {out} was left unchanged and does not hold these labels"
                if Path(out).exists() else "")
        raise ProblemsFound(f"submission refused, {plural(len(result.report.problems), 'problem')}: "
                            f"no zip written to {out}{note}")
    click.echo(f"wrote {out}: {result.videos} videos, {result.frames} frames, {result.zip_bytes} bytes, "
               f"sha256 {result.sha256}")
