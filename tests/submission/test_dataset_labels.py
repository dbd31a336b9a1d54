"""The submission zip of a split's labels (what `masseg fuse --zip` and `masseg run` write): written only clean."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest
from PIL import Image

from data.dataset import VOSDataset
from data.errors import MassegError
from data.labels import write_labels
from submission.build import submit_dataset_labels


def test_clean_labels_make_a_zip_and_a_missing_frame_makes_none(tmp_path):
    root, labels = tmp_path / "ds", tmp_path / "labels"
    mask = np.zeros((12, 16), np.uint8)
    mask[2:8, 3:9] = 1
    for i in range(3):
        (root / "JPEGImages" / "v").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 12)).save(root / "JPEGImages" / "v" / f"{i:05d}.jpg")
        write_labels(labels / "v" / f"{i:05d}.png", mask)
    write_labels(root / "Annotations" / "v" / "00000.png", mask)
    ds = VOSDataset(root)
    res = submit_dataset_labels(labels, ds, tmp_path / "sub.zip")
    assert res.ok and res.frames == 3
    with zipfile.ZipFile(tmp_path / "sub.zip") as z:
        assert sorted(n for n in z.namelist() if n.endswith(".png")) == [f"v/{i:05d}.png" for i in range(3)]
    (labels / "v" / "00002.png").unlink()
    with pytest.raises(MassegError, match="do not make a valid submission") as err:
        submit_dataset_labels(labels, ds, tmp_path / "other.zip")
    assert "00002" in str(err.value) and not (tmp_path / "other.zip").exists()
