"""SAM2 segmenter stage: the `sam2` package's video predictor run as the official VOS evaluation runs it, writing
raw low-resolution logits and object scores into the logit store (see :mod:`models.sam2.segmenter`).

The names below are imported on first use (PEP 562), so that the torch-free parts (:mod:`.variants`, read by the
model registry while parsing configs and building the CLI) do not pull in torch and the sam2 package."""
from __future__ import annotations

import importlib

_EXPORTS = {
    "CheckpointError": ".build", "build_predictor": ".build", "load_checkpoint": ".build",
    "resolve_config": ".build", "LazyFrames": ".frames", "Sam2Segmenter": ".segmenter",
    "memory_lookback": ".segmenter", "pick_device": ".segmenter",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
