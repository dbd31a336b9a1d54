"""Loading official Cutie checkpoints (cutie-small/base, MEGA or with-MOSE) into ``CutieNetwork``.

Official files are plain state dicts; some wrappers nest them under 'model' or 'weights', or prefix
keys with 'module.' (DataParallel). Loading is strict: every inference key must be present with the
official shape, otherwise ``CheckpointMismatchError`` lists the offending keys. Training-only keys
(the auxiliary-loss head ``aux_computer.*``) are accepted when present and never used.
Nothing is downloaded: the ResNet trunks are built without pretrained weights.
"""
from __future__ import annotations

import os
from typing import Mapping

import torch

from .config import ModelConfig, model_config
from .device import pick_device
from .network import CutieNetwork

TRAINING_ONLY_PREFIXES = ("aux_computer.",)
_NESTING_KEYS = ("model", "weights", "state_dict")


class CheckpointMismatchError(ValueError):
    """A checkpoint does not match the Cutie layout; ``missing``/``unexpected``/``mismatched`` name the keys."""

    def __init__(self, missing=(), unexpected=(), mismatched=(), source: str = "checkpoint"):
        self.missing = sorted(missing)
        self.unexpected = sorted(unexpected)
        self.mismatched = sorted(mismatched)  # (key, expected shape, found shape)
        lines = [f"{source} does not match the Cutie layout:"]
        if self.missing:
            lines.append(f"  missing keys ({len(self.missing)}): " + ", ".join(self.missing))
        if self.mismatched:
            lines.append(
                f"  mis-shaped keys ({len(self.mismatched)}): "
                + ", ".join(f"{k} (expected {list(e)}, found {list(f)})" for k, e, f in self.mismatched)
            )
        if self.unexpected:
            lines.append(f"  unexpected keys ({len(self.unexpected)}): " + ", ".join(self.unexpected))
        super().__init__("\n".join(lines))


def _is_training_only(key: str) -> bool:
    return key.startswith(TRAINING_ONLY_PREFIXES)


def unwrap_state_dict(obj: Mapping) -> dict[str, torch.Tensor]:
    """Plain {key: tensor} from a loaded checkpoint object (nested dict or 'module.' prefix accepted)."""
    for name in _NESTING_KEYS:
        if isinstance(obj, Mapping) and name in obj and isinstance(obj[name], Mapping):
            obj = obj[name]
            break
    if not isinstance(obj, Mapping):
        raise CheckpointMismatchError(source=f"checkpoint of type {type(obj).__name__} (not a state dict)")
    sd = dict(obj)
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """torch.load (CPU, weights_only) + unwrap."""
    return unwrap_state_dict(torch.load(os.fspath(path), map_location="cpu", weights_only=True))


def check_state_dict(network: CutieNetwork, sd: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Raise ``CheckpointMismatchError`` unless ``sd`` has every inference key of ``network`` with its shape."""
    own = network.state_dict()
    missing = [k for k in own if k not in sd and not _is_training_only(k)]
    unexpected = [k for k in sd if k not in own and not _is_training_only(k)]
    mismatched = [
        (k, tuple(own[k].shape), tuple(sd[k].shape))
        for k in own
        if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or mismatched:
        raise CheckpointMismatchError(missing, unexpected, mismatched, source=source)


def load_weights(network: CutieNetwork, weights: str | os.PathLike | Mapping, *, source: str | None = None) -> CutieNetwork:
    """Load a checkpoint (path or state dict) into ``network`` after checking the layout.

    Float tensors are cast to the network's dtype (an fp16 file loads losslessly into fp32).
    """
    if isinstance(weights, Mapping):
        sd, source = unwrap_state_dict(weights), source or "state dict"
    else:
        sd, source = read_checkpoint(weights), source or os.fspath(weights)
    check_state_dict(network, sd, source)
    own = network.state_dict()
    to_load = {k: v.to(own[k].dtype) for k, v in sd.items() if k in own}
    network.load_state_dict(to_load, strict=False)
    return network


def build_cutie(variant: str | ModelConfig = "small", weights: str | os.PathLike | Mapping | None = None,
                device: str | torch.device | None = None) -> CutieNetwork:
    """Construct cutie-small/base in eval mode, optionally load weights, move to ``device``
    (default: CUDA when available, else CPU)."""
    network = CutieNetwork(model_config(variant))
    if weights is not None:
        load_weights(network, weights)
    return network.to(pick_device(device)).eval()
