"""`masseg sweep`: compare fusion settings on a split with ground truth; write a ranked table, plots and the best
setting as a fusion config (``best.toml``, accepted by ``masseg fuse --config``)."""
from __future__ import annotations

import click


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="base fusion config TOML: the members (and the defaults of anything not swept)")
@click.option("--member", "members", multiple=True, metavar="DIR",
              help="instead of --config: a member (repeat): a logit store or a folder of label PNGs")
@click.option("--confidence", type=float, default=None,
              help="with --member: soft-voting confidence of PNG members, in (0.5, 1] (default 1 = one-hot)")
@click.option("--root", required=True, type=click.Path(file_okay=False),
              help="dataset root with ground truth on every frame to score (e.g. a split carved from train)")
@click.option("--split", "split_name", default=None, help="split list (name or file); default: all videos of the root")
@click.option("--resolution", default=None, help="DAVIS resolution folder (e.g. 480p); detected when absent")
@click.option("--objects-from", type=click.Choice(["auto", "first_frame", "appearance"]), default="auto",
              show_default=True, help="which objects a video has (see masseg submit)")
@click.option("--video", "videos", multiple=True, help="sweep on these videos only (repeat)")
@click.option("--out", "out", required=True, type=click.Path(),
              help="folder for sweep_ranked.{csv,md}, sweep_per_video.{csv,md}, plots, best.toml")
@click.option("--weights", "weights", multiple=True, metavar="simplex:STEP | W1,W2,...",
              help="weight vectors to try (repeat): a grid over the simplex, or explicit weights in member order; "
                   "default: the config's weights")
@click.option("--mode", "modes", multiple=True, type=click.Choice(["soft", "majority"]),
              help="voting modes to try (repeat); default: the config's mode")
@click.option("--scale", "scales", multiple=True, metavar="MEMBER=VALUES",
              help="output scales to try for a member (repeat): 1,2,4 or start:stop:step; MEMBER * = every member")
@click.option("--bias", "biases", multiple=True, metavar="MEMBER=VALUES", help="output biases to try, as --scale")
@click.option("--protocol", default="davis", show_default=True,
              type=click.Choice(["davis", "mosev2", "vos-benchmark"]), help="J&F protocol that ranks the settings")
@click.option("--meta", default=None, type=click.Path(dir_okay=False),
              help="MOSEv2 meta.json listing the objects to score (mosev2 protocol)")
@click.option("--jobs", type=int, default=1, show_default=True, help="videos evaluated in parallel (joblib)")
@click.option("--max-settings", type=int, default=2000, show_default=True,
              help="refuse larger sweeps (the product of weights x modes x scales x biases grows fast)")
def sweep(config_path, members, confidence, root, split_name, resolution, objects_from, videos, out, weights, modes, scales,
          biases, protocol, meta, jobs, max_settings):
    """Evaluate many fusion settings in one pass (each member frame decoded and upsampled once, every setting
    scored against the ground truth with the project's J&F evaluator) and rank them."""
    from data.dataset import VOSDataset
    from data.store import resolve_objects_from
    from ensemble.config import config_from_stores, load_config
    from ensemble.errors import FusionConfigError
    from ensemble.grid import make_settings, parse_member_values, parse_weights
    from ensemble.report import to_markdown, write_report
    from ensemble.sweep import sweep as run_sweep

    if bool(config_path) == bool(members):
        raise click.UsageError("give either --config or one or more --member")
    if config_path and confidence is not None:
        raise click.UsageError("--confidence goes with --member; in a config, set confidence = ... on the PNG member")
    confidence = 1.0 if confidence is None else confidence
    from data.atomic import check_writable
    check_writable(out, "sweep folder")
    cfg = load_config(config_path) if config_path else config_from_stores(members, confidence=confidence)
    weight_vectors = [w for text in weights for w in parse_weights(text, len(cfg.members))] or None
    settings = make_settings(cfg, list(modes) or None, weight_vectors,
                             parse_member_values(scales, cfg.names, "scale", skip=cfg.png_names),
                             parse_member_values(biases, cfg.names, "bias", skip=cfg.png_names))
    if len(settings) > max_settings:
        raise FusionConfigError(f"{len(settings)} settings exceed --max-settings {max_settings}", None,
                                "use a coarser grid or fewer scale/bias values, or raise --max-settings")
    if jobs < 1:
        raise click.BadParameter("--jobs must be >= 1")
    objects_from = resolve_objects_from(objects_from, [m.store for m in cfg.members])  # a store's flag wins "auto"
    ds = VOSDataset(root, split_name, resolution=resolution, objects_from=objects_from)
    click.echo(f"sweeping {len(settings)} settings of {len(cfg.members)} members over "
               f"{len(videos) if videos else len(ds.video_names)} videos ({protocol})")
    result = run_sweep(cfg, settings, ds, protocol, videos=list(videos) or None, jobs=jobs, meta=meta,
                       echo=click.echo)
    paths = write_report(result, out, extra={"root": str(root), "split": split_name})
    top = result.table[["rank", "label", "score"]].head(5).copy()
    top["score"] = 100 * top["score"]
    top = top.rename(columns={"score": f"{protocol} score (%)"})
    click.echo(to_markdown(top, digits=2).rstrip())
    click.echo(f"{len(settings)} settings in {result.seconds:.1f} s; best -> {paths['best.toml']}")
