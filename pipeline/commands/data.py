"""`masseg data`: build training data. `moseplus` assembles MOSE+ (MOSE train + difficult clips of other datasets,
MOSE layout); `preview` shows what the MASSeg augmentation does to one sample."""
from __future__ import annotations

import os
import tomllib
from pathlib import Path

import click

from data.errors import MassegError


@click.group()
def data():
    """Training data: assemble MOSE+, preview the augmentation."""


@data.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="MOSE+ config (TOML), e.g. configs/moseplus.toml")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="training root to write (JPEGImages/, Annotations/, moseplus.txt, stats/)")
@click.option("-j", "--jobs", type=click.IntRange(1), default=1, show_default=True,
              help="worker processes writing clips (the result does not depend on it)")
@click.option("--no-progress", is_flag=True, help="no progress bars")
def moseplus(config_path, out, jobs, no_progress):
    """Assemble MOSE+ in MOSE layout; resumable (rerun continues), deterministic for a given config and seed."""
    from data.moseplus.assemble import assemble
    from data.moseplus.config import load_config

    cfg = load_config(config_path)
    summary = assemble(cfg, out, progress=not no_progress, jobs=jobs)
    click.echo(summary.line())
    click.echo(f"statistics: {out / 'stats' / 'clips.md'}, {out / 'stats' / 'clips.csv'}, "
               f"{out / 'stats' / 'histograms.png'}")


def _augment_settings(path: Path | None) -> dict:
    """The ``[augment]`` table of a TOML (as `masseg train` configs have it): ``preset`` ("masseg" | "official")
    and ``[augment.settings]`` overriding the MASSeg defaults."""
    from models.sam2.finetune.augment import OFFICIAL

    if path is None:
        return {}
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise MassegError("config not found", path) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise MassegError(f"not valid TOML ({exc})", path) from None
    aug = raw.get("augment", {})
    if not isinstance(aug, dict) or not isinstance(aug.get("settings", {}), dict):
        raise MassegError("[augment] and [augment.settings] must be tables", path)
    unknown = sorted(set(aug) - {"preset", "settings"})
    if unknown:
        raise MassegError(f"augment.{unknown[0]}: unknown key (preset, settings)", path,
                          "put augmentation settings under [augment.settings]")
    preset = aug.get("preset", "masseg")
    if preset not in ("masseg", "official"):
        raise MassegError(f"augment.preset must be 'masseg' or 'official', not {preset!r}", path)
    return dict(OFFICIAL) if preset == "official" else dict(aug.get("settings", {}))


@data.command()
@click.option("--root", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="training root in MOSE layout (e.g. data/MOSE+)")
@click.option("--video", default=None, help="clip to show (default: the first of moseplus.txt, else of the root)")
@click.option("--frames", "n_frames", type=click.IntRange(1, 16), default=4, show_default=True,
              help="consecutive frames per sample")
@click.option("--start", type=click.IntRange(0), default=0, show_default=True, help="first frame index")
@click.option("--image-size", type=click.IntRange(16, 2048), default=256, show_default=True)
@click.option("--samples", type=click.IntRange(1, 8), default=2, show_default=True, help="augmented draws")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="TOML with an [augment] table (preset, [augment.settings]), e.g. a masseg train config")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="PNG to write")
def preview(root, video, n_frames, start, image_size, samples, config_path, seed, out):
    """Write a PNG grid: one sample's frames (top row) and augmented draws, masks overlaid."""
    import io

    from data.atomic import atomic_write_bytes
    from data.dataset import VOSDataset
    from data.errors import DatasetError
    from data.labels import DAVIS_PALETTE, read_labels

    aug = _augment_settings(config_path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MassegError(f"cannot create the output folder ({exc.strerror})", out.parent) from None
    if not os.access(out.parent, os.W_OK):
        raise MassegError("output folder is not writable", out.parent, "pass a writable --out")
    from models.sam2.finetune.augment import check, preview_grid

    check(aug)
    split = root / "moseplus.txt"
    ds = VOSDataset(root, split if split.is_file() else None, objects_from="first_frame")
    name = video or ds.video_names[0]
    clip = ds[name]
    if start + n_frames > len(clip):
        raise DatasetError(f"clip {name!r} has {len(clip)} frames; frames {start}..{start + n_frames - 1} asked",
                           clip.image_dir, "lower --start or --frames")
    frames, labels, palette = [], [], None
    for t in range(start, start + n_frames):
        frames.append(clip.frame(t))
        path = clip.annotation_path(t)
        if not path.exists():
            raise DatasetError("annotation missing (training roots need a mask on every frame)", path)
        lab, pal = read_labels(path, with_palette=True)
        palette = palette or pal
        labels.append(lab)
    grid = preview_grid(frames, labels, aug, image_size, seed, palette or DAVIS_PALETTE, samples)
    buf = io.BytesIO()
    grid.save(buf, format="PNG")
    atomic_write_bytes(out, buf.getvalue())
    click.echo(f"preview of {name} frames {start}..{start + n_frames - 1}: original + {samples} augmented "
               f"draw(s) at {image_size}px -> {out}")
