"""A small TOML writer for flat configs (the standard library reads TOML but cannot write it).

Handles what fusion configs need: top-level scalars, top-level tables of scalars and arrays of tables of
scalars (``[[members]]``), plus lists of scalars. Output is read back identically by ``tomllib``.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else _string(k)


def _string(s: str) -> str:
    # JSON string escapes (\" \\ \n \t \uXXXX ...) are all valid TOML basic-string escapes.
    return json.dumps(s, ensure_ascii=False)


def scalar(v: Any) -> str:
    """One TOML value; floats keep full precision (repr round-trips)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            raise ValueError(f"refusing to write non-finite float {v!r} to TOML")
        text = repr(v)
        return text if any(ch in text for ch in ".en") else text + ".0"
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(scalar(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} as a TOML scalar")


def dumps(doc: dict[str, Any], header: str = "") -> str:
    """Serialise ``doc``: scalars first, then ``[table]``s, then ``[[array-of-tables]]``."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    tables, arrays = [], []
    for k, v in doc.items():
        if v is None:
            continue
        if isinstance(v, dict):
            tables.append((k, v))
        elif isinstance(v, (list, tuple)) and v and all(isinstance(x, dict) for x in v):
            arrays.append((k, v))
        else:
            lines.append(f"{_key(k)} = {scalar(v)}")
    for k, table in tables:
        lines += ["", f"[{_key(k)}]"]
        lines += [f"{_key(kk)} = {scalar(vv)}" for kk, vv in table.items() if vv is not None]
    for k, items in arrays:
        for item in items:
            lines += ["", f"[[{_key(k)}]]"]
            lines += [f"{_key(kk)} = {scalar(vv)}" for kk, vv in item.items() if vv is not None]
    return "\n".join(lines) + "\n"
