"""The evaluator's user-facing error: bad input is reported once, naming the file and the fix."""
from __future__ import annotations

from data.errors import MassegError


class EvaluationError(MassegError):
    """Ground truth or predictions cannot be scored as given (missing video or frame, size mismatch, unknown
    object id, empty split, inconsistent meta.json)."""

    def __init__(self, message: str, path=None, fix: str | None = None):
        self._parts = (message, path, fix)
        super().__init__(message, path, fix)

    def __reduce__(self):
        # raised in worker processes: keep path and fix (not just the text) when joblib sends it back
        return (self.__class__, self._parts)
