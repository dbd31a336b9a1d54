"""Atomic file writes: readers never see a partial file, a killed writer leaves only a temp file behind."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, fsync: bool = False):
    """Yield a temp path in dest's folder; on success rename it over dest, on error remove it."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, dest)
        if fsync:
            _fsync_dir(dest.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(dest: str | os.PathLike, data: bytes, fsync: bool = False) -> None:
    with atomic_path(dest, fsync=fsync) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(dest: str | os.PathLike, text: str, fsync: bool = False) -> None:
    atomic_write_bytes(dest, text.encode("utf-8"), fsync=fsync)


def remove_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Delete the temp files of atomic writes that were killed (``.<name>.<random>.tmp``, never read by anyone)
    anywhere under ``folder``. Safe only when no writer is running there."""
    gone = []
    for p in Path(folder).rglob(".*.tmp"):
        if p.is_file():
            p.unlink(missing_ok=True)
            gone.append(p)
    return gone
