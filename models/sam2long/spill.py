"""Disk spill for the low-res logits that wait for SAM2Long's final back-trace.

A frame's output is known only when the video ends (the best pathway is traced back from the last frame), so every
kept slot's logits must be kept until then: P x (S/4)^2 float32 per object and frame, 0.2 MiB at S=512 and P=3,
0.75 MiB at S=1024 -- hundreds of MiB on a long video. They go to one anonymous temporary file instead of RAM:
``tempfile.TemporaryFile`` is unlinked at creation (O_TMPFILE on Linux), so it never shows up in the folder and
cannot outlive the process, even a killed one. Records are fixed-size and read back with ``pread``.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


class LogitSpill:
    """Append-only store of equally shaped float32 arrays, addressed by record number."""

    def __init__(self, shape: tuple[int, ...], directory: str | os.PathLike | None = None):
        self.shape = tuple(int(s) for s in shape)
        self.nbytes = int(np.prod(self.shape)) * 4
        if directory is not None:
            Path(directory).mkdir(parents=True, exist_ok=True)
        self._file = tempfile.TemporaryFile(dir=directory, prefix=".sam2long-", suffix=".tmp")
        self._fd = self._file.fileno()
        self.records = 0

    def put(self, array) -> int:
        data = np.ascontiguousarray(np.asarray(array, dtype=np.float32).reshape(self.shape)).tobytes()
        view, offset = memoryview(data), self.records * self.nbytes
        while view:
            n = os.pwrite(self._fd, view, offset)
            view, offset = view[n:], offset + n
        self.records += 1
        return self.records - 1

    def get(self, record: int) -> np.ndarray:
        if not 0 <= record < self.records:
            raise IndexError(record)
        out = bytearray()
        while len(out) < self.nbytes:
            chunk = os.pread(self._fd, self.nbytes - len(out), record * self.nbytes + len(out))
            if not chunk:
                raise OSError(f"spill file truncated at record {record}")
            out += chunk
        return np.frombuffer(out, dtype=np.float32).reshape(self.shape).copy()

    @property
    def bytes_on_disk(self) -> int:
        return self.records * self.nbytes

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "LogitSpill":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
