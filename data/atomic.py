"""Atomic file writes: readers never see a partial file, a killed writer leaves only a temp file behind.

Files are created with the user's umask (``mkstemp`` makes them 0600, unreadable to teammates on shared
storage), and a failed write (disk full, read-only folder) becomes one :class:`MassegError` naming the file.
"""
from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from .errors import MassegError

# errno -> the fix a person can apply
_WRITE_FIXES = {
    errno.ENOSPC: "free disk space (or write to another disk) and rerun; finished files are kept",
    errno.EDQUOT: "free space in your quota (or write elsewhere) and rerun",
    errno.EROFS: "the file system is read-only: choose an output folder on a writable disk",
    errno.EACCES: "make the folder writable for you (chmod u+w) or choose another output folder",
    errno.EPERM: "make the folder writable for you (chmod u+w) or choose another output folder",
    errno.ENOTDIR: "a path component is a regular file: remove it or choose another output path",
    errno.EEXIST: "a path component is a regular file: remove it or choose another output path",
}

WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (``os.umask`` sets while it reads, which
    would race with other threads creating files)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """0666 filtered by the process umask: the mode ``open()`` would have given a new file."""
    return 0o666 & ~_umask()


def write_error(exc: OSError, path: str | os.PathLike) -> MassegError:
    """One clear error for an OSError raised while writing ``path``."""
    what = exc.strerror or type(exc).__name__
    return MassegError(f"cannot write ({what})", path,
                       _WRITE_FIXES.get(exc.errno, "check the output path and free space, then rerun"))


def check_writable(path: str | os.PathLike, what: str = "output folder", is_dir: bool = True) -> Path:
    """Fail early (before a model is loaded) when ``path`` cannot be created or written.

    ``path`` is a folder (``is_dir``) or a file to be created; its nearest existing ancestor must be a
    writable folder, and an existing ``path`` must be of the right kind."""
    path = Path(path)
    if path.exists():
        if is_dir != path.is_dir():
            kind = "a regular file" if is_dir else "a folder"
            raise MassegError(f"{what} is {kind}", path, "remove it or choose another path")
        target = path if is_dir else path.parent
    else:
        target = path.parent
        while not target.exists() and target != target.parent:
            target = target.parent
        if not target.is_dir():
            raise MassegError(f"{what} would be inside {target}, which is a regular file", path,
                              "remove that file or choose another output path")
    if not os.access(target, os.W_OK | os.X_OK):
        raise MassegError(f"{target} is not writable, so the {what} cannot be written there", path,
                          "make it writable (chmod u+w) or choose another output path")
    return path


def make_output_dir(path: str | os.PathLike, what: str = "output folder", option: str = "--out") -> Path:
    """Create an output folder now (before any decoding or model work) and say plainly, naming ``option`` in the
    fix, when it cannot be created or written. Unlike :func:`check_writable` it leaves the folder made."""
    path = Path(path)
    for parent in [path, *path.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise MassegError(f"{parent} is a file, not a folder", path, f"choose another {option}")
            break
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MassegError(f"cannot create the {what} ({exc.strerror})", path, f"choose another {option}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise MassegError(f"{what} is not writable", path, f"choose another {option} or fix its permissions")
    return path


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
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
        os.fchmod(fd, file_mode())
        os.close(fd)
    except (FileExistsError, NotADirectoryError, PermissionError) as exc:
        raise write_error(exc, dest) from None
    try:
        try:
            yield Path(tmp)
        except OSError as exc:
            if exc.errno in _WRITE_FIXES:
                raise write_error(exc, dest) from None
            raise
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
