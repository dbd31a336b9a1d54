"""Device choice and numerics switches.

Cutie runs on CUDA when available (fp32, or AMP via ``CutieSettings.amp``), else on CPU in fp32.
For comparisons against fp32 golden outputs on GPU, TF32 must be off: Ampere+ GPUs otherwise run
fp32 matmuls/convolutions with 10-bit mantissas.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The given device, else CUDA when available, else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def disable_tf32() -> None:
    """Turn TF32 off for CUDA matmuls and cuDNN convolutions (process-wide)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


@contextlib.contextmanager
def exact_numerics() -> Iterator[None]:
    """Context with TF32 off (restores the previous flags); use when checking against goldens."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    disable_tf32()
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
