import numpy as np
import pytest
from PIL import Image

from data.errors import LabelFormatError
from data.labels import DAVIS_PALETTE, encode_labels, read_labels, write_labels


def test_palette_colours():
    assert DAVIS_PALETTE[0:3] == b"\x00\x00\x00"
    assert DAVIS_PALETTE[3:6] == bytes((128, 0, 0))
    assert DAVIS_PALETTE[6:9] == bytes((0, 128, 0))
    assert len(DAVIS_PALETTE) == 768


def test_roundtrip_keeps_ids_and_palette(tmp_path):
    lab = np.zeros((5, 7), np.uint8)
    lab[1:3, 2:5] = 2
    lab[4, 6] = 17
    pal = bytes(range(256)) * 3
    write_labels(tmp_path / "a" / "x.png", lab, pal)
    got, got_pal = read_labels(tmp_path / "a" / "x.png", with_palette=True)
    assert np.array_equal(got, lab)
    assert got_pal == pal
    assert Image.open(tmp_path / "a" / "x.png").mode == "P"
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]


def test_deterministic_bytes():
    lab = np.random.default_rng(0).integers(0, 4, (30, 40)).astype(np.uint8)
    assert encode_labels(lab) == encode_labels(lab.copy())


def test_grayscale_accepted_rgb_rejected(tmp_path):
    Image.fromarray(np.full((4, 4), 3, np.uint8), mode="L").save(tmp_path / "g.png")
    assert read_labels(tmp_path / "g.png").max() == 3
    Image.new("RGB", (4, 4)).save(tmp_path / "rgb.png")
    with pytest.raises(LabelFormatError, match="rgb.png.*mode RGB"):
        read_labels(tmp_path / "rgb.png")
    with pytest.raises(LabelFormatError, match="not found"):
        read_labels(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(LabelFormatError, match="bad.png"):
        read_labels(tmp_path / "bad.png")


def test_reads_shared_clip(vos_clips):
    lab, pal = read_labels(vos_clips / "davis2017_firstframe/Annotations/bmx-trees/00000.png", with_palette=True)
    assert lab.shape == (480, 854)
    assert set(np.unique(lab)) == {0, 1, 2}
    assert pal[:6] == DAVIS_PALETTE[:6]
