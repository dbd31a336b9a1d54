import io
import os
import zipfile

import pytest

from submission.package import DeterministicZip, building_zip, entry_key


def _build(path, entries):
    with building_zip(path) as zw:
        for name, data in entries:
            if data is None:
                zw.add_dir(name)
            else:
                zw.add_file(name, data)


ENTRIES = [("a/", None), ("a/00000.png", b"x" * 10), ("a/00001.png", b"y"), ("a-b/", None), ("a-b/00000.png", b"z")]


def test_pinned_metadata_and_layout(tmp_path):
    _build(tmp_path / "s.zip", ENTRIES)
    with zipfile.ZipFile(tmp_path / "s.zip") as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == [n for n, _ in ENTRIES]
        for i in infos:
            assert i.date_time == (1980, 1, 1, 0, 0, 0)
            assert i.compress_type == zipfile.ZIP_STORED
            assert i.create_system == 3
            assert (i.external_attr >> 16) == (0o040755 if i.is_dir() else 0o100644)
        assert zf.read("a/00000.png") == b"x" * 10
        assert zf.testzip() is None
    assert oct(os.stat(tmp_path / "s.zip").st_mode & 0o777) == "0o644"


def test_same_entries_same_bytes_anywhere(tmp_path, monkeypatch):
    _build(tmp_path / "one.zip", ENTRIES)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    _build("two.zip", ENTRIES)
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "elsewhere" / "two.zip").read_bytes()


def test_entry_order_is_by_path_components():
    names = ["a-b/00000.png", "a/00001.png", "a/", "a-b/", "a/00000.png"]
    assert sorted(names, key=entry_key) == ["a/", "a/00000.png", "a/00001.png", "a-b/", "a-b/00000.png"]


def test_out_of_order_entries_refused():
    zw = DeterministicZip(io.BytesIO())
    zw.add_file("v/00001.png", b"1")
    with pytest.raises(ValueError, match="sorted order"):
        zw.add_file("v/00000.png", b"0")
    with pytest.raises(ValueError, match="sorted order"):
        zw.add_file("v/00001.png", b"again")  # duplicates too
    zw.close()


def test_failed_body_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with building_zip(tmp_path / "s.zip") as zw:
            zw.add_file("v/00000.png", b"data")
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_failed_check_keeps_previous_zip_and_no_temp(tmp_path):
    dest = tmp_path / "s.zip"
    dest.write_bytes(b"previous")
    seen = []

    def refuse(tmp):
        with zipfile.ZipFile(tmp) as zf:  # the check sees the finished zip under its temp name
            seen.append(zf.namelist())
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        with building_zip(dest, check=refuse) as zw:
            zw.add_file("v/00000.png", b"data")
    assert seen == [["v/00000.png"]]
    assert dest.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["s.zip"]
