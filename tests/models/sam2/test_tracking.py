"""Tracking semantics of the SAM2 stage, each checked bit for bit against a reference run on this machine:
objects appearing later (vs the package run per object from its first frame, as the official
--track_object_appearing_later_in_video mode does), releasing outputs the tracker no longer reads (vs keeping
everything), and the flipped member (vs the plain member on mirrored files). Small input size to stay cheap."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import models.sam2.segmenter as segmenter_module
from data.dataset import VOSDataset
from data.labels import read_labels, write_labels
from data.store import LogitStore
from models.sam2 import Sam2Segmenter
from models.stage import run_stage

from tests.helpers.golden import frames_range, link_video

from .conftest import CONFIG
from .official import build_package_predictor, run_separate

SIZE = 256


def run_frames(seg: Sam2Segmenter, root, video: str) -> list:
    return list(seg.run_video(VOSDataset(root, objects_from="appearance")[video]))


# ---- objects appearing later --------------------------------------------------------------------------------
CAPS_FRAMES = ["00000", "00001", "00002", "00031", "00032", "00033", "00034", "00035"]


@pytest.fixture(scope="module")
def caps_root(clips, tmp_path_factory):
    """8 frames of xmem2_examples/caps renamed 00000-00007; object 2's first mask (source 00033) is on frame 5."""
    root = tmp_path_factory.mktemp("caps_root")
    rename = {src: f"{i:05d}" for i, src in enumerate(CAPS_FRAMES)}
    link_video(root, "caps", clips / "xmem2_examples", CAPS_FRAMES, ["00000", "00033"], rename=rename)
    return root


