"""`masseg fuse`: fuse member logit stores into label maps (and optionally a validated submission zip)."""
from __future__ import annotations

from pathlib import Path

import click


def _member_option(value: str):
    """``PATH`` or ``PATH@WEIGHT``."""
    path, sep, weight = value.rpartition("@")
    if not sep:
        return value, 1.0
    try:
        return path, float(weight)
    except ValueError:
        raise click.BadParameter(f"{value!r}: the part after @ must be a weight (a number)") from None


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="fusion config TOML (members, weights, output scaling, groups, mode); see ensemble/config.py")
@click.option("--member", "members", multiple=True, metavar="DIR[@WEIGHT]",
              help="instead of --config: a member (repeat): a logit store, or a folder of another tool's label "
                   "PNGs (<video>/<frame>.png, or a masseg run folder); equal weights unless @WEIGHT is given")
@click.option("--confidence", type=float, default=None,
              help="with --member: soft-voting confidence of PNG members, in (0.5, 1] (default 1 = one-hot)")
@click.option("--mode", type=click.Choice(["soft", "majority"]), default=None,
              help="voting mode (default: the config's, else soft)")
@click.option("--out", "out", required=True, type=click.Path(),
              help="run folder: labels/<video>/<frame>.png and fusion.toml are written there")
@click.option("--root", default=None, type=click.Path(file_okay=False),
              help="dataset root: frame lists, sizes, object ids and palettes come from it (recommended)")
@click.option("--split", "split_name", default=None, help="split list (name or file); default: all videos of the root")
@click.option("--resolution", default=None, help="DAVIS resolution folder (e.g. 480p); detected when absent")
@click.option("--objects-from", type=click.Choice(["auto", "first_frame", "appearance"]), default="auto",
              show_default=True, help="which objects a video has (see masseg submit)")
@click.option("--video", "videos", multiple=True, help="fuse only these videos (repeat)")
@click.option("--jobs", type=int, default=1, show_default=True, help="videos fused in parallel (joblib)")
@click.option("--overwrite", is_flag=True, help="re-fuse every frame even if the run folder was fused before")
@click.option("--zip", "zip_path", default=None, type=click.Path(dir_okay=False),
              help="also validate the labels against the split and write the submission zip (needs --root)")
@click.option("--palette", type=click.Choice(["davis", "dataset"]), default="dataset", show_default=True,
              help="palette of the zip's PNGs")
def fuse(config_path, members, confidence, mode, out, root, split_name, resolution, objects_from, videos, jobs, overwrite,
         zip_path, palette):
    """Fuse members (SAM2 / Cutie logit stores, other tools' label PNGs) by weighted soft or majority voting
    into label maps.

    One member with weight 1, scale 1 and bias 0 reproduces that model's own masks (or PNGs) exactly.
    """
    from data.atomic import check_writable
    from data.dataset import VOSDataset
    from data.store import resolve_objects_from
    from submission.validate import plural
    from ensemble.config import config_from_stores, load_config
    from ensemble.fuse import fuse as run_fuse
    from submission.build import submit_dataset_labels
    from submission.writer import LABELS_SUBDIR

    if bool(config_path) == bool(members):
        raise click.UsageError("give either --config or one or more --member")
    if config_path and confidence is not None:
        raise click.UsageError("--confidence goes with --member; in a config, set confidence = ... on the PNG member")
    confidence = 1.0 if confidence is None else confidence
    check_writable(out, "run folder")
    if zip_path:
        check_writable(zip_path, "submission zip", is_dir=False)
    if config_path:
        cfg = load_config(config_path)
        if mode:
            cfg = cfg.with_settings(mode=mode)
    else:
        pairs = [_member_option(m) for m in members]
        cfg = config_from_stores([p for p, _ in pairs], [w for _, w in pairs], mode or "soft", confidence)
    if zip_path and not root:
        raise click.UsageError("--zip needs --root (the split the submission is checked against)")
    if zip_path and videos:
        raise click.UsageError("--zip covers the whole split; drop --video")
    objects_from = resolve_objects_from(objects_from, [m.store for m in cfg.members])  # a store's flag wins "auto"
    ds = VOSDataset(root, split_name, resolution=resolution, objects_from=objects_from) if root else None
    if jobs < 1:
        raise click.BadParameter("--jobs must be >= 1")
    results = run_fuse(cfg, out, dataset=ds, videos=list(videos) or None, jobs=jobs, overwrite=overwrite,
                       echo=click.echo)
    written = sum(r.frames_written for r in results)
    click.echo(f"fused {plural(len(results), 'video')} ({plural(written, 'frame')} written) -> {out}/labels")
    if zip_path:
        res = submit_dataset_labels(Path(out) / LABELS_SUBDIR, ds, zip_path, palette)
        click.echo(f"submission OK: {res.videos} videos, {res.frames} frames -> {zip_path} (sha256 {res.sha256})")
