"""Atomic writes leave only a temp file when killed, and that temp file is removed by its owner's cleanup."""
from __future__ import annotations

import pytest

from data.atomic import atomic_path, atomic_write_text, remove_temp_files


def test_a_failed_write_leaves_nothing_and_leftovers_are_removed(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "a" / "x.json") as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert list((tmp_path / "a").iterdir()) == []
    atomic_write_text(tmp_path / "a" / "x.json", "{}")
    (tmp_path / "a" / "b").mkdir()
    (tmp_path / "a" / "b" / ".y.png.k3j2.tmp").write_bytes(b"half")   # what a SIGKILLed writer leaves
    (tmp_path / "a" / "keep.tmp").write_bytes(b"not ours: no leading dot")
    gone = remove_temp_files(tmp_path)
    assert [p.name for p in gone] == [".y.png.k3j2.tmp"]
    assert sorted(p.name for p in (tmp_path / "a").rglob("*") if p.is_file()) == ["keep.tmp", "x.json"]