def test_objects_appearing_later_match_per_object_package_runs(caps_root, golden_weights, tmp_path):
    ds = VOSDataset(caps_root, objects_from="appearance")
    video = ds["caps"]
    assert video.first_given == {1: 0, 2: 5}
    seg = Sam2Segmenter(golden_weights, config=CONFIG, image_size=SIZE, device="cpu", objects_from="appearance")
    store = LogitStore.create(tmp_path / "store", seg.manifest(), codec="f32")
    run_stage(ds, ["caps"], store, seg, progress=False, echo=lambda s: None)

    ann = caps_root / "Annotations" / "caps"
    first_masks = {1: (0, read_labels(ann / "00000.png") == 1), 2: (5, read_labels(ann / "00005.png") == 2)}
    ref = run_separate(build_package_predictor(golden_weights, SIZE), caps_root / "JPEGImages" / "caps", first_masks)

    with store.reader("caps") as r:
        assert r.meta["first_given"] == {"1": 0, "2": 5} and r.meta["obj_ids"] == [1, 2]
        for t in range(len(r)):
            fr = r.read(t)
            assert fr.obj_ids == ([1] if t < 5 else [1, 2])  # no entry before an object's first frame
            assert fr.logits.shape == (len(fr.obj_ids), SIZE // 4, SIZE // 4)
            for i, oid in enumerate(fr.obj_ids):
                want, score = ref[(t, oid)]
                assert fr.logits[i].tobytes() == want.tobytes(), (t, oid, np.abs(fr.logits[i] - want).max())
                assert fr.scores[i] == np.float32(score)
    assert set(ref) == {(t, 1) for t in range(8)} | {(t, 2) for t in range(5, 8)}


def test_frames_before_the_first_object_are_written_empty(caps_root, golden_weights, tmp_path):
    """A video whose only mask is on its 4th frame: the first three frames are written with no object."""
    root = tmp_path / "root"
    link_video(root, "late", caps_root, [f"{i:05d}" for i in range(2, 6)], ["00005"], src_video="caps")
    seg = Sam2Segmenter(golden_weights, config=CONFIG, image_size=SIZE, device="cpu")
    outs = run_frames(seg, root, "late")
    assert [o.obj_ids for o in outs] == [[], [], [], [1, 2]]
    assert outs[0].logits.shape == (0, SIZE // 4, SIZE // 4) and outs[0].scores.shape == (0,)


# ---- releasing outputs ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def libby20(clips, tmp_path_factory):
    root = tmp_path_factory.mktemp("libby20")
    link_video(root, "libby", clips / "davis2016", frames_range(20), ["00000"])
    return root


@pytest.fixture(scope="module")
def kept_everything(libby20, golden_weights):
    """Reference: the package's behaviour of keeping every per-frame output."""
    seg = Sam2Segmenter(golden_weights, config=CONFIG, image_size=SIZE, device="cpu", release_outputs=False)
    outs = run_frames(seg, libby20, "libby")
    assert seg.stats["max_retained_outputs"] == 19  # every non-conditioning frame kept
    return outs


def test_released_outputs_give_identical_logits(libby20, golden_weights, kept_everything):
    seg = Sam2Segmenter(golden_weights, config=CONFIG, image_size=SIZE, device="cpu")
    outs = run_frames(seg, libby20, "libby")
    # hiera_t reads object pointers 15 frames back (max_obj_ptrs_in_encoder=16), spatial memory 6 back
    assert seg.stats["lookback"] == 15
    assert seg.stats["max_retained_outputs"] == 15  # released: bounded, not growing with the video
    for a, b in zip(outs, kept_everything, strict=True):
        assert a.logits.tobytes() == b.logits.tobytes(), a.frame_index
        assert a.scores.tobytes() == b.scores.tobytes()


def test_releasing_more_than_that_changes_logits(libby20, golden_weights, kept_everything, monkeypatch):
    """Sensitivity of the test above: keeping only 6 frames (spatial memory only) does change the logits."""
    monkeypatch.setattr(segmenter_module, "memory_lookback", lambda model, n: 6)
    seg = Sam2Segmenter(golden_weights, config=CONFIG, image_size=SIZE, device="cpu")
    outs = run_frames(seg, libby20, "libby")
    assert seg.stats["max_retained_outputs"] == 6
    assert any(a.logits.tobytes() != b.logits.tobytes() for a, b in zip(outs, kept_everything))


# ---- flipped member -------------------------------------------------------------------------------------------
def test_flipped_member_equals_plain_member_on_mirrored_video(clips, golden_weights, tmp_path):
    root = tmp_path / "orig"
    link_video(root, "libby", clips / "davis2016", frames_range(4), ["00000"])
    video = VOSDataset(root)["libby"]
    mirrored = tmp_path / "mirrored"
    (mirrored / "JPEGImages" / "libby").mkdir(parents=True)
    for i, name in enumerate(video.frame_names):  # lossless PNG frames: same pixels as the decoded JPEGs
        Image.fromarray(np.ascontiguousarray(video.frame(i)[:, ::-1])).save(mirrored / "JPEGImages" / "libby" /
                                                                            f"{name}.png")
    labels, palette = read_labels(root / "Annotations" / "libby" / "00000.png", with_palette=True)
    write_labels(mirrored / "Annotations" / "libby" / "00000.png", np.ascontiguousarray(labels[:, ::-1]), palette)

    flip = Sam2Segmenter(golden_weights, config=CONFIG, image_size=SIZE, device="cpu", hflip=True)
    assert flip.recipe(video).hflip is True and flip.manifest()["flip"] is True
    assert flip.manifest()["settings"]["hflip"] is True
    plain = Sam2Segmenter(golden_weights, config=CONFIG, image_size=SIZE, device="cpu")
    a = run_frames(flip, root, "libby")
    b = run_frames(plain, mirrored, "libby")
    for x, y in zip(a, b, strict=True):
        assert x.logits.tobytes() == y.logits.tobytes() and x.scores.tobytes() == y.scores.tobytes()
    c = run_frames(plain, root, "libby")
    assert a[1].logits.tobytes() != c[1].logits.tobytes()
