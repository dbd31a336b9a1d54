"""`masseg launch-infer`: run one member's inference with several workers (local GPUs/CPUs) or on a Ray cluster.

Same member options as inference; the launcher options choose how the videos are spread. Slurm users do not need
this: an array job of `masseg infer ... --shard $SLURM_ARRAY_TASK_ID/$N` does the same split.
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from pipeline.config import CUTIE_PRESETS

from data.codecs import CODECS, DEFAULT_CODEC
from data.errors import MassegError


@click.command("launch-infer")
@click.option("--root", required=True, type=click.Path(file_okay=False), help="dataset root (holds JPEGImages/)")
@click.option("--split", default=None, help="split list (name or file); default: every video")
@click.option("--objects-from", type=click.Choice(["auto", "first_frame", "appearance"]), default="auto",
              show_default=True)
@click.option("--out", "store", required=True, type=click.Path(file_okay=False), help="logit store folder (shared)")
@click.option("--model", type=click.Choice(["sam2", "cutie"]), default="sam2", show_default=True)
@click.option("--checkpoint", default=None, help="registry name (`masseg checkpoints list`) or weight file path")
@click.option("--config", default=None, help="sam2 config/variant (default: the registry entry's)")
@click.option("--scale", type=int, default=None, help="model input size (sam2: S, multiple of 32)")
@click.option("--flip", is_flag=True, help="horizontally flipped member")
@click.option("--mem-scale", type=float, default=None, help="sam2 sigmoid_scale_for_mem_enc")
@click.option("--mem-bias", type=float, default=None, help="sam2 sigmoid_bias_for_mem_enc")
@click.option("--vos-optimized", is_flag=True, help="sam2 compiled predictor (CUDA only)")
@click.option("--size", type=click.Choice(["small", "base"]), default=None, help="cutie model size")
@click.option("--preset", type=click.Choice(CUTIE_PRESETS), default=None, help="cutie preset")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda")
@click.option("--codec", type=click.Choice(CODECS), default=DEFAULT_CODEC, show_default=True)
@click.option("--threads", type=int, default=None, help="torch CPU threads per worker")
@click.option("--spec", "spec_file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="member spec JSON file (replaces the member options above)")
@click.option("--launcher", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--workers", type=int, default=None, help="local: worker processes (default: one per visible GPU, else 1)")
@click.option("--gpus", default=None, help="local: comma-separated GPU ids to use (default: CUDA_VISIBLE_DEVICES / all)")
@click.option("--address", default=None, help="ray: cluster address (auto, host:6379, ray://host:10001); "
                                               "default: $RAY_ADDRESS, else a private local instance")
@click.option("--unit", type=click.Choice(["video", "shard"]), default="video", show_default=True,
              help="ray: one task per video, or per frame-balanced shard")
@click.option("--shards", type=int, default=None, help="ray with --unit shard: number of shards")
@click.option("--max-retries", type=int, default=3, show_default=True, help="ray: retries of a failed task")
def launch_infer(root, split, objects_from, store, model, checkpoint, config, scale, flip, mem_scale, mem_bias,
                 vos_optimized, size, preset, device, codec, threads, spec_file, launcher, workers, gpus, address,
                 unit, shards, max_retries):
    """Run one member over a split with several workers; every video ends up in the store exactly once."""
    from pipeline.launch.spec import check_spec, member_spec

    if spec_file:
        try:
            spec = check_spec(json.loads(Path(spec_file).read_text()))
        except json.JSONDecodeError as exc:
            raise MassegError(f"spec is not valid JSON ({exc})", spec_file) from None
    else:
        if not checkpoint:
            raise click.UsageError("--checkpoint is required (or pass --spec)")
        options = ({"config": config, "mem_scale": mem_scale, "mem_bias": mem_bias,
                    "vos_optimized": vos_optimized or None} if model == "sam2" else {"size": size, "preset": preset})
        spec = member_spec(model, checkpoint, scale=scale, flip=flip, device=device, codec=codec,
                           objects_from=objects_from, threads=threads, **options)
    if launcher == "local":
        if address or unit != "video" or shards:
            raise click.UsageError("--address, --unit and --shards apply to --launcher ray")
        from pipeline.launch.local import launch_local

        gpu_list = [g.strip() for g in gpus.split(",") if g.strip()] if gpus is not None else None
        report = launch_local(spec, root, split, store, workers=workers, gpus=gpu_list)
    else:
        if workers or gpus:
            raise click.UsageError("--workers and --gpus apply to --launcher local (Ray places tasks itself)")
        from pipeline.launch.ray_launcher import launch_ray

        report = launch_ray(spec, root, split, store, address=address, unit=unit,
                            shards=shards, max_retries=max_retries)
    report.raise_if_failed()
