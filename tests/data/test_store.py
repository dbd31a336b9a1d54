import json
import os
import subprocess
import sys

import numpy as np
import pytest

from data.errors import StoreError
from data.store import LogitStore

MAN = {"model": "sam2", "checkpoint_sha256": "abc", "settings": {"image_size": 512}, "scale": 512, "flip": False}


def meta(n):
    return {"frame_names": [f"{i:05d}" for i in range(n)], "video_hw": [20, 30],
            "recipe": {"kind": "sam2_bilinear", "video_hw": [20, 30], "hflip": False}}


def test_write_read_random_access(tmp_path):
    st = LogitStore.create(tmp_path / "s", MAN, codec="f32")
    rng = np.random.default_rng(1)
    data = [rng.normal(size=(2, 8, 8)).astype(np.float32) for _ in range(4)]
    with st.writer("v1", meta(4)) as w:
        for i, d in enumerate(data):
            w.write(i, f"{i:05d}", [1, 3], d, scores=[0.5, -2.0])
    assert st.videos() == ["v1"] and st.is_complete("v1")
    r = LogitStore.open(tmp_path / "s").reader("v1")
    f = r.read(2)
    assert f.obj_ids == [1, 3] and f.frame_name == "00002" and f.frame_index == 2
    assert np.array_equal(f.logits, data[2])
    assert f.scores.tolist() == [0.5, -2.0]
    assert r.recipe["kind"] == "sam2_bilinear" and r.video_hw == (20, 30)
    assert np.array_equal(r.read("00003").logits, data[3])


def test_objects_can_be_absent_on_some_frames(tmp_path):
    st = LogitStore.create(tmp_path / "s", MAN)
    with st.writer("v", meta(2)) as w:
        w.write(0, "00000", [], np.zeros((0, 4, 4), np.float32))
        w.write(1, "00001", [2], np.ones((1, 4, 4), np.float32))
    r = st.reader("v")
    assert r.read(0).obj_ids == [] and r.read(0).logits.shape == (0, 4, 4)
    assert r.read(1).obj_ids == [2]


def test_exception_leaves_no_video(tmp_path):
    st = LogitStore.create(tmp_path / "s", MAN)
    with pytest.raises(RuntimeError):
        with st.writer("v", meta(3)) as w:
            w.write(0, "00000", [1], np.zeros((1, 4, 4)))
            raise RuntimeError("boom")
    assert st.videos() == [] and not os.listdir(tmp_path / "s" / "videos")
    with pytest.raises(StoreError, match="not complete"):
        st.reader("v")


def test_missing_frames_refused(tmp_path):
    st = LogitStore.create(tmp_path / "s", MAN)
    w = st.writer("v", meta(3))
    w.write(0, "00000", [1], np.zeros((1, 4, 4)))
    with pytest.raises(StoreError, match="2 frames missing"):
        w.close()
    assert not st.is_complete("v")


def test_killed_writer_leaves_no_visible_video(tmp_path):
    code = f"""
import os, numpy as np
from data.store import LogitStore
st = LogitStore.create({str(tmp_path / 's')!r}, {MAN!r})
w = st.writer('v', {meta(5)!r})
w.write(0, '00000', [1], np.zeros((1, 64, 64)))
os._exit(9)
"""
    p = subprocess.run([sys.executable, "-c", code], cwd=os.getcwd())
    assert p.returncode == 9
    st = LogitStore.open(tmp_path / "s")
    assert st.videos() == [] and not st.is_complete("v")
    # a rerun overwrites the leftover partial and completes
    with st.writer("v", meta(1) | {"frame_names": ["00000"]}) as w:
        w.write(0, "00000", [1], np.zeros((1, 64, 64)))
    assert st.videos() == ["v"]
    assert [n for n in os.listdir(tmp_path / "s" / "videos")] == ["v.zip"]


def test_resume_requires_same_identity(tmp_path):
    LogitStore.create(tmp_path / "s", MAN)
    LogitStore.create(tmp_path / "s", dict(MAN))  # same: fine
    with pytest.raises(StoreError, match="settings"):
        LogitStore.create(tmp_path / "s", dict(MAN, settings={"image_size": 1024}))
    with pytest.raises(StoreError, match="codec"):
        LogitStore.create(tmp_path / "s", MAN, codec="f16")


def test_open_errors(tmp_path):
    with pytest.raises(StoreError, match="no manifest"):
        LogitStore.open(tmp_path)
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(StoreError, match="valid JSON"):
        LogitStore.open(tmp_path)


