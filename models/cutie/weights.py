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


def describe_keys(keys) -> str:
    """What a state dict looks like, from its key names: enough to tell a SAM2 file or the other Cutie size."""
    keys = list(keys)
    if any(k.startswith(("image_encoder.trunk.", "sam_mask_decoder.", "memory_encoder.")) for k in keys):
        return "it looks like a SAM2 checkpoint (image_encoder/sam_mask_decoder keys): pass it to --model sam2"
    if "pixel_encoder.layer2.0.conv3.weight" in keys:
        return "it looks like a cutie-base checkpoint (ResNet-50 pixel encoder): use --size base"
    if "pixel_encoder.layer2.0.conv1.weight" in keys:  # no conv3: ResNet-18 basic blocks
        return "it looks like a cutie-small checkpoint (ResNet-18 pixel encoder): use --size small"
    sample = ", ".join(sorted(keys)[:3])
    return f"it is not a Cutie checkpoint ({len(keys)} tensors, keys like {sample})" if keys else "it is empty"


def _few(items, n: int = 3) -> str:
    return ", ".join(items[:n]) + (f", ... ({len(items)} in all)" if len(items) > n else "")


class CheckpointMismatchError(ValueError):
    """A checkpoint does not match the Cutie layout; ``missing``/``unexpected``/``mismatched`` name the keys
    (all of them), while the message says what the file looks like and lists at most a few of each."""

    def __init__(self, missing=(), unexpected=(), mismatched=(), source: str = "checkpoint", looks_like: str = "",
                 unreadable: str = ""):
        self.unreadable = unreadable  # why torch.load failed, when it did
        if unreadable:
            self.missing = self.unexpected = self.mismatched = []
            super().__init__(f"{source} is not a readable torch checkpoint ({unreadable}): it is truncated or "
                             "not a checkpoint")
            return
        self.missing = sorted(missing)
        self.unexpected = sorted(unexpected)
        self.mismatched = sorted(mismatched)  # (key, expected shape, found shape)
        parts = []
        if self.missing:
            parts.append(f"missing keys ({len(self.missing)}): " + _few(self.missing))
        if self.mismatched:
            parts.append(f"mis-shaped keys ({len(self.mismatched)}): " + _few(
                [f"{k} (expected {list(e)}, found {list(f)})" for k, e, f in self.mismatched], 2))
        if self.unexpected:
            parts.append(f"unexpected keys ({len(self.unexpected)}): " + _few(self.unexpected))
        head = f"{source} does not match the Cutie layout"
        if looks_like:
            head += f"; {looks_like}"
        super().__init__(head + (": " + "; ".join(parts) if parts else ""))


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
    """torch.load (CPU, weights_only) + unwrap; a file torch cannot read (truncated, not a torch file, a
    pickle needing code) is a CheckpointMismatchError saying so, never torch's traceback."""
    try:
        obj = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:
        text = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else ""
        detail = "" if not text or "weights_only" in text else f": {text}"
        raise CheckpointMismatchError(source=os.fspath(path), unreadable=f"{type(exc).__name__}{detail}") from None
    return unwrap_state_dict(obj)


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
        raise CheckpointMismatchError(missing, unexpected, mismatched, source=source, looks_like=describe_keys(sd))


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
