"""Progress bars for the long commands: one tqdm style everywhere, on stderr, so stdout stays the result.

Bars show on a terminal and stay quiet in logs and pipes (tqdm's own TTY check); ``MASSEG_PROGRESS=1`` forces
them on (the tests read them), ``MASSEG_PROGRESS=0`` turns them off.
"""
from __future__ import annotations

import os
import sys
from typing import Iterable


def enabled() -> bool | None:
    """tqdm's ``disable`` argument: True (off), False (on) or None (on only when stderr is a terminal)."""
    flag = os.environ.get("MASSEG_PROGRESS", "").strip().lower()
    if flag in ("1", "true", "yes", "on"):
        return False
    if flag in ("0", "false", "no", "off"):
        return True
    return None


def progress(iterable: Iterable | None = None, desc: str = "", total: int | None = None, unit: str = "it",
             leave: bool = False):
    """A tqdm bar over ``iterable`` (or a manual one with ``total``), on stderr."""
    from tqdm import tqdm
    return tqdm(iterable, desc=desc, total=total, unit=unit, leave=leave, file=sys.stderr, disable=enabled(),
                dynamic_ncols=True, mininterval=0.2)
