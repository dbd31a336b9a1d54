"""`masseg run CONFIG`: infer every member -> fuse -> validated zip -> J&F (when the split has ground truth)."""
from __future__ import annotations

import click

from pipeline.run import STAGES, run_experiment


@click.command()
@click.argument("config", type=click.Path(dir_okay=False), metavar="CONFIG|NAME")
@click.option("--stage", "stages", multiple=True, type=click.Choice(STAGES),
              help="run only these stages (repeat); default: all, each skipped when complete")
@click.option("--out", default=None, help="override [run] out (the run folder)")
@click.option("--device", default=None, help="override [run] device (auto, cpu, cuda, cuda:N)")
def run(config, stages, out, device):
    """Run an experiment config end to end, resuming whatever is already complete.

    CONFIG is a TOML file or the name of a shipped config (mose_masseg, mose_fast, mose_val_sweep, demo)."""
    from pipeline.shipped import find_config
    overrides = {"run": {k: v for k, v in (("out", out), ("device", device)) if v is not None}}
    run_experiment(find_config(config), echo=click.echo, stages=tuple(stages) or STAGES, overrides=overrides)
