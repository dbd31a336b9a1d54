"""The network under ``torch.inference_mode()``: built and stepped there (as the official evaluation script
does), or built outside and stepped inside; the positional-encoding cache follows the buffer's values."""
from __future__ import annotations

import numpy as np
import torch

from models.cutie import CutieSettings, InferenceCore, build_cutie
from models.cutie.transformer import PositionalEncoding


def _probs(net, frames, labels):
    core = InferenceCore(net, CutieSettings(mem_every=2, stagger_updates=2))
    out = []
    for t, frame in enumerate(frames):
        image = torch.from_numpy(frame).permute(2, 0, 1).float() / 255
        mask = torch.from_numpy(labels[0]).long() if t == 0 else None
        out.append(core.step(image, mask, end=(t == len(frames) - 1)).prob.clone())
    return torch.stack(out)


def test_built_and_stepped_inside_inference_mode_equals_built_outside(small_net, make_video):
    frames, labels = make_video(t=4)
    state = small_net.state_dict()
    with torch.inference_mode():
        inside = build_cutie("small", state, device="cpu")
        assert inside.object_transformer.spatial_pe.inv_freq.is_inference()
        got = _probs(inside, frames, labels)
    outside = build_cutie("small", state, device="cpu")  # built outside, stepped inside (step's own mode)
    with torch.inference_mode():
        ref = _probs(outside, frames, labels)
    assert torch.isfinite(got).all()
    # parameters made under inference_mode take slightly different kernels (last-bit rounding only)
    assert (got - ref).abs().max() <= 1e-5


def test_positional_encoding_cache_follows_the_buffer():
    pe = PositionalEncoding(16, scale=32.0, temperature=128.0)
    with torch.inference_mode():
        first = pe(3, 5, torch.float32)
        assert pe(3, 5, torch.float32) is first  # cached
        pe.inv_freq.mul_(2)  # a checkpoint copied in under inference_mode
        changed = pe(3, 5, torch.float32)
    assert not torch.equal(first, changed)
    fresh = PositionalEncoding(16, scale=32.0, temperature=128.0)
    fresh.inv_freq.copy_(pe.inv_freq)
    np.testing.assert_array_equal(fresh(3, 5, torch.float32).numpy(), changed.numpy())
    # a result cached under inference_mode is an inference tensor: outside the mode it is recomputed
    outside = pe(3, 5, torch.float32)
    assert not outside.is_inference() and torch.equal(outside, changed)
