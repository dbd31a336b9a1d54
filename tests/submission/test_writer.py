import os

import numpy as np
import pytest
from PIL import Image

from data.dataset import VOSDataset
from data.errors import LabelFormatError, MassegError
from data.labels import DAVIS_PALETTE, read_labels
from submission.expected import expected_from_dataset, first_given_palette, palettes_for
from submission.writer import SubmissionWriter

from .test_dataset_gen import BETA_PALETTE, make_dataset


def test_write_palette_png_roundtrip(tmp_path):
    w = SubmissionWriter(tmp_path / "out")
    lab = np.zeros((6, 9), np.int64)
    lab[2:4, 3:7] = 2
    path = w.write("vid", "00003", lab)
    assert path == tmp_path / "out" / "vid" / "00003.png"
    got, pal = read_labels(path, with_palette=True)
    assert got.dtype == np.uint8 and np.array_equal(got, lab)
    assert pal == DAVIS_PALETTE
    assert Image.open(path).mode == "P"
    assert sorted(os.listdir(path.parent)) == ["00003.png"]  # no temp file left


def test_palette_default_and_per_frame_override(tmp_path):
    w = SubmissionWriter(tmp_path, palette=BETA_PALETTE)
    w.write("v", "a", np.ones((2, 2), np.uint8))
    w.write("v", "b", np.ones((2, 2), np.uint8), palette=DAVIS_PALETTE)
    assert read_labels(tmp_path / "v" / "a.png", with_palette=True)[1] == BETA_PALETTE
    assert read_labels(tmp_path / "v" / "b.png", with_palette=True)[1] == DAVIS_PALETTE
    with pytest.raises(ValueError, match="768"):
        SubmissionWriter(tmp_path, palette=b"\0" * 10)


def test_same_labels_same_bytes(tmp_path):
    lab = np.random.default_rng(3).integers(0, 3, (40, 50)).astype(np.uint8)
    a = SubmissionWriter(tmp_path / "a").write("v", "00000", lab).read_bytes()
    b = SubmissionWriter(tmp_path / "b").write("v", "00000", lab.astype(np.int32)).read_bytes()
    assert a == b


def test_torch_tensor_labels(tmp_path):
    torch = pytest.importorskip("torch", reason="torch is an install requirement but absent here")
    lab = torch.zeros((3, 4), dtype=torch.uint8)
    lab[1, 2] = 5
    path = SubmissionWriter(tmp_path).write("v", "00000", lab)
    assert read_labels(path).tolist() == lab.tolist()


@pytest.mark.parametrize("labels, match", [
    (np.zeros((2, 3, 4), np.uint8), "2-D"),
    (np.zeros((4, 4), np.float32), "dtype float32"),
    (np.full((4, 4), 300, np.int32), "0..255"),
    (np.full((4, 4), -1, np.int32), "0..255"),
])
def test_bad_label_maps_rejected_naming_file(tmp_path, labels, match):
    with pytest.raises(LabelFormatError, match=match) as exc:
        SubmissionWriter(tmp_path).write("vid", "00001", labels)
    assert "vid/00001.png" in str(exc.value) and "fix:" in str(exc.value)
    assert not (tmp_path / "vid" / "00001.png").exists()


@pytest.mark.parametrize("video, frame", [("../x", "00000"), (".hidden", "00000"), ("v", "a/b"), ("", "0"),
                                          ("v", "..")])
def test_unsafe_names_rejected(tmp_path, video, frame):
    with pytest.raises(MassegError, match="invalid"):
        SubmissionWriter(tmp_path).write(video, frame, np.zeros((2, 2), np.uint8))


def test_expected_checks_size_ids_video_frame(tmp_path):
    ds = VOSDataset(make_dataset(tmp_path / "ds"), "val")
    w = SubmissionWriter(tmp_path / "out", expected=expected_from_dataset(ds))
    ok = np.zeros((24, 32), np.uint8)
    ok[0, 0], ok[1, 1] = 1, 2
    w.write("alpha", "00004", ok)
    with pytest.raises(LabelFormatError, match=r"32x23, the video is 32x24"):
        w.write("alpha", "00001", np.zeros((23, 32), np.uint8))
    bad = ok.copy()
    bad[5, 5] = 3
    with pytest.raises(LabelFormatError, match=r"ids \[3\] are not objects of alpha"):
        w.write("alpha", "00001", bad)
    with pytest.raises(MassegError, match="not in the split"):
        w.write("delta", "00000", np.zeros((12, 12), np.uint8))
    with pytest.raises(MassegError, match="has no frame '00009'"):
        w.write("alpha", "00009", ok)
    assert w.written("alpha") == ["00004"]


def test_resume_helpers_ignore_temp_files(tmp_path):
    w = SubmissionWriter(tmp_path)
    assert w.videos() == [] and w.written("v") == []
    for f in ("00002", "00000"):
        w.write("v", f, np.zeros((3, 3), np.uint8))
    # what an interrupted atomic write leaves behind: a hidden temp file, never a partial 00001.png
    (tmp_path / "v" / ".00001.png.abc123.tmp").write_bytes(b"\x89PNG partial")
    (tmp_path / ".tmpdir").mkdir()
    assert w.videos() == ["v"]
    assert w.written("v") == ["00000", "00002"]
    assert w.missing("v", ["00000", "00001", "00002", "00003"]) == ["00001", "00003"]
    assert not w.is_complete("v", ["00000", "00001"])
    w.write("v", "00001", np.zeros((3, 3), np.uint8))
    assert w.is_complete("v", ["00000", "00001", "00002"])


def test_dataset_palettes(tmp_path):
    ds = VOSDataset(make_dataset(tmp_path), "val")
    assert first_given_palette(ds["beta"]) == BETA_PALETTE
    assert first_given_palette(ds["gamma"]) == DAVIS_PALETTE  # grayscale annotation: DAVIS palette
    assert palettes_for(ds, "dataset") == {"alpha": DAVIS_PALETTE, "beta": BETA_PALETTE, "gamma": DAVIS_PALETTE}
    assert set(palettes_for(ds, "davis").values()) == {DAVIS_PALETTE}
    with pytest.raises(ValueError, match="palette must be one of"):
        palettes_for(ds, "rainbow")
