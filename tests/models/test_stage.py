"""The generic inference-stage loop, with a small deterministic segmenter that follows the protocol."""
from __future__ import annotations

import numpy as np
import pytest

from data.dataset import VOSDataset
from data.errors import DatasetError, StoreError
from data.labels import write_labels
from data.recipes import RecipeError, Sam2Bilinear
from data.store import LogitStore
from models.stage import FrameOutput, run_stage


def make_root(root, videos: dict[str, int], hw=(24, 32)):
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, n in videos.items():
        (root / "JPEGImages" / name).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (*hw, 3), dtype=np.uint8)).save(
                root / "JPEGImages" / name / f"{i:05d}.jpg")
        labels = np.zeros(hw, np.uint8)
        labels[2:6, 3:9] = 1
        labels[10:14, 3:9] = 2
        write_labels(root / "Annotations" / name / "00000.png", labels)
    return root


class MeanColour:
    """Logit of object k on frame t = mean of channel k-1 of the frame (a real, frame-dependent computation)."""

    name = "meancolour"

    def __init__(self, fail_at: tuple[str, int] | None = None, exc: type[BaseException] = RuntimeError):
        self.fail_at = fail_at
        self.exc = exc
        self.calls: list[str] = []

    def manifest(self):
        return {"model": "meancolour", "settings": {"s": 1}}

    def recipe(self, video):
        return Sam2Bilinear(video_hw=tuple(video.size))

    def video_meta(self, video):
        return {"obj_ids": video.object_ids}

    def run_video(self, video):
        self.calls.append(video.name)
        ids = video.object_ids
        for t in range(len(video)):
            if self.fail_at == (video.name, t):
                raise self.exc(f"boom in {video.name} at {t}")
            frame = video.frame(t).astype(np.float32)
            logits = np.stack([np.full((4, 4), frame[..., (k - 1) % 3].mean(), np.float32) for k in ids])
            yield FrameOutput(t, video.frame_names[t], ids, logits, np.asarray(ids, np.float32))


@pytest.fixture
def root(tmp_path):
    return make_root(tmp_path / "root", {"a": 3, "b": 5, "c": 2})


def open_store(tmp_path, seg):
    return LogitStore.create(tmp_path / "store", seg.manifest(), codec="f32")


def test_writes_every_frame_with_meta_and_summary(root, tmp_path):
    ds, seg = VOSDataset(root), MeanColour()
    store = open_store(tmp_path, seg)
    lines = []
    result = run_stage(ds, ds.video_names, store, seg, progress=False, echo=lines.append)
    assert [s.video for s in result.done] == ["a", "b", "c"] and result.skipped == []
    assert store.videos() == ["a", "b", "c"]
    assert [(s.frames, s.objects) for s in result.done] == [(3, 2), (5, 2), (2, 2)]
    assert lines[1].startswith("b: 5 frames, 2 objects, ") and lines[1].endswith("fps)")
    with store.reader("b") as r:
        assert r.meta["recipe"] == {"kind": "sam2_bilinear", "video_hw": [24, 32], "hflip": False}
        assert r.meta["obj_ids"] == [1, 2]
        assert r.meta["video_hw"] == [24, 32] and r.frame_names == ds["b"].frame_names
        frame = ds["b"].frame(4).astype(np.float32)
        got = r.read(4)
        assert got.obj_ids == [1, 2] and got.scores.tolist() == [1.0, 2.0]
        assert got.logits[1, 0, 0] == np.float32(frame[..., 1].mean())


def test_complete_videos_are_skipped_on_rerun(root, tmp_path):
    ds = VOSDataset(root)
    run_stage(ds, ["a", "b"], open_store(tmp_path, MeanColour()), MeanColour(), progress=False, echo=lambda s: None)
    seg = MeanColour()
    lines = []
    result = run_stage(ds, ds.video_names, open_store(tmp_path, seg), seg, progress=False, echo=lines.append)
    assert seg.calls == ["c"] and result.skipped == ["a", "b"] and [s.video for s in result.done] == ["c"]
    assert lines[0] == "skipping 2 complete videos"


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_error_aborts_the_video_and_a_rerun_resumes(root, tmp_path, exc):
    ds = VOSDataset(root)
    seg = MeanColour(fail_at=("b", 3), exc=exc)
    store = open_store(tmp_path, seg)
    lines = []
    with pytest.raises(exc, match="boom in b at 3"):
        run_stage(ds, ds.video_names, store, seg, progress=False, echo=lines.append)
    assert store.videos() == ["a"] and not store.is_complete("b")
    assert not list((store.root / "videos").glob(".*partial")), "partial file left behind"
    assert lines[-1] == "b: failed; the video stays incomplete"
    seg2 = MeanColour()
    result = run_stage(ds, ds.video_names, open_store(tmp_path, seg2), seg2, progress=False, echo=lambda s: None)
    assert seg2.calls == ["b", "c"] and result.skipped == ["a"] and store.videos() == ["a", "b", "c"]


def test_bad_prompt_fails_before_anything_is_written(root, tmp_path):
    (root / "Annotations" / "b" / "00000.png").unlink()
    ds, seg = VOSDataset(root), MeanColour()
    store = open_store(tmp_path, seg)
    with pytest.raises(DatasetError, match=r"b/00000\.png"):
        run_stage(ds, ds.video_names, store, seg, progress=False, echo=lambda s: None)
    assert seg.calls == ["a"] and store.videos() == ["a"]
    assert sorted(p.name for p in (store.root / "videos").iterdir()) == ["a.zip"]


def test_a_segmenter_that_skips_a_frame_leaves_the_video_incomplete(root, tmp_path):
    class Skipper(MeanColour):
        def run_video(self, video):
            for out in super().run_video(video):
                if out.frame_index != 1:
                    yield out

    ds, seg = VOSDataset(root), Skipper()
    store = open_store(tmp_path, seg)
    with pytest.raises(StoreError, match="frames missing"):
        run_stage(ds, ["a"], store, seg, progress=False, echo=lambda s: None)
    assert store.videos() == []


def test_progress_bars_render(root, tmp_path, capsys):
    ds, seg = VOSDataset(root), MeanColour()
    run_stage(ds, ["c"], open_store(tmp_path, seg), seg, progress=True)
    captured = capsys.readouterr()
    assert "all videos" in captured.err and "c: 2 frames, 2 objects" in captured.out


@pytest.mark.parametrize("recipe, message", [
    ({"kind": "test_identity", "video_hw": [24, 32]}, "unknown logit recipe kind 'test_identity'"),
    ({"kind": "cutie_stride4", "video_hw": [24, 32], "pad": [0, 0, 0, 0]}, "cutie_stride4 recipe lacks padded_hw"),
    ({"kind": "sam2_bilinear", "video_hw": [24, -1]}, "video_hw must be"),
])
def test_a_recipe_the_ensemble_cannot_read_is_refused_before_writing(root, tmp_path, recipe, message):
    """The recipe is checked against its one definition (data.recipes) before the video is written."""
    class Bad(MeanColour):
        def recipe(self, video):
            return recipe

    ds, seg = VOSDataset(root), Bad()
    store = open_store(tmp_path, seg)
    with pytest.raises(RecipeError, match=message):
        run_stage(ds, ["a"], store, seg, progress=False, echo=lambda s: None)
    assert store.videos() == [] and seg.calls == []
    assert not [p for p in (tmp_path / "store" / "videos").iterdir()]
