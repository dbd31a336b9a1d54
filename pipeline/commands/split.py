"""`masseg split`: carve a deterministic local validation split out of a training split with full GT."""
from __future__ import annotations

import click

from data.dataset import VOSDataset, write_split_file
from data.splits import carve_split


@click.command()
@click.option("--root", required=True, type=click.Path(file_okay=False), help="dataset root (holds JPEGImages/)")
@click.option("--split", "split_name", default=None, help="split list to carve from (name or file); default: all videos")
@click.option("--fraction", type=float, default=None, help="fraction of videos to hold out")
@click.option("--count", type=int, default=None, help="number of videos to hold out")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="held-out list to write")
@click.option("--rest", default=None, type=click.Path(dir_okay=False), help="also write the remaining videos here")
def split(root, split_name, fraction, count, seed, out, rest):
    """Write a held-out validation list (and optionally the rest) from a training split."""
    ds = VOSDataset(root, split_name)
    held, remaining = carve_split(ds.video_names, fraction=fraction, count=count, seed=seed)
    write_split_file(out, held)
    if rest:
        write_split_file(rest, remaining)
    click.echo(f"held out {len(held)} of {len(ds.video_names)} videos -> {out}")
