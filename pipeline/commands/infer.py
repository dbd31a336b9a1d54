"""`masseg infer`: run one segmenter member over a dataset split into a logit store (resumable, shardable).

One run = one member = one store: a model at one input size, flipped or not, with its settings. Complete videos in
the store are skipped, so a killed run is resumed by running the same command again; ``--shard i/n`` gives each
of n workers a deterministic, frame-balanced share of the videos. The models and their options come from the
model registry (:mod:`models.registry`): the command is built from it each time it is invoked.
"""
from __future__ import annotations

import click

from data import codecs
from data.atomic import check_writable
from data.dataset import OBJECTS_FROM, VOSDataset
from data.shards import parse_shard, shard_videos


def _infer(model, root, split, out, checkpoint, image_size, flip, device, codec, shard, objects_from, threads,
           progress, **model_options):
    """Run a segmenter member over a split and store its raw logits (complete videos are skipped)."""
    from data.errors import MassegError
    from pipeline.launch.spec import member_spec
    from pipeline.members import model_options_given
    from models.registry import get

    parse_shard(shard)  # a bad --shard fails before anything is loaded
    options = model_options_given(model, model_options)
    if not checkpoint:
        raise MassegError(f"--checkpoint is required for --model {model}",
                          fix=f"pass a weight file or a registry name such as {get(model).example_checkpoint} "
                              "(`masseg checkpoints list`)")
    spec = member_spec(model, checkpoint, image_size=image_size, flip=flip, device=device, codec=codec,
                       objects_from=objects_from, threads=threads, **options)
    check_writable(out, "store folder")  # before the model is loaded
    dataset = VOSDataset(root, split, objects_from=objects_from)
    videos = shard_videos(dataset.frame_counts(), shard)

    from pipeline.launch.work import build_segmenter, open_store
    from models.stage import run_stage

    segmenter = build_segmenter(spec, dataset.objects_from)
    store = open_store(out, segmenter, codec)
    where = f" (shard {shard})" if shard else ""
    click.echo(f"{model}: {len(videos)} of {len(dataset)} videos{where} -> {out}", err=True)
    result = run_stage(dataset, videos, store, segmenter, progress=progress)
    click.echo(f"done: {len(result.done)} run, {len(result.skipped)} already complete -> {out}")


def command() -> click.Command:
    """`masseg infer`, with the options of every registered model."""
    from pipeline.members import model_click_options

    params = [
        click.Option(["--root"], required=True, type=click.Path(file_okay=False),
                     help="dataset root (holds JPEGImages/)"),
        click.Option(["--split"], default=None, help="split list (file or name under the root); default: all videos"),
        click.Option(["--out"], required=True, type=click.Path(),
                     help="logit store folder of this member"),
        click.Option(["--checkpoint"], default=None, help="model weights: a file, or a registry name (downloaded "
                                                          "once into the cache; `masseg checkpoints list`)"),
        *model_click_options(),
        click.Option(["--flip/--no-flip"], default=False, show_default=True,
                     help="horizontally flipped member (logits are stored flipped; the recipe says so)"),
        click.Option(["--device"], default="auto", show_default=True,
                     help="auto (CUDA when available), cpu, cuda, cuda:N"),
        click.Option(["--codec"], type=click.Choice(codecs.CODECS), default=codecs.DEFAULT_CODEC, show_default=True,
                     help="logit codec of the store"),
        click.Option(["--shard"], default=None, help="i/n: run the i-th of n frame-balanced shards of the video list"),
        click.Option(["--objects-from"], type=click.Choice(OBJECTS_FROM), default="auto", show_default=True,
                     help="which objects to track: first-frame mask only, or each object from the frame it first "
                          "appears in (YouTube-VOS); auto: appearance when the root has meta.json"),
        click.Option(["--threads"], type=int, default=None, help="torch CPU threads [default: torch's]"),
        click.Option(["--progress/--no-progress"], default=None, help="progress bars [default: on a terminal]"),
    ]
    return click.Command("infer", callback=_infer, params=params, help=_infer.__doc__)
