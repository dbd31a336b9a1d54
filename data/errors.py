"""Error types that carry the offending path and the fix, so every CLI can print one clear line."""
from __future__ import annotations

import os


class MassegError(Exception):
    """Base class for user-facing errors: the message names the file and tells the user what to do."""

    def __init__(self, message: str, path: str | os.PathLike | None = None, fix: str | None = None):
        self.path = None if path is None else os.fspath(path)
        self.fix = fix
        text = message
        if self.path is not None and self.path not in message:
            text = f"{self.path}: {message}"
        if fix:
            text = f"{text} (fix: {fix})"
        super().__init__(text)


class DatasetError(MassegError):
    """The dataset root, split list or a frame/annotation file is missing or malformed."""


class LabelFormatError(MassegError):
    """A label PNG has a mode or values the challenge servers would not score correctly."""


class StoreError(MassegError):
    """A logit store is missing, incomplete, inconsistent or was written by incompatible code."""
