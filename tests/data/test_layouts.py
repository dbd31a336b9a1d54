"""Dataset layouts teams have (SA-V, LVOS, later objects, 0/255 masks) and the data layer's failure modes
(umask, writability, disk full, damaged store zips, recorded objects_from)."""
import errno
import json
import os
import stat
import zipfile

import numpy as np
import pytest
from PIL import Image

from data.atomic import atomic_write_bytes, check_writable, make_output_dir
from data.dataset import LaterObjectsWarning, VOSDataset
from data.errors import DatasetError, MassegError, StoreError
from data.labels import flatten_object_folders, read_labels, write_labels
from data.store import LogitStore, recorded_objects_from, resolve_objects_from


def _frames(folder, n, hw=(8, 10)):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.full(hw + (3,), 20 * i, np.uint8)).save(folder / f"{i:05d}.jpg")


def _binary(path, mask):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), mode="L").save(path)


def test_sav_layout_reads_per_object_folders(tmp_path):
    root = tmp_path / "sav_val"
    _frames(root / "JPEGImages_24fps" / "sav_000001", 9)
    a, b = np.zeros((8, 10), bool), np.zeros((8, 10), bool)
    a[:4, :6] = True
    b[2:6, 4:9] = True  # overlaps object 1 on rows 2-3, cols 4-5
    for f in ("00000", "00004", "00008"):  # 6 fps annotations of a 24 fps video
        _binary(root / "Annotations_6fps" / "sav_000001" / "001" / f"{f}.png", a)
        _binary(root / "Annotations_6fps" / "sav_000001" / "002" / f"{f}.png", b)
    ds = VOSDataset(root)
    assert ds.layout == "sa-v" and ds.video_names == ["sav_000001"]
    v = ds["sav_000001"]
    assert len(v) == 9 and v.annotation_names == ["00000", "00004", "00008"]
    assert v.first_given == {1: 0, 2: 0}
    lab = v.annotation(0)
    assert lab[3, 5] == 1  # overlap: the lower id wins, as SAM2's vos_inference packs per-object masks
    assert lab[5, 8] == 2 and lab[7, 0] == 0
    # evaluation: the per-object folders become label maps
    out = tmp_path / "flat"
    assert flatten_object_folders(root / "Annotations_6fps", out)
    np.testing.assert_array_equal(read_labels(out / "sav_000001" / "00004.png"), lab)
    assert not flatten_object_folders(root / "JPEGImages_24fps", tmp_path / "none")


def test_lvos_meta_objects_appearing_later(tmp_path):
    root = tmp_path / "valid"
    _frames(root / "JPEGImages" / "vid", 5)
    lab0, lab3 = np.zeros((8, 10), np.uint8), np.zeros((8, 10), np.uint8)
    lab0[:3, :3] = 1
    lab3[:3, :3] = 1
    lab3[5:, 5:] = 2
    write_labels(root / "Annotations" / "vid" / "00000.png", lab0)
    write_labels(root / "Annotations" / "vid" / "00003.png", lab3)
    meta = {"videos": {"vid": {"objects": {
        "1": {"frame_range": {"start": "00000", "end": "00004", "frame_nums": 5}},
        "2": {"frame_range": {"start": 3, "end": 4, "frame_nums": 2}}}}}}  # LVOS writes names or numbers
    (root / "valid_meta.json").write_text(json.dumps(meta))
    ds = VOSDataset(root)
    assert ds.meta_path().name == "valid_meta.json" and ds.objects_from == "appearance"
    v = ds["vid"]
    assert v.first_given == {1: 0, 2: 3} and v.prompt_frames == [0, 3]
    assert set(np.unique(v.prompt_masks()[3]).tolist()) == {0, 2}


def test_later_objects_in_plain_root_are_named_in_a_warning(tmp_path):
    root = tmp_path / "r"
    _frames(root / "JPEGImages" / "caps", 6)
    lab0, lab4 = np.zeros((8, 10), np.uint8), np.zeros((8, 10), np.uint8)
    lab0[:3, :3] = 1
    lab4[5:, 5:] = 7
    write_labels(root / "Annotations" / "caps" / "00000.png", lab0)
    write_labels(root / "Annotations" / "caps" / "00004.png", lab4)
    with pytest.warns(LaterObjectsWarning, match=r"objects 7 \(frame 00004\).*--objects-from appearance"):
        assert VOSDataset(root)["caps"].object_ids == [1]
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # explicit choices are not warned about
        assert VOSDataset(root, objects_from="first_frame")["caps"].object_ids == [1]
        assert VOSDataset(root, objects_from="appearance")["caps"].first_given == {1: 0, 7: 4}


