"""SAM2 segmenter stage: the `sam2` package's video predictor run as the official VOS evaluation runs it, writing
raw low-resolution logits and object scores into the logit store (see :mod:`models.sam2.segmenter`)."""
from .build import CheckpointError, build_predictor, load_checkpoint, resolve_config
from .frames import LazyFrames
from .segmenter import Sam2Segmenter, memory_lookback, pick_device

__all__ = ["CheckpointError", "LazyFrames", "Sam2Segmenter", "build_predictor", "load_checkpoint",
           "memory_lookback", "pick_device", "resolve_config"]
