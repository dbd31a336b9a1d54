"""The MOSE+ assembly config (TOML), checked completely before any file is read.

Schema (see ``configs/moseplus.toml``)::

    seed (int, 0)            tie-breaks between equally difficult clips
    target_fps (float, 0)    annotated frames are subsampled towards this rate (0: keep all)
    max_frames (int, 0)      longer clips are cut into segments of at most this many frames (0: no cut)
    min_frames (int, 1)      shorter clips / tail segments are dropped
    jpeg_quality (int, 95)   for frames that are not JPEG already (JPEGs are copied byte for byte)
    [val]       split (str): the local validation list (`masseg split --out`); root (str): the dataset it
                lists, whose frames are hashed so that no copy of them is admitted
    [selection] thresholds (stats.DEFAULT_SELECTION)
    [[sources]] name, format (png|youtubevos|lvos|sav|ovis|burst), paths (root / annotations / frames / meta /
                split), select ("difficult"|"all"), quota (int, 0 = no limit), prefix (str, "<name>_"),
                fps (annotated-frame rate), ann_every (sav), masklets (sav: "manual"|"auto"),
                max_frames / min_frames overrides, [sources.selection] threshold overrides
"""
from __future__ import annotations

import os
import tomllib
from pathlib import Path

from ..errors import MassegError
from .sources import DEFAULT_FPS, FORMATS
from .stats import DEFAULT_SELECTION


class MosePlusConfigError(MassegError):
    def __init__(self, path, problems: list[str]):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) in the config: " + "; ".join(problems), path,
                         "fix those keys; see configs/moseplus.toml")


_TOP = {"seed": int, "target_fps": (int, float), "max_frames": int, "min_frames": int, "jpeg_quality": int}
_TOP_DEFAULTS = {"seed": 0, "target_fps": 0.0, "max_frames": 0, "min_frames": 1, "jpeg_quality": 95}
_PATH_KEYS = ("root", "annotations", "frames", "meta", "split")
_NEEDS = {"png": ("root",), "youtubevos": ("root",), "lvos": ("root",), "sav": ("root", "frames"),
          "ovis": ("annotations", "frames"), "burst": ("annotations", "frames")}
_SOURCE_KEYS = {"name", "format", "select", "quota", "prefix", "fps", "ann_every", "masklets", "max_frames",
                "min_frames", "selection", *_PATH_KEYS}


def _resolve(base: Path, value: str) -> str:
    p = Path(value).expanduser()
    if p.is_absolute() or p.exists():
        return str(p)
    q = base / p
    return str(q) if q.exists() else str(p)


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_selection(sel, where: str, problems: list[str]) -> dict:
    if not isinstance(sel, dict):
        problems.append(f"{where} must be a table")
        return {}
    for k, v in sel.items():
        if k not in DEFAULT_SELECTION:
            problems.append(f"{where}.{k}: unknown threshold (known: {', '.join(DEFAULT_SELECTION)})")
        elif not _num(v) or v < 0:
            problems.append(f"{where}.{k} must be a number >= 0")
    return dict(sel)


