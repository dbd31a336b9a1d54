"""Errors of the ensemble: a fusion config or sweep spec that cannot be used (the message names the fix)."""
from __future__ import annotations

from data.errors import MassegError


class FusionConfigError(MassegError):
    """A fusion config (TOML or dict) or a sweep specification is malformed or inconsistent."""
