"""Build a SAM2 / SAM2.1 video predictor from the packaged configs and load a checkpoint with clear errors.

Why not just ``build_sam2_video_predictor(cfg, ckpt)``: its loader logs the missing keys and raises a bare
``RuntimeError()``, and a shape mismatch surfaces as torch's wall of text. Here the model is built without weights,
the checkpoint is read with ``weights_only=True`` and compared with the model's state dict key by key, so a
config/checkpoint mismatch names keys, shapes and the config that would fit; loading itself stays strict.
"""
from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from data.errors import MassegError

from .variants import ALIASES, SIZES, VARIANT_RE  # noqa: F401  (re-exported: guess_variant, tests)


class CheckpointError(MassegError):
    """A checkpoint is missing, unreadable, or does not fit the chosen config."""


@dataclass(frozen=True)
class ConfigRef:
    """A resolved config: ``name`` for hydra (packaged) or ``path`` (a yaml outside the package)."""

    variant: str          # e.g. "sam2.1_hiera_t", or the file stem of an external config
    name: str | None      # e.g. "configs/sam2.1/sam2.1_hiera_t.yaml" (packaged)
    path: Path | None     # external yaml

    @property
    def label(self) -> str:
        return self.name if self.name is not None else str(self.path)


def _package_config_dir() -> Path:
    import sam2
    return Path(sam2.__path__[0]) / "configs"


def packaged_variants() -> list[str]:
    root = _package_config_dir()
    return sorted(p.stem for sub in ("sam2", "sam2.1") for p in (root / sub).glob("*.yaml"))


def resolve_config(config: str) -> ConfigRef:
    """``sam2.1_hiera_t`` / ``sam2.1_hiera_tiny`` / ``configs/sam2.1/sam2.1_hiera_t.yaml`` / a yaml file path."""
    text = str(config).strip()
    path = Path(text)
    packaged_root = _package_config_dir().resolve()
    if path.suffix in (".yaml", ".yml") and path.is_file():
        real = path.resolve()
        if real.parent.parent == packaged_root:
            return ConfigRef(real.stem, f"configs/{real.parent.name}/{real.name}", None)
        return ConfigRef(real.stem, None, real)
    m = VARIANT_RE.match(path.name[:-5] if path.name.endswith(".yaml") else path.name)
    if m:
        family, size = m.group(1), ALIASES.get(m.group(2), m.group(2))
        variant = f"{family}_hiera_{size}"
        if size in SIZES and (packaged_root / family / f"{variant}.yaml").is_file():
            return ConfigRef(variant, f"configs/{family}/{variant}.yaml", None)
    raise MassegError(f"unknown SAM2 config {config!r}", None,
                      f"use a variant name ({', '.join(packaged_variants())}) or the path of a model config yaml")


@contextlib.contextmanager
def _hydra_search_dir(ref: ConfigRef):
    """For an external yaml, point hydra at its folder for the duration of the build, then restore the package's
    config module (the sam2 package initialises hydra globally on import)."""
    if ref.path is None:
        yield ref.name
        return
    from hydra import initialize_config_dir, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(ref.path.parent), version_base="1.2"):
            yield ref.path.name
    finally:
        GlobalHydra.instance().clear()
        initialize_config_module("sam2", version_base="1.2")


def build_predictor(config: str | ConfigRef, device: torch.device | str = "cpu", overrides: list[str] | None = None,
                    vos_optimized: bool = False):
    """Instantiate the video predictor (random init) on CPU; load weights with :func:`load_checkpoint`.

    ``apply_postprocessing=False`` as in the official VOS evaluation (hole filling needs the CUDA extension)."""
    import sam2  # noqa: F401  (initialises hydra's config module)
    from sam2.build_sam import build_sam2_video_predictor

    ref = config if isinstance(config, ConfigRef) else resolve_config(config)
    try:
        with _hydra_search_dir(ref) as name:
            predictor = build_sam2_video_predictor(
                name, ckpt_path=None, device="cpu", mode="eval", hydra_overrides_extra=list(overrides or []),
                apply_postprocessing=False, vos_optimized=vos_optimized)
    except MassegError:
        raise
    except Exception as exc:  # hydra/omegaconf errors: bad yaml, unknown override key, not a model config
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MassegError(f"cannot build SAM2 from config {ref.label} ({type(exc).__name__}: {first})",
                          ref.path, "pass a packaged variant name or a SAM2 model config (with a top-level "
                                    "'model:' section, like configs/sam2.1/sam2.1_hiera_t.yaml)") from None
    return predictor.to(torch.device(device)), ref


def guess_variant(state_dict: dict) -> str | None:
    """Name the packaged config a checkpoint was trained with, from its trunk width and depth (None if unsure)."""
    pe = state_dict.get("image_encoder.trunk.patch_embed.proj.weight")
    blocks = {int(m.group(1)) for k in state_dict if (m := re.match(r"image_encoder\.trunk\.blocks\.(\d+)\.", k))}
    if pe is None or not blocks:
        return None
    found = [s for s, (_, dim, depth) in SIZES.items() if dim == pe.shape[0] and depth == max(blocks) + 1]
    if len(found) != 1:
        return None
    family = "sam2.1" if "no_obj_embed_spatial" in state_dict else "sam2"
    return f"{family}_hiera_{found[0]}"


def _read_state_dict(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError("checkpoint not found", path, "pass the path of a SAM2 .pt file with --checkpoint")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        # torch's unpickling message advises weights_only=False, which we never do: keep only the error type
        text = str(exc).strip()
        detail = "" if "weights_only" in text or not text else f": {text.splitlines()[0][:200]}"
        raise CheckpointError(f"cannot read checkpoint with torch.load(weights_only=True) "
                              f"({type(exc).__name__}{detail})", path,
                              "pass an official SAM2 checkpoint or a sam2 training checkpoint "
                              "(a torch file holding {'model': state_dict})") from None
    sd = obj.get("model", obj) if isinstance(obj, dict) else None
    if not isinstance(sd, dict) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError("checkpoint holds no state dict under 'model'", path,
                              "pass an official SAM2 checkpoint or a sam2 training checkpoint")
    return sd


def _sample(items: list[str], n: int = 4) -> str:
    return ", ".join(items[:n]) + (f", ... ({len(items)} in all)" if len(items) > n else "")


def load_checkpoint(model: torch.nn.Module, path: str | os.PathLike, config_label: str) -> None:
    """Strictly load ``path`` into ``model``; a mismatch raises :class:`CheckpointError` naming keys and shapes."""
    path = Path(path)
    sd = _read_state_dict(path)
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [f"{k} checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches ({_sample(shapes, 2)})")
        if missing:
            parts.append(f"{len(missing)} keys missing from the checkpoint ({_sample(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys ({_sample(unexpected)})")
        guess = guess_variant(sd)
        fix = (f"the checkpoint looks like {guess}: pass --config {guess}" if guess
               else "pass the config the checkpoint was trained with (--config sam2.1_hiera_t/s/b+/l)")
        raise CheckpointError(f"checkpoint does not match config {config_label}: " + "; ".join(parts), path, fix)
    model.load_state_dict(sd, strict=True)
