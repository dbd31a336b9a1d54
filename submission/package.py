"""Byte-identical submission zips: the same entries give the same bytes on any machine, in any folder.

What would otherwise vary is pinned: entry timestamps (1980-01-01, the zip epoch), creator system and
permission bits, compression (stored: the PNGs are already deflated, and storing avoids differences between
zlib builds), and entry order (callers add entries in sorted order; :class:`DeterministicZip` refuses any
other). The layout mirrors ``zip -r`` (a folder entry before its files), the form the MOSE/DAVIS servers accept.
The zip is built under a temp name and renamed into place only once complete and checked.
"""
from __future__ import annotations

import contextlib
import os
import zipfile
from pathlib import Path
from typing import Callable

from data.atomic import atomic_path

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644
DIR_MODE = 0o040755
UNIX = 3


def entry_key(name: str) -> tuple[str, ...]:
    """Sort key of an entry: path components, so 'a/' and its files come before 'a-b/' (plain string sort
    would interleave them, '-' < '/')."""
    return tuple(name.rstrip("/").split("/"))


class DeterministicZip:
    """Append-only zip writer with pinned metadata; entries must come in :func:`entry_key` order."""

    def __init__(self, fileobj):
        self._zf = zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
        self._last: tuple[str, ...] | None = None
        self.count = 0

    def _info(self, name: str, mode: int) -> zipfile.ZipInfo:
        key = entry_key(name)
        if self._last is not None and key <= self._last:
            raise ValueError(f"zip entries must be added in sorted order: {name!r} after {'/'.join(self._last)!r}")
        self._last = key
        info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
        info.compress_type = zipfile.ZIP_STORED
        info.create_system = UNIX
        info.external_attr = mode << 16
        return info

    def add_dir(self, name: str) -> None:
        info = self._info(name.rstrip("/") + "/", DIR_MODE)
        info.external_attr |= 0x10  # MS-DOS directory flag, as zip -r sets it
        self._zf.writestr(info, b"")
        self.count += 1

    def add_file(self, name: str, data: bytes) -> None:
        self._zf.writestr(self._info(name, FILE_MODE), data)
        self.count += 1

    def close(self) -> None:
        self._zf.close()


@contextlib.contextmanager
def building_zip(dest: str | os.PathLike, check: Callable[[Path], None] | None = None):
    """Yield a DeterministicZip that becomes ``dest`` only if the body and ``check(temp_path)`` (run on the
    closed zip) both succeed; otherwise the temp file is removed and ``dest`` is left as it was."""
    with atomic_path(Path(dest)) as tmp:
        with open(tmp, "wb") as fh:
            zw = DeterministicZip(fh)
            try:
                yield zw
            finally:
                zw.close()  # also on failure, so the ZipFile never flushes into a closed file later
        if check is not None:
            check(tmp)
