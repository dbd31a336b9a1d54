"""HTTP download of one large file into a cache: resumable, hashed while streaming, never visible half-written.

The bytes go to a hidden ``.<name>.part`` file beside the destination; only a complete, checksum-verified
download is renamed onto the destination, so an interrupted or corrupted transfer can never be mistaken for a
checkpoint. An interrupted transfer keeps its ``.part`` file and the next attempt asks the server for the rest
(HTTP Range); a server that ignores the Range header gets a clean restart. A lock file serialises concurrent
downloads of the same file (e.g. several launcher workers starting at once).

Only the standard library is used (urllib), so the registry works wherever the package installs.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from data.errors import MassegError

CHUNK = 1 << 20
TIMEOUT_S = 30.0
USER_AGENT = "masseg-pipeline checkpoint fetcher"


class DownloadError(MassegError):
    """A transfer failed (network, HTTP status, short read) or its bytes did not match the expected checksum."""


@dataclass
class Fetched:
    """What :func:`fetch_file` produced: the final path and digests computed over the complete file."""

    path: Path
    size: int
    sha256: str
    md5: str
    url: str
    resumed_from: int


def partial_path(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.part")


@contextlib.contextmanager
def file_lock(dest: Path):
    """Exclusive advisory lock on ``.locks/<name>.lock`` in dest's folder (POSIX flock; released on close or on
    process death, so a killed downloader never blocks the next one)."""
    locks = dest.parent / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    lock = locks / f"{dest.name}.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _hash_existing(path: Path, hashers) -> int:
    size = 0
    with open(path, "rb") as fh:
        while True:
            block = fh.read(CHUNK)
            if not block:
                return size
            size += len(block)
            for h in hashers:
                h.update(block)


def _progress(total: int | None, initial: int, desc: str, enabled: bool | None):
    from tqdm import tqdm

    # disable=None: tqdm shows the bar only on a terminal, so logs and launcher prefixes stay clean
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
                disable=None if enabled is None else not enabled, file=sys.stderr,
                leave=False)


def fetch_file(url: str, dest: str | os.PathLike, *, check: Callable[[Fetched], None] | None = None,
               expected_size: int | None = None, progress: bool | None = None,
               timeout: float = TIMEOUT_S) -> Fetched:
    """Download ``url`` to ``dest`` (atomically). ``check`` is called with the digests of the complete file before
    the rename; if it raises, the partial file is deleted and the destination is left untouched."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = partial_path(dest)
    sha, md5 = hashlib.sha256(), hashlib.md5()
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # our partial is already complete (or longer than the file): start over
            part.unlink()
            return fetch_file(url, dest, check=check, expected_size=expected_size, progress=progress,
                              timeout=timeout)
        raise DownloadError(f"HTTP {exc.code} {exc.reason} for {url}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"cannot reach {url} ({reason})") from None

    with response:
        status = getattr(response, "status", 200)
        content_range = response.headers.get("Content-Range", "")
        if status == 206 and have and content_range.startswith(f"bytes {have}-"):
            resumed_from = _hash_existing(part, (sha, md5))
            mode = "ab"
        elif status == 206:  # a range we did not ask for: drop the partial and ask for the whole file
            part.unlink(missing_ok=True)
            return fetch_file(url, dest, check=check, expected_size=expected_size, progress=progress,
                              timeout=timeout)
        else:  # 200: the server sends the whole file (it ignored Range, or there was nothing to resume)
            resumed_from, mode = 0, "wb"
        length = response.headers.get("Content-Length")
        total = resumed_from + int(length) if length is not None else expected_size
        done = resumed_from
        bar = _progress(total, resumed_from, dest.name, progress)
        try:
            with open(part, mode) as out:
                while True:
                    try:
                        block = response.read(CHUNK)
                    except (OSError, ValueError, http.client.HTTPException) as exc:  # reset, IncompleteRead
                        raise DownloadError(f"transfer of {url} broke off after {done} bytes ({exc!r})") from None
                    if not block:
                        break
                    out.write(block)
                    sha.update(block)
                    md5.update(block)
                    done += len(block)
                    bar.update(len(block))
                out.flush()
                os.fsync(out.fileno())
        finally:
            bar.close()
    if total is not None and done != total:
        raise DownloadError(f"transfer of {url} ended after {done} of {total} bytes; the partial file is kept "
                            "and the next attempt resumes it")
    fetched = Fetched(dest, done, sha.hexdigest(), md5.hexdigest(), url, resumed_from)
    if check is not None:
        try:
            check(fetched)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
            raise
    os.replace(part, dest)
    return fetched


def file_digests(path: str | os.PathLike) -> tuple[str, str, int]:
    """(sha256, md5, size) of a file, read once."""
    sha, md5 = hashlib.sha256(), hashlib.md5()
    size = _hash_existing(Path(path), (sha, md5))
    return sha.hexdigest(), md5.hexdigest(), size
