"""`masseg launch-infer`: run one member's inference with several workers (local GPUs/CPUs) or on a Ray cluster.

Same member options as `masseg infer` (both come from the model registry); the launcher options choose how the
videos are spread. Slurm users do not need this: an array job of `masseg infer ... --shard $SLURM_ARRAY_TASK_ID/$N`
does the same split.
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from data.codecs import CODECS, DEFAULT_CODEC
from data.dataset import OBJECTS_FROM


def _launch_infer(root, split, objects_from, store, model, checkpoint, image_size, flip, device, codec, threads,
                  spec_file, launcher, workers, gpus, address, unit, shards, max_retries, **model_options):
    """Run one member over a split with several workers; every video ends up in the store exactly once."""
    from data.atomic import check_writable
    from data.errors import MassegError
    from pipeline.launch.spec import check_spec, member_spec
    from pipeline.members import model_options_given

    check_writable(store, "store folder")  # before any worker loads a model
    if spec_file:
        try:
            spec = check_spec(json.loads(Path(spec_file).read_text()))
        except json.JSONDecodeError as exc:
            raise MassegError(f"spec is not valid JSON ({exc})", spec_file) from None
    else:
        if not checkpoint:
            raise click.UsageError("--checkpoint is required (or pass --spec)")
        options = model_options_given(model, model_options)
        spec = member_spec(model, checkpoint, image_size=image_size, flip=flip, device=device, codec=codec,
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


def command() -> click.Command:
    """`masseg launch-infer`, with the options of every registered model."""
    from pipeline.members import model_click_options

    params = [
        click.Option(["--root"], required=True, type=click.Path(file_okay=False),
                     help="dataset root (holds JPEGImages/)"),
        click.Option(["--split"], default=None, help="split list (name or file); default: every video"),
        click.Option(["--objects-from"], type=click.Choice(OBJECTS_FROM), default="auto", show_default=True),
        click.Option(["--out", "store"], required=True, type=click.Path(),
                     help="logit store folder (shared)"),
        click.Option(["--checkpoint"], default=None,
                     help="registry name (`masseg checkpoints list`) or weight file path"),
        *model_click_options(),
        click.Option(["--flip"], is_flag=True, help="horizontally flipped member"),
        click.Option(["--device"], default="auto", show_default=True, help="auto, cpu, cuda"),
        click.Option(["--codec"], type=click.Choice(CODECS), default=DEFAULT_CODEC, show_default=True),
        click.Option(["--threads"], type=int, default=None, help="torch CPU threads per worker"),
        click.Option(["--spec", "spec_file"], type=click.Path(dir_okay=False, exists=True), default=None,
                     help="member spec JSON file (replaces the member options above)"),
        click.Option(["--launcher"], type=click.Choice(["local", "ray"]), default="local", show_default=True),
        click.Option(["--workers"], type=int, default=None,
                     help="local: worker processes (default: one per visible GPU, else 1)"),
        click.Option(["--gpus"], default=None,
                     help="local: comma-separated GPU ids to use (default: CUDA_VISIBLE_DEVICES / all)"),
        click.Option(["--address"], default=None, help="ray: cluster address (auto, host:6379, ray://host:10001); "
                                                       "default: $RAY_ADDRESS, else a private local instance"),
        click.Option(["--unit"], type=click.Choice(["video", "shard"]), default="video", show_default=True,
                     help="ray: one task per video, or per frame-balanced shard"),
        click.Option(["--shards"], type=int, default=None, help="ray with --unit shard: number of shards"),
        click.Option(["--max-retries"], type=int, default=3, show_default=True, help="ray: retries of a failed task"),
    ]
    return click.Command("launch-infer", callback=_launch_infer, params=params, help=_launch_infer.__doc__)