def load_config(path: str | os.PathLike) -> dict:
    """Parse and check; returns a plain dict with defaults filled and paths resolved."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise MassegError("config not found", path, "pass an existing TOML file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise MosePlusConfigError(path, [f"not valid TOML: {exc}"]) from None
    return check_config(raw, path)


def check_config(raw: dict, path: str | os.PathLike | None = None) -> dict:
    base = Path(path).resolve().parent if path is not None else Path.cwd()
    problems: list[str] = []
    cfg: dict = dict(_TOP_DEFAULTS)
    for k, v in raw.items():
        if k in _TOP:
            if not isinstance(v, _TOP[k]) or isinstance(v, bool) or v < 0:
                problems.append(f"{k} must be a number >= 0")
            else:
                cfg[k] = v
        elif k not in ("val", "selection", "sources", "augment"):
            problems.append(f"{k}: unknown key")
    if not 1 <= cfg["jpeg_quality"] <= 100:
        problems.append("jpeg_quality must be in 1..100")
    if cfg["min_frames"] < 1:
        problems.append("min_frames must be >= 1")
    cfg["target_fps"] = float(cfg["target_fps"])
    val = raw.get("val", {})
    cfg["val"] = {"split": None, "root": None}
    if not isinstance(val, dict):
        problems.append("[val] must be a table")
    else:
        for k, v in val.items():
            if k not in ("split", "root"):
                problems.append(f"val.{k}: unknown key (split, root)")
            elif not isinstance(v, str):
                problems.append(f"val.{k} must be a path")
            else:
                cfg["val"][k] = _resolve(base, v)
        if cfg["val"]["split"] is None:
            problems.append("val.split is required: the local validation list (masseg split --out), "
                            "so that none of its clips is trained on")
        elif not Path(cfg["val"]["split"]).is_file():
            problems.append(f"val.split: {cfg['val']['split']} not found")
        if cfg["val"]["root"] is not None and not Path(cfg["val"]["root"]).is_dir():
            problems.append(f"val.root: {cfg['val']['root']} not found")
    cfg["selection"] = {**DEFAULT_SELECTION, **_check_selection(raw.get("selection", {}), "selection", problems)}
    sources = raw.get("sources")
    cfg["sources"] = []
    if not isinstance(sources, list) or not sources:
        problems.append("[[sources]] is required (MOSE train and the extra datasets)")
        sources = []
    names = set()
    for i, s in enumerate(sources):
        where = f"sources[{i}]"
        if not isinstance(s, dict):
            problems.append(f"{where} must be a table")
            continue
        for k in s:
            if k not in _SOURCE_KEYS:
                problems.append(f"{where}.{k}: unknown key")
        name, fmt = s.get("name"), s.get("format")
        if not isinstance(name, str) or not name:
            problems.append(f"{where}.name is required")
            name = f"source{i}"
        elif name in names:
            problems.append(f"{where}.name {name!r} is used twice")
        names.add(name)
        where = f"sources[{i}] ({name})"
        if fmt not in FORMATS:
            problems.append(f"{where}.format must be one of {', '.join(FORMATS)}")
            continue
        src = {"name": name, "format": fmt, "select": s.get("select", "difficult"), "quota": s.get("quota", 0),
               "prefix": s.get("prefix", f"{name}_"), "fps": s.get("fps", DEFAULT_FPS.get(fmt)),
               "max_frames": s.get("max_frames", cfg["max_frames"]),
               "min_frames": s.get("min_frames", cfg["min_frames"])}
        if src["select"] not in ("difficult", "all"):
            problems.append(f"{where}.select must be 'difficult' or 'all'")
        for k in ("quota", "max_frames", "min_frames"):
            if not isinstance(src[k], int) or isinstance(src[k], bool) or src[k] < 0:
                problems.append(f"{where}.{k} must be an integer >= 0")
        if not isinstance(src["prefix"], str):
            problems.append(f"{where}.prefix must be a string")
        if src["fps"] is not None and (not _num(src["fps"]) or src["fps"] <= 0):
            problems.append(f"{where}.fps must be > 0")
        if cfg["target_fps"] and src["fps"] is None and fmt != "burst":
            problems.append(f"{where}.fps (its annotated-frame rate) is needed to subsample to target_fps")
        if fmt == "sav":
            src["ann_every"] = s.get("ann_every", 4)
            src["masklets"] = s.get("masklets", "manual")
            if not isinstance(src["ann_every"], int) or src["ann_every"] < 1:
                problems.append(f"{where}.ann_every must be an integer >= 1")
            if src["masklets"] not in ("manual", "auto"):
                problems.append(f"{where}.masklets must be 'manual' or 'auto'")
        for k in _PATH_KEYS:
            if k in s:
                if not isinstance(s[k], str):
                    problems.append(f"{where}.{k} must be a path")
                else:
                    src[k] = _resolve(base, s[k])
        for k in _NEEDS[fmt]:
            if k not in src:
                problems.append(f"{where}.{k} is required for format {fmt}")
            elif not Path(src[k]).exists():
                problems.append(f"{where}.{k}: {src[k]} not found")
        src["selection"] = {**cfg["selection"],
                            **_check_selection(s.get("selection", {}), f"{where}.selection", problems)}
        cfg["sources"].append(src)
    if problems:
        raise MosePlusConfigError(path, problems)
    return cfg
