"""Shipped experiment configs by name, so `masseg run mose_masseg` and `masseg demo` work from any folder.

The TOML files live in the checkout's ``configs/``; an installed wheel carries them as data files under
``<prefix>/share/masseg/configs`` (setup.cfg ``data_files``). ``$MASSEG_CONFIG_DIR`` is searched first, so a
team can keep its own named configs. A path that exists always wins over a name.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from data.errors import MassegError


def config_dirs() -> list[Path]:
    """Folders searched for a config name, in order."""
    dirs = []
    if os.environ.get("MASSEG_CONFIG_DIR"):
        dirs.append(Path(os.environ["MASSEG_CONFIG_DIR"]))
    dirs.append(Path(__file__).resolve().parent.parent / "configs")  # a checkout / editable install
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):       # a wheel's data files
        dirs.append(Path(prefix) / "share" / "masseg" / "configs")
    return [d for d in dirs if d.is_dir()]


def shipped_names() -> list[str]:
    return sorted({p.stem for d in config_dirs() for p in d.glob("*.toml")})


def find_config(value: str | os.PathLike) -> Path:
    """An existing file, else a shipped config name (``mose_masseg``, ``configs/demo.toml``, ``demo.toml``)."""
    path = Path(value)
    if path.is_file():
        return path
    name = path.name[:-5] if path.name.endswith(".toml") else path.name
    for folder in config_dirs():
        candidate = folder / f"{name}.toml"
        if candidate.is_file():
            return candidate
    raise MassegError("config not found", path,
                      f"pass a TOML file or a shipped name ({', '.join(shipped_names()) or 'none installed'})")
