"""Behaviour of the inference core beyond the golden variants: schedule, memory bookkeeping,
objects given later, chunking, flip augmentation, internal resizing."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.cutie import CutieSettings, InferenceCore, stride4_logits_to_prob
from models.cutie.inference import stagger_steps


def _image(frame: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frame).permute(2, 0, 1).float() / 255


def _run(net, settings, frames, masks: dict, objects: dict | None = None):
    core = InferenceCore(net, settings)
    results = []
    for t, frame in enumerate(frames):
        mask = masks.get(t)
        results.append(core.step(_image(frame), None if mask is None else torch.from_numpy(mask).long(),
                                 None if objects is None else objects.get(t), end=(t == len(frames) - 1)))
    return core, results


def test_stagger_steps():
    assert stagger_steps(5, 5) == {1, 2, 3, 4, 5}
    assert stagger_steps(2, 1) == {1}
    assert stagger_steps(10, 3) == {1, 6, 10}


def test_memory_schedule_fifo_and_end(small_net, make_video):
    frames, labels = make_video(t=5)
    core, results = _run(small_net, CutieSettings(mem_every=1, max_mem_frames=2, stagger_updates=1),
                         frames, {0: labels[0]})
    assert [r.is_memory_frame for r in results] == [True, True, True, True, False]  # never at the end
    hw = (64 // 16) * (112 // 16)
    (bucket,) = core.memory.work.buckets
    # permanent first frame + only the newest memory frame (t=3); t=1 and t=2 were evicted
    assert core.memory.work.perm_end[bucket] == hw
    assert core.memory.work.size(bucket) == 2 * hw
    for r in results[1:]:
        assert r.source == "network"
        np.testing.assert_allclose(r.prob.sum(0).numpy(), 1, atol=1e-5)
        np.testing.assert_allclose(stride4_logits_to_prob(r.logits, r.recipe), r.prob, atol=1e-6)
    assert results[0].source == "mask" and torch.isnan(results[0].logits).all()
    assert torch.equal(results[0].labels(), torch.from_numpy(labels[0]).long())
    _, sparse = _run(small_net, CutieSettings(mem_every=3), frames, {0: labels[0]})
    assert [r.is_memory_frame for r in sparse] == [True, False, False, True, False]


def test_long_term_memory_consolidates_and_prunes(small_net, make_video):
    frames, labels = make_video(t=6)
    lt = dict(count_usage=True, max_mem_frames=3, min_mem_frames=2, num_prototypes=6, max_num_tokens=16,
              buffer_tokens=4)
    core, results = _run(small_net, CutieSettings(mem_every=1, use_long_term=True).replace(long_term=lt),
                         frames, {0: labels[0]})
    (bucket,) = core.memory.work.buckets
    hw = 4 * 7
    # memory frames t=0..4 (t=5 is the end); consolidation at t=2, 3, 4 (6 prototypes each); at t=4 the
    # 12 long-term tokens reached max_num_tokens - num_prototypes = 10 and were pruned to
    # 16 - 6 - 4 = 6 before 6 more were added (18 without pruning)
    assert core.memory.long.size(bucket) == 12
    assert core.memory.work.non_perm_size(bucket) == hw  # min_mem_frames - 1 frames kept
    assert all(torch.isfinite(r.prob).all() for r in results)


def test_objects_given_later_get_their_own_bucket(small_net, make_video):
    frames, labels = make_video(t=4)
    first = np.where(labels[0] == 2, 0, labels[0])  # object 2 only given on frame 2
    later = np.where(labels[2] == 2, 2, 0)
    core, results = _run(small_net, CutieSettings(), frames, {0: first, 2: later}, {0: [1], 2: [2]})
    assert results[1].obj_ids == [1] and results[2].obj_ids == [1, 2]
    assert results[2].source == "network+mask"
    # the tracked object was predicted (finite logits), the new one comes from the mask (NaN row)
    assert torch.isfinite(results[2].logits[:1]).all() and torch.isnan(results[2].logits[1]).all()
    # given pixels win: where the new mask is set, it is the argmax
    assert (results[2].labels()[torch.from_numpy(later) == 2] == 2).all()
    assert sorted(map(sorted, core.memory.work.buckets.values())) == [[1], [2]]
    assert results[3].prob.shape[0] == 3 and torch.isfinite(results[3].logits).all()


def test_chunked_objects_match_unchunked(small_net, make_video):
    frames, labels = make_video(t=4)
    base = CutieSettings(mem_every=2, stagger_updates=2)
    _, whole = _run(small_net, base, frames, {0: labels[0]})
    _, chunked = _run(small_net, base.replace(chunk_size=1), frames, {0: labels[0]})
    for a, b in zip(whole, chunked):
        assert np.abs((a.prob - b.prob).numpy()).max() <= 2e-4
        if a.source == "network":
            assert np.abs((a.logits - b.logits).numpy()).max() <= 2e-3


def test_flip_augmentation_is_mirror_equivariant(small_net, make_video):
    """With flip-aug, running on the mirrored video gives the mirrored result (width is a multiple of 16)."""
    frames, labels = make_video(t=3)
    settings = CutieSettings(flip_aug=True)
    _, plain = _run(small_net, settings, frames, {0: labels[0]})
    _, mirrored = _run(small_net, settings, frames[:, :, ::-1].copy(), {0: labels[0][:, ::-1].copy()})
    for a, b in zip(plain[1:], mirrored[1:]):
        assert a.logits.shape == (2, 2, 16, 28)
        np.testing.assert_allclose(a.prob.numpy(), torch.flip(b.prob, dims=[-1]).numpy(), atol=1e-4)
        np.testing.assert_allclose(stride4_logits_to_prob(a.logits, a.recipe), a.prob, atol=1e-6)
    _, no_flip = _run(small_net, CutieSettings(), frames, {0: labels[0]})
    assert not torch.allclose(no_flip[-1].prob, plain[-1].prob, atol=1e-4)


def test_max_internal_size_resizes_inside_and_back(small_net, make_video):
    frames, labels = make_video(t=3, h=96, w=160)
    _, results = _run(small_net, CutieSettings(max_internal_size=64), frames, {0: labels[0]})
    r = results[-1]
    assert r.prob.shape == (3, 96, 160)
    assert r.recipe["internal_hw"] == [64, 106] and r.recipe["padded_hw"] == [64, 112]
    assert r.recipe["resize_hw"] == [[96, 160]] and r.logits.shape == (2, 16, 28)
    np.testing.assert_allclose(stride4_logits_to_prob(r.logits, r.recipe), r.prob, atol=1e-6)
    # the same as resizing by hand and running at the internal size
    small = torch.nn.functional.interpolate(torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255,
                                            size=(64, 106), mode="bilinear", align_corners=False)
    mask = torch.nn.functional.interpolate(torch.from_numpy(labels[0])[None, None].float(), size=(64, 106),
                                           mode="nearest-exact")[0, 0].long()
    core = InferenceCore(small_net, CutieSettings())
    core.step(small[0], mask)
    core.step(small[1])
    manual = core.step(small[2], end=True).prob
    back = torch.nn.functional.interpolate(manual[None], size=(96, 160), mode="bilinear", align_corners=False)[0]
    np.testing.assert_allclose(back.numpy(), r.prob.numpy(), atol=1e-6)


def test_mask_on_tracked_objects_resets_them(small_net, make_video):
    frames, labels = make_video(t=3)
    _, results = _run(small_net, CutieSettings(), frames, {0: labels[0], 2: labels[2]})
    assert results[2].source == "mask"
    assert torch.equal(results[2].labels(), torch.from_numpy(labels[2]).long())


@pytest.mark.parametrize("bad", [dict(mem_every=0), dict(top_k=0), dict(amp_dtype="int8")])
def test_settings_validation(bad):
    with pytest.raises(ValueError):
        CutieSettings(**bad)
