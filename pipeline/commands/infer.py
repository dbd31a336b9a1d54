"""`masseg infer`: run one segmenter member over a dataset split into a logit store (resumable, shardable).

One run = one member = one store: a model at one input size, flipped or not, with its settings. Complete videos in
the store are skipped, so a killed run is resumed by running the same command again; ``--shard i/n`` gives each
of n workers a deterministic, frame-balanced share of the videos.
"""
from __future__ import annotations

import click

from pipeline.config import CUTIE_PRESETS

from data import codecs
from data.dataset import OBJECTS_FROM, VOSDataset
from data.errors import MassegError
from data.shards import parse_shard, shard_videos
from data.store import LogitStore


def _checkpoint(opts: dict, model: str, example: str):
    """A weight file path, or a registry name resolved (and downloaded once) through the checkpoint cache."""
    from pipeline.registry import entry_for, resolve_checkpoint

    if not opts["checkpoint"]:
        raise MassegError(f"--checkpoint is required for --model {model}",
                          fix=f"pass a weight file or a registry name such as {example} (`masseg checkpoints list`)")
    return resolve_checkpoint(opts["checkpoint"]), entry_for(opts["checkpoint"])


def _build_sam2(opts: dict, dataset: VOSDataset):
    from models.sam2 import Sam2Segmenter

    path, entry = _checkpoint(opts, "sam2", "sam2.1_hiera_large")
    config = opts["config"] or (entry.config if entry is not None and entry.family == "sam2" else "sam2.1_hiera_l")
    return Sam2Segmenter(checkpoint=path, config=config,
                         image_size=opts["image_size"], mem_scale=opts["mem_scale"], mem_bias=opts["mem_bias"],
                         hflip=opts["flip"], device=opts["device"], vos_optimized=opts["vos_optimized"],
                         objects_from=dataset.objects_from)


def _build_cutie(opts: dict, dataset: VOSDataset):
    from models.cutie.segmenter import CutieSegmenter

    path, entry = _checkpoint(opts, "cutie", "cutie-base-mega")
    size = opts["size"] or (entry.model_size if entry is not None and entry.family == "cutie" else "base")
    return CutieSegmenter(path, size=size, preset=opts["preset"], scale=opts["image_size"], hflip=opts["flip"],
                          device=opts["device"], objects_from=dataset.objects_from)


# --model name -> builder(options, dataset) returning a segmenter that follows models.stage's protocol.
# Adding a model = one builder function and one line here.
BUILDERS = {
    "sam2": _build_sam2,
    "cutie": _build_cutie,
}
MODELS = ("sam2", "cutie")


@click.command()
@click.option("--model", "model", type=click.Choice(MODELS), default="sam2", show_default=True,
              help="segmenter to run")
@click.option("--root", required=True, type=click.Path(file_okay=False), help="dataset root (holds JPEGImages/)")
@click.option("--split", default=None, help="split list (file or name under the root); default: all videos")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="logit store folder of this member")
@click.option("--config", default=None,
              help="model config: SAM2 variant (sam2.1_hiera_t/s/b+/l, sam2_hiera_*) or a config yaml path "
                   "[sam2 default: sam2.1_hiera_l]")
@click.option("--checkpoint", default=None, help="model weights: a file, or a registry name (downloaded once into "
                                                 "the cache; `masseg checkpoints list`)")
@click.option("--image-size", type=int, default=None, help="model input size (multi-scale member): SAM2 image_size, "
                                                          "e.g. 512/768/1024/1280 [default: the config's]; Cutie "
                                                          "shorter side, e.g. 480/720 [default: the preset's]")
@click.option("--size", type=click.Choice(["small", "base"]), default=None,
              help="cutie model size [default: the registry entry's, else base]")
@click.option("--preset", type=click.Choice(CUTIE_PRESETS),
              default="mose", show_default=True,
              help="cutie inference settings: official eval defaults, the 'plus' setting, long videos")
@click.option("--mem-scale", type=float, default=None,
              help="MASSeg mask scaling: sigmoid_scale_for_mem_enc [default: the config's, 20]")
@click.option("--mem-bias", type=float, default=None,
              help="MASSeg mask scaling: sigmoid_bias_for_mem_enc [default: the config's, -10]")
@click.option("--flip/--no-flip", default=False, show_default=True,
              help="horizontally flipped member (logits are stored flipped; the recipe says so)")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when available), cpu, cuda, cuda:N")
@click.option("--vos-optimized", is_flag=True, default=False, help="compiled VOS predictor (CUDA only)")
@click.option("--codec", type=click.Choice(codecs.CODECS), default=codecs.DEFAULT_CODEC, show_default=True,
              help="logit codec of the store")
@click.option("--shard", default=None, help="i/n: run the i-th of n frame-balanced shards of the video list")
@click.option("--objects-from", type=click.Choice(OBJECTS_FROM), default="auto", show_default=True,
              help="which objects to track: first-frame mask only, or each object from the frame it first "
                   "appears in (YouTube-VOS); auto: appearance when the root has meta.json")
@click.option("--threads", type=int, default=None, help="torch CPU threads [default: torch's]")
@click.option("--progress/--no-progress", default=None, help="progress bars [default: on a terminal]")
def infer(model, root, split, out, config, checkpoint, image_size, size, preset, mem_scale, mem_bias, flip, device,
          vos_optimized, codec, shard, objects_from, threads, progress):
    """Run a segmenter member over a split and store its raw logits (complete videos are skipped)."""
    parse_shard(shard)  # a bad --shard fails before anything is loaded
    builder = BUILDERS.get(model)
    if builder is None:
        raise MassegError(f"--model {model} is not wired into `masseg infer` yet",
                          fix=f"use one of {', '.join(BUILDERS)}")
    dataset = VOSDataset(root, split, objects_from=objects_from)
    videos = shard_videos(dataset.frame_counts(), shard)
    if threads:
        import torch
        torch.set_num_threads(threads)
    opts = dict(config=config, checkpoint=checkpoint, image_size=image_size, mem_scale=mem_scale,
                mem_bias=mem_bias, flip=flip, device=device, vos_optimized=vos_optimized, size=size, preset=preset)
    segmenter = builder(opts, dataset)
    store = LogitStore.create(out, segmenter.manifest(), codec=codec)

    from models.stage import run_stage

    where = f" (shard {shard})" if shard else ""
    click.echo(f"{model}: {len(videos)} of {len(dataset)} videos{where} -> {out}", err=True)
    result = run_stage(dataset, videos, store, segmenter, progress=progress)
    click.echo(f"done: {len(result.done)} run, {len(result.skipped)} already complete -> {out}")
