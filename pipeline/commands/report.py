"""`masseg report RUN`: a static HTML report of a run (opens offline: index.html + assets/)."""
from __future__ import annotations

import click


@click.command()
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--out", default=None, type=click.Path(file_okay=False), help="report folder (default: RUN/report)")
@click.option("--root", default=None, type=click.Path(file_okay=False),
              help="dataset root (default: the run's resolved.json; needed for a `masseg fuse` folder)")
@click.option("--split", "split_name", default=None, help="split list (default: the run's)")
@click.option("--protocol", default=None, type=click.Choice(["davis", "mosev2", "vos-benchmark", "none"]),
              help="J&F protocol (default: the run's)")
@click.option("--max-videos", type=click.IntRange(1), default=40, show_default=True,
              help="videos with curves, strips and heat maps (worst first); the tables list every video")
@click.option("--worst-frames", type=click.IntRange(1), default=3, show_default=True,
              help="overlay strips per video")
def report(run, out, root, split_name, protocol, max_videos, worst_frames):
    """Write a self-contained HTML report of a run: metadata, J&F tables per member and fusion, curves,
    worst-frame overlays, member disagreement, the sweep."""
    from pipeline.report.html import build_report
    build_report(run, out, root=root, split=split_name, protocol=protocol, max_videos=max_videos,
                 worst_frames=worst_frames, echo=click.echo)
