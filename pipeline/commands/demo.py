"""`masseg demo`: a generated dataset, the two smallest official checkpoints, the whole pipeline on CPU."""
from __future__ import annotations

from pathlib import Path

import click

from data.dataset import VOSDataset
from data.errors import MassegError
from pipeline.run import run_experiment
from pipeline.synthetic import make_synthetic_dataset


@click.command()
@click.option("--config", default="demo", show_default=True, type=click.Path(dir_okay=False),
              help="a TOML file or a shipped config name; data/ and runs/ are made in the current folder")
@click.option("--videos", default=3, show_default=True, help="synthetic videos to generate")
@click.option("--frames", default=12, show_default=True, help="frames per video")
def demo(config, videos, frames):
    """Build data/demo (textured objects that move and occlude), fetch checkpoints, run, print J&F."""
    from pipeline.config import load_experiment
    from pipeline.registry import resolve_checkpoint
    from pipeline.shipped import find_config
    config = find_config(config)
    exp = load_experiment(config, check_files=False)
    root = Path(exp.data["root"])
    if not (root / "JPEGImages").is_dir():
        click.echo(f"[demo] generating {videos} synthetic videos in {root}")
        make_synthetic_dataset(root, n_videos=videos, n_frames=frames, split_name=Path(exp.data["split"]).stem
                               or "val")
    VOSDataset(root, exp.data["split"] or None)  # fail early on a broken demo folder
    missing = []
    for m in exp.members:  # download before any work: offline stops here, naming every missing file at once
        click.echo(f"[demo] checkpoint {m.checkpoint}")
        try:
            resolve_checkpoint(m.checkpoint)
        except MassegError as exc:
            missing.append(str(exc))
    if missing:
        raise MassegError(f"{len(missing)} of {len(exp.members)} checkpoints are missing: " + "; ".join(missing))
    summary = run_experiment(config, echo=click.echo)
    click.echo(f"[demo] done: {summary.get('zip', {}).get('path')}; report: {summary.get('report')}")
