import hashlib

from data.hashing import file_sha256


def test_file_sha256_matches_hashlib_across_chunks(tmp_path):
    data = bytes(range(256)) * 1000
    (tmp_path / "f").write_bytes(data)
    assert file_sha256(tmp_path / "f", chunk=777) == hashlib.sha256(data).hexdigest()
