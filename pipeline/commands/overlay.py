"""`masseg overlay`: label maps blended over their frames (palette colours, object outlines) as JPEGs per frame
and, with --mp4, an H.264 MP4 per video -- for looking at predictions, ground truth or any tool's PNGs."""
from __future__ import annotations

import time
from pathlib import Path

import click

from data.atomic import make_output_dir
from data.errors import MassegError


@click.command()
@click.option("--root", required=True, type=click.Path(file_okay=False), help="dataset root (holds JPEGImages/)")
@click.option("--split", "split_name", default=None, help="split list (name or file); default: every video of the root")
@click.option("--labels", "labels", required=True, type=click.Path(file_okay=False),
              help="label maps <video>/<frame>.png (predictions or ground truth), or a run folder holding labels/")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="folder for <video>/<frame>.jpg (and <video>.mp4)")
@click.option("--video", "videos", multiple=True, help="only these videos (repeat); default: every labelled video")
@click.option("--mp4", is_flag=True, help="also encode an MP4 (H.264) per video")
@click.option("--fps", type=float, default=24.0, show_default=True, help="frame rate of the MP4s")
@click.option("--alpha", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="opacity of the object colours")
def overlay(root, split_name, labels, out, videos, mp4, fps, alpha):
    """Blend label maps over the frames in the palette's colours, with object outlines."""
    from data.dataset import VOSDataset
    from data.progress import progress
    from submission.build import resolve_labels_dir
    from submission.overlay import label_frames, overlay_video

    if fps <= 0:
        raise click.BadParameter("must be > 0", param_hint="--fps")
    ds = VOSDataset(root, split_name)
    labels_dir = resolve_labels_dir(labels, ds.video_names)
    if videos:
        unknown = [v for v in videos if v not in ds]
        if unknown:
            raise MassegError(f"video(s) {', '.join(unknown)} not in the dataset", root,
                              "check --video against the split")
        names = list(videos)
    else:
        names = [v for v in ds.video_names if (labels_dir / v).is_dir()]
    make_output_dir(out)
    start = time.perf_counter()
    total = len(names)
    n_frames = sum(len(label_frames(labels_dir, v, ds[v].frame_names)) for v in names)
    frames = 0
    with progress(desc="overlay", total=n_frames, unit="frame") as bar:
        for v in names:
            r = overlay_video(ds[v], labels_dir, out, alpha=alpha, mp4=mp4, fps=fps, on_frame=lambda: bar.update())
            frames += r["frames"]
    click.echo(f"overlays of {total} videos ({frames} frames) -> {out}"
               + (f", {total} MP4s" if mp4 else "") + f" in {time.perf_counter() - start:.1f} s")
