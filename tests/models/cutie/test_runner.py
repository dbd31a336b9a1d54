"""The video runner: prompts, lazy frames, evaluation resizing, per-frame outputs."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from models.cutie import (
    CutieSettings, InferenceCore, PromptError, Prompts, UndeclaredObjectError, exact_numerics, iter_video,
    pick_device, preset, run_video, stride4_logits_to_prob,
)
from models.cutie.runner import loader_resize, loader_resize_mask


def test_presets_follow_official_configs():
    mose = preset("mose")
    assert (mose.resize_shorter_side, mose.mem_every, mose.max_mem_frames, mose.top_k, mose.stagger_updates) == \
        (480, 5, 5, 30, 5)
    assert not mose.use_long_term and mose.chunk_size == -1 and not mose.flip_aug
    plus = preset("mose_plus")
    assert (plus.resize_shorter_side, plus.mem_every, plus.max_mem_frames) == (720, 3, 10)
    generic = preset("generic")
    assert generic.use_long_term and generic.long_term.num_prototypes == 128
    assert (generic.long_term.max_mem_frames, generic.long_term.min_mem_frames) == (10, 5)
    assert (generic.long_term.max_num_tokens, generic.long_term.buffer_tokens) == (10000, 2000)
    assert CutieSettings.from_dict(json.loads(json.dumps(generic.to_dict()))) == generic
    assert preset("mose", flip_aug=True).flip_aug


def test_undeclared_ids_fail_clearly(small_net, make_video):
    frames, labels = make_video(t=3)
    prompts = Prompts(masks={0: labels[0]}, first_frame={1: 0})  # object 2 not declared
    with pytest.raises(UndeclaredObjectError, match=r"undeclared object ids \[2\]"):
        list(iter_video(small_net, frames, prompts))
    early = Prompts(masks={0: labels[0], 2: labels[2]}, first_frame={1: 0, 2: 2})
    with pytest.raises(UndeclaredObjectError, match="declared to first appear later"):
        list(iter_video(small_net, frames, early))
    with pytest.raises(PromptError, match="no mask"):
        list(iter_video(small_net, frames, Prompts(masks={0: labels[0]}, first_frame={1: 0, 2: 0, 7: 1})))
    with pytest.raises(PromptError, match="video has 1 frames"):
        list(iter_video(small_net, frames[:1], Prompts(masks={0: labels[0], 5: labels[0]}, first_frame={1: 0, 2: 0})))


def test_lazy_frames_later_start_and_sink(small_net, make_video):
    frames, labels = make_video(t=5)
    consumed = []

    def reader():
        for i, f in enumerate(frames):
            consumed.append(i)
            yield f

    first = np.where(labels[1] == 2, 0, labels[1])
    prompts = Prompts(masks={1: first, 3: np.where(labels[3] == 2, 2, 0)}, first_frame={1: 1, 2: 3})
    out = []
    stream = iter_video(small_net, reader(), prompts, CutieSettings())
    out.append(next(stream))
    assert consumed == [0, 1]  # one frame of lookahead only
    out.extend(stream)
    assert [f.index for f in out] == [0, 1, 2, 3, 4]
    assert out[0].obj_ids == [] and out[0].prob.shape == (1, 64, 112) and (out[0].labels == 0).all()
    assert out[0].logits.shape == (0, 16, 28) and {**out[0].recipe, "source": "network"} == out[2].recipe
    assert out[1].is_prompt and out[1].obj_ids == [1]
    assert out[3].obj_ids == [1, 2] and out[3].recipe["source"] == "network+mask"
    assert out[4].obj_ids == [1, 2] and out[4].labels.dtype == np.uint8
    assert set(np.unique(out[4].labels)) <= {0, 1, 2}
    sunk = []
    first_only = Prompts(masks={1: first}, first_frame={1: 1})
    assert run_video(small_net, frames[:2], first_only, CutieSettings(), sunk.append) == 2
    assert [f.index for f in sunk] == [0, 1] and sunk[1].obj_ids == [1]


def test_eval_resize_matches_manual_protocol(small_net, make_video):
    """resize_shorter_side: frames/masks resized like the official loader, outputs resized back."""
    frames, labels = make_video(t=3, h=96, w=160)
    ids = labels * 3  # ids 3 and 6
    settings = CutieSettings(resize_shorter_side=64)
    out = list(iter_video(small_net, frames, Prompts.first_frame_only(ids[0]), settings))
    assert out[0].obj_ids == [3, 6]
    for f in out:
        assert f.prob.shape == (3, 96, 160) and f.labels.shape == (96, 160)
        assert json.loads(json.dumps(f.recipe)) == f.recipe
        assert f.recipe["video_hw"] == [96, 160] and f.recipe["internal_hw"] == [64, 106]
    for f in out[1:]:
        assert f.logits.shape == (2, 16, 28) and f.logits.dtype == np.float32
        np.testing.assert_allclose(stride4_logits_to_prob(f.logits, f.recipe), f.prob, atol=1e-6)
    # manual official protocol
    core = InferenceCore(small_net, settings)
    mask = torch.from_numpy(loader_resize_mask(ids[0], 64))
    for t in range(3):
        image = loader_resize(torch.from_numpy(frames[t]).permute(2, 0, 1).float() / 255, 64)
        r = core.step(image, mask if t == 0 else None, [3, 6] if t == 0 else None, end=t == 2)
        prob = torch.nn.functional.interpolate(r.prob[None], size=(96, 160), mode="bilinear", align_corners=False)[0]
        np.testing.assert_allclose(prob.numpy(), out[t].prob, atol=1e-6)
        lut = np.array([0, 3, 6])
        assert (lut[prob.numpy().argmax(0)] == out[t].labels).all()


def test_mask_resize_is_nearest_and_keeps_ids():
    mask = np.zeros((96, 160), np.int64)
    mask[10:50, 20:90] = 300  # id beyond uint8
    small = loader_resize_mask(mask, 48)
    assert small.shape == (48, 80) and set(np.unique(small)) == {0, 300}


def test_device_helpers():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        with exact_numerics():
            assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_bad_frames_rejected(small_net, make_video):
    frames, labels = make_video(t=2)
    with pytest.raises(ValueError, match="uint8"):
        list(iter_video(small_net, frames.astype(np.float32), Prompts.first_frame_only(labels[0])))
