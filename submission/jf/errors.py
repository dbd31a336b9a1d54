"""The evaluator's user-facing error: bad input is reported once, naming the file and the fix."""
from __future__ import annotations

from data.errors import MassegError


class EvaluationError(MassegError):
    """Ground truth or predictions cannot be scored as given (missing video or frame, size mismatch, unknown
    object id, empty split, inconsistent meta.json)."""
