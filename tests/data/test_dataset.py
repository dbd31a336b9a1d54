import json

import numpy as np
import pytest
from PIL import Image

from data.dataset import VOSDataset, read_split_file
from data.errors import DatasetError
from data.labels import write_labels


def make_root(tmp_path, videos=("a", "b"), n=3, hw=(12, 16), ann_frames=(0,), ids_per_frame=None):
    root = tmp_path / "root"
    for v in videos:
        (root / "JPEGImages" / v).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full(hw + (3,), 10 * i, np.uint8)).save(root / "JPEGImages" / v / f"{i:05d}.jpg")
        for i in ann_frames:
            lab = np.zeros(hw, np.uint8)
            ids = (ids_per_frame or {}).get(i, [1, 2])
            for k, oid in enumerate(ids):
                lab[k * 3:(k + 1) * 3, :4] = oid
            write_labels(root / "Annotations" / v / f"{i:05d}.png", lab)
    return root


def test_davis_layout_lazy(tmp_path):
    root = make_root(tmp_path)
    ds = VOSDataset(root)
    assert ds.video_names == ["a", "b"]
    v = ds["a"]
    assert v.frame_names == ["00000", "00001", "00002"] and len(v) == 3
    assert v.size == (12, 16)
    assert v.frame(2).shape == (12, 16, 3)
    assert v.first_given == {1: 0, 2: 0} and v.object_ids == [1, 2]
    masks = v.prompt_masks()
    assert list(masks) == [0] and set(np.unique(masks[0])) == {0, 1, 2}


def test_split_by_name_and_file(tmp_path):
    root = make_root(tmp_path, videos=("a", "b", "c"))
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("c\n# comment\na\n\n")
    assert VOSDataset(root, "val").video_names == ["c", "a"]
    (tmp_path / "my.txt").write_text("b\n")
    assert VOSDataset(root, tmp_path / "my.txt").video_names == ["b"]
    with pytest.raises(DatasetError, match="split 'nope' not found"):
        VOSDataset(root, "nope")


def test_split_file_errors(tmp_path):
    (tmp_path / "dup.txt").write_text("a\na\n")
    with pytest.raises(DatasetError, match="listed twice"):
        read_split_file(tmp_path / "dup.txt")
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(DatasetError, match="empty"):
        read_split_file(tmp_path / "empty.txt")


def test_missing_video_and_first_mask(tmp_path):
    root = make_root(tmp_path, ann_frames=())
    (tmp_path / "s.txt").write_text("a\nzzz\n")
    ds = VOSDataset(root, tmp_path / "s.txt")
    with pytest.raises(DatasetError, match="zzz.*no frame folder"):
        ds["zzz"]
    with pytest.raises(DatasetError, match="first-frame annotation missing"):
        ds["a"].first_given


def test_youtube_style_objects_appear_later(tmp_path):
    root = make_root(tmp_path, videos=("v",), n=4, ann_frames=(0, 2), ids_per_frame={0: [1], 2: [1, 3]})
    ds = VOSDataset(root, objects_from="appearance")
    v = ds["v"]
    assert v.first_given == {1: 0, 3: 2}
    masks = v.prompt_masks()
    assert sorted(masks) == [0, 2]
    assert set(np.unique(masks[2])) == {0, 3}  # object 1 is not re-prompted
    # with meta.json the mode is chosen automatically and meta decides
    (root / "meta.json").write_text(json.dumps(
        {"videos": {"v": {"objects": {"1": {"frames": ["00000"]}, "3": {"frames": ["00002", "00003"]}}}}}))
    ds2 = VOSDataset(root)
    assert ds2.objects_from == "appearance" and ds2["v"].first_given == {1: 0, 3: 2}


def test_first_frame_mode_ignores_later_objects(tmp_path):
    root = make_root(tmp_path, videos=("v",), n=4, ann_frames=(0, 2), ids_per_frame={0: [1], 2: [1, 3]})
    from data.dataset import LaterObjectsWarning
    with pytest.warns(LaterObjectsWarning, match=r"objects 3 \(frame 00002\)"):
        assert VOSDataset(root)["v"].first_given == {1: 0}


def test_annotation_size_mismatch(tmp_path):
    root = make_root(tmp_path, videos=("v",))
    write_labels(root / "Annotations" / "v" / "00000.png", np.ones((5, 5), np.uint8))
    with pytest.raises(DatasetError, match="00000.png.*5x5"):
        VOSDataset(root)["v"].first_given


def test_davis_resolution_folder(tmp_path):
    root = make_root(tmp_path)
    (root / "JPEGImages").rename(tmp_path / "J")
    (root / "JPEGImages").mkdir()
    (tmp_path / "J").rename(root / "JPEGImages" / "480p")
    (root / "Annotations").rename(tmp_path / "A")
    (root / "Annotations").mkdir()
    (tmp_path / "A").rename(root / "Annotations" / "480p")
    ds = VOSDataset(root)
    assert ds.resolution == "480p" and ds["a"].object_ids == [1, 2]


def test_shared_clips(vos_clips):
    ds = VOSDataset(vos_clips / "xmem2_examples", objects_from="appearance")
    v = ds["caps"]
    assert len(v) == 87 and v.size == (853, 480)
    assert v.first_given == {1: 0, 2: 33}
    ds16 = VOSDataset(vos_clips / "davis2016")
    assert ds16.video_names == ["bmx-trees", "libby"] and ds16["libby"].object_ids == [1]


def test_bad_root(tmp_path):
    with pytest.raises(DatasetError, match="dataset root not found"):
        VOSDataset(tmp_path / "nope")
    with pytest.raises(DatasetError, match="no JPEGImages"):
        VOSDataset(tmp_path)