def test_manifest_written(tmp_path):
    LogitStore.create(tmp_path / "s", MAN)
    man = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert man["codec"] == "q16" and man["format_version"] == 1 and man["model"] == "sam2"


def test_same_logits_same_bytes(tmp_path):
    import time
    x = np.random.default_rng(0).normal(size=(2, 16, 16)).astype(np.float32)
    outs = []
    for k in range(2):
        st = LogitStore.create(tmp_path / f"s{k}", MAN)
        with st.writer("v", meta(1) | {"frame_names": ["00000"]}) as w:
            w.write(0, "00000", [1, 2], x, scores=[1.0, 2.0])
        outs.append(st.video_path("v").read_bytes())
        time.sleep(1.1)
    assert outs[0] == outs[1]


@pytest.mark.parametrize("codec", ["q16", "q8", "f16", "f32"])
def test_nan_rows_survive_every_codec(tmp_path, codec):
    st = LogitStore.create(tmp_path / "s", MAN, codec=codec)
    x = np.ones((3, 4, 4), np.float32)
    x[1] = np.nan
    with st.writer("v", meta(1) | {"frame_names": ["00000"]}) as w:
        w.write(0, "00000", [1, 2, 3], x)
        with pytest.raises(ValueError, match="whole object rows"):
            y = x.copy()
            y[0, 0, 0] = np.nan
            w.write(1, "00001", [1, 2, 3], y)
    got = st.reader("v").read(0).logits
    assert np.isnan(got[1]).all() and not np.isnan(got[[0, 2]]).any()
    assert np.allclose(got[[0, 2]], 1, atol=0.07)


# ---- the store as a whole: completeness, leftovers of killed writers ---------------------------------------
def _write_video(store: LogitStore, name: str, n: int) -> None:
    frames = [f"{i:05d}" for i in range(n)]
    with store.writer(name, {"frame_names": frames, "video_hw": [8, 8],
                             "recipe": {"kind": "sam2_bilinear", "video_hw": [8, 8], "hflip": False}}) as w:
        for i, f in enumerate(frames):
            w.write(i, f, [1], np.zeros((1, 4, 4), np.float32))


def test_check_store_finds_missing_extra_partial_and_corrupt_videos(tmp_path):
    path = tmp_path / "store"
    assert LogitStore.check(path, ["a"]).missing == ["a"]
    store = LogitStore.create(path, {"model": "test"})
    for v, n in (("a", 2), ("b", 3), ("x", 1), ("short", 1), ("broken", 2)):
        _write_video(store, v, n)
    (path / "videos" / "broken.zip").write_bytes(b"not a zip")
    (path / "videos" / ".c.zip.partial").write_bytes(b"half")
    counts = {"a": 2, "b": 3, "c": 4, "short": 2, "broken": 2}
    check = LogitStore.check(path, list(counts), counts)
    assert check.complete == ["a", "b"]
    assert check.missing == ["c"] and check.extra == ["x"] and check.partial == [".c.zip.partial"]
    assert [b.split(" ")[0] for b in check.bad] == ["short", "broken"]
    assert "1 frames, dataset has 2" in check.bad[0]
    assert not check.ok
    (path / "videos" / ".c.zip.partial").unlink()
    (path / "videos" / "broken.zip").unlink()
    _write_video(store, "broken", 2)
    _write_video(store, "c", 4)
    (path / "videos" / "short.zip").unlink()
    _write_video(store, "short", 2)
    check = LogitStore.check(path, list(counts), counts)
    assert check.ok and check.extra == ["x"] and sorted(check.complete) == sorted(counts)


def test_remove_partials_and_has_video(tmp_path):
    path = tmp_path / "store"
    assert not LogitStore.has_video(path, "a")            # no store yet: nothing complete, no error
    store = LogitStore.create(path, {"model": "test"}, lock=True)
    _write_video(store, "a", 2)
    (path / "videos" / ".b.zip.partial").write_bytes(b"half")
    assert LogitStore.has_video(path, "a") and not LogitStore.has_video(path, "b")
    gone = LogitStore.remove_partials(path)
    assert [p.name for p in gone] == [".b.zip.partial"] and store.videos() == ["a"]
    assert LogitStore.check(path, ["a"]).ok
    assert LogitStore.remove_partials(tmp_path / "nothing") == []