def test_annotations_without_frames_is_an_error(tmp_path):
    root = tmp_path / "r"
    _frames(root / "JPEGImages" / "a", 3)
    write_labels(root / "Annotations" / "a" / "00000.png", np.ones((8, 10), np.uint8))
    write_labels(root / "Annotations" / "b" / "00000.png", np.ones((8, 10), np.uint8))
    with pytest.raises(DatasetError, match=r"video 'b' has annotations but no frames.*JPEGImages/b"):
        VOSDataset(root)


def test_grayscale_0_255_mask_is_object_1(tmp_path):
    m = np.zeros((8, 10), bool)
    m[2:5, 2:5] = True
    _binary(tmp_path / "m.png", m)
    np.testing.assert_array_equal(read_labels(tmp_path / "m.png"), m.astype(np.uint8))
    # a palette PNG keeps its values (DAVIS uses 255 as void there); so does a grayscale map with other ids
    write_labels(tmp_path / "p.png", np.where(m, 255, 0).astype(np.uint8))
    assert read_labels(tmp_path / "p.png").max() == 255
    Image.fromarray(np.where(m, 255, 3).astype(np.uint8), mode="L").save(tmp_path / "g.png")
    assert set(np.unique(read_labels(tmp_path / "g.png")).tolist()) == {3, 255}


def test_files_get_the_user_umask(tmp_path):
    old = os.umask(0o002)
    try:
        atomic_write_bytes(tmp_path / "a.bin", b"x")
        assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o664
        os.umask(0o077)
        atomic_write_bytes(tmp_path / "b.bin", b"x")
        assert stat.S_IMODE((tmp_path / "b.bin").stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_check_writable(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(MassegError, match="inside .*file, which is a regular file"):
        check_writable(tmp_path / "file" / "out")
    with pytest.raises(MassegError, match="is a regular file"):
        check_writable(tmp_path / "file", "run folder")
    with pytest.raises(MassegError, match="is a folder"):
        check_writable(tmp_path, "submission zip", is_dir=False)
    check_writable(tmp_path / "new" / "deeper")  # creatable: fine
    if os.geteuid() != 0:  # root may write anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            with pytest.raises(MassegError, match="not writable"):
                check_writable(ro / "out")
        finally:
            ro.chmod(0o700)


def test_make_output_dir(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(MassegError, match="file, not a folder") as e:
        make_output_dir(tmp_path / "file" / "out", "report folder")
    assert "choose another --out" in str(e.value)
    made = make_output_dir(tmp_path / "new" / "deeper", option="--dest")
    assert made.is_dir()
    if os.geteuid() != 0:  # root may write anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            with pytest.raises(MassegError, match="cannot create the report folder") as e:
                make_output_dir(ro / "out", "report folder")
            assert "choose another --out" in str(e.value)
            with pytest.raises(MassegError, match="report folder is not writable"):
                make_output_dir(ro, "report folder")
        finally:
            ro.chmod(0o700)


def test_disk_full_names_the_file_and_leaves_nothing(tmp_path, monkeypatch):
    from pathlib import Path

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(MassegError, match=r"out\.bin: cannot write \(No space left on device\).*free disk space"):
        atomic_write_bytes(tmp_path / "out.bin", b"x")
    assert os.listdir(tmp_path) == []


def _store(tmp_path, objects_from="first_frame"):
    from tests.ensemble.helpers import sam2_recipe, write_store
    frames = {f"{i:05d}": ([1], np.full((1, 4, 4), 3.0 - i, np.float32)) for i in range(3)}
    return write_store(tmp_path / f"store_{objects_from}", "sam2",
                       {"v": {"frame_names": list(frames), "video_hw": (8, 8), "recipe": sam2_recipe((8, 8)),
                              "frames": frames}}, settings={"objects_from": objects_from})


def test_store_crc_error_names_the_store(tmp_path):
    store = _store(tmp_path)
    path = store.video_path("v")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("frames/00001.bin")
    body = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[body + 5] ^= 0xFF  # flip a byte of a stored entry: its CRC no longer matches
    path.write_bytes(bytes(data))
    with store.reader("v") as r:
        with pytest.raises(StoreError, match=r"store_first_frame/videos/v\.zip.*CRC"):
            r.verify()
        with pytest.raises(StoreError, match=r"v\.zip.*frame 00001 unreadable"):
            r.read("00001")


def test_objects_from_recorded_in_stores(tmp_path):
    a, b = _store(tmp_path, "appearance"), _store(tmp_path, "first_frame")
    assert recorded_objects_from([a.root]) == "appearance"
    assert resolve_objects_from("auto", [a.root]) == "appearance"
    assert resolve_objects_from("auto", [tmp_path / "nowhere"]) == "auto"
    with pytest.raises(StoreError, match="different --objects-from"):
        recorded_objects_from([a.root, b.root])
    with pytest.raises(StoreError, match="made with appearance"):
        resolve_objects_from("first_frame", [a.root])
    assert isinstance(LogitStore.open(a.root), LogitStore)
