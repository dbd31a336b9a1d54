"""The fusion config: which member stores to fuse, with what weight and output scaling, in which mode.

TOML schema (version 1); ``masseg fuse --config`` reads it, ``masseg sweep`` writes its best setting in it, and
experiment configs may embed the same keys as a table (``FusionConfig.from_dict(table, base_dir)``)::

    version = 1                 # optional; this schema
    mode = "soft"               # "soft": weighted mean of probability maps, then argmax
                                # "majority": weighted plurality vote of the groups' label maps

    [[members]]                 # one per member: a logit store (one model at one scale, flipped or not) ...
    store = "stores/sam2_l"     # a relative path is resolved against the TOML file's folder
                                # ... or a folder of another tool's label PNGs (XMem, DeAOT, a teammate's run):
    # png = "xmem/valid"        #   <video>/<frame>.png, or a masseg run folder (its labels/); exactly one of
                                #   store / png (see ensemble/pngs.py)
    # confidence = 1.0          # png only, in (0.5, 1]: soft voting sees p = confidence on the PNG's label and
                                #   (1 - confidence) / (C - 1) on the frame's C - 1 other channels; 1 = one-hot
    name = "sam2_l"             # optional, unique; default: the store (or PNG) folder's name
    weight = 1.0                # >= 0; 0 leaves the member out
    scale = 1.0                 # > 0 \\ MASSeg output scaling p = sigmoid(scale * logit + bias);
    bias = 0.0                  #     / scale 1, bias 0 = the model's own output (store members only)
    group = "sam2"              # optional; members of one group (scales/flips of one model) are merged first
                                # by their weighted mean; the group then takes part with the sum of its weights
    optional = false            # true: where this member lacks a video or frame it is left out there;
                                # false: that is an error

Weights need not sum to one; only ratios matter. A PNG member votes like any other member (majority voting:
its labels are its vote; soft voting: its one-hot map softened by ``confidence``) and may be optional or in a
group.
"""
from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

from data.atomic import atomic_write_text

from . import tomlwrite
from .errors import FusionConfigError
from .pngs import DEFAULT_CONFIDENCE, PNG_KIND, STORE_KIND, check_confidence, is_store

SCHEMA_VERSION = 1
MODES = ("soft", "majority")
MEMBER_KEYS = ("name", "store", "png", "confidence", "weight", "scale", "bias", "group", "optional")
TOP_KEYS = ("version", "mode", "members")


@dataclass(frozen=True)
class MemberSpec:
    """One member and how it takes part in the fusion: a logit store (``kind="store"``) or a folder of another
    tool's label PNGs (``kind="png"``, see :mod:`ensemble.pngs`); ``store`` is the member's folder either way."""

    name: str
    store: Path
    weight: float = 1.0
    scale: float = 1.0
    bias: float = 0.0
    group: str = ""
    optional: bool = False
    kind: str = STORE_KIND
    confidence: float = DEFAULT_CONFIDENCE

    @property
    def is_png(self) -> bool:
        return self.kind == PNG_KIND

    @property
    def group_name(self) -> str:
        """The group this member is merged in (its own name when it has none)."""
        return self.group or self.name

    @property
    def identity_scaling(self) -> bool:
        return self.scale == 1.0 and self.bias == 0.0


@dataclass(frozen=True)
class FusionConfig:
    members: tuple[MemberSpec, ...]
    mode: str = "soft"
    source: Path | None = field(default=None, compare=False)   # the file it was read from, for messages

    def __post_init__(self):
        _validate(self)

    # ---- structure -------------------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [m.name for m in self.members]

    def member(self, name: str) -> MemberSpec:
        for m in self.members:
            if m.name == name:
                return m
        raise FusionConfigError(f"no member named {name!r} (members: {', '.join(self.names)})", self.source)

    def groups(self) -> dict[str, list[MemberSpec]]:
        """Group name -> its members, in the order groups first appear (that order breaks majority ties)."""
        out: dict[str, list[MemberSpec]] = {}
        for m in self.members:
            out.setdefault(m.group_name, []).append(m)
        return out

    @property
    def png_names(self) -> list[str]:
        """Members that are PNG folders (no logits: output scaling does not apply to them)."""
        return [m.name for m in self.members if m.is_png]

    def active(self) -> list[MemberSpec]:
        """Members with a positive weight (the others are not even opened)."""
        return [m for m in self.members if m.weight > 0]

    def with_settings(self, mode: str | None = None, weights: Mapping[str, float] | None = None,
                      scales: Mapping[str, float] | None = None,
                      biases: Mapping[str, float] | None = None) -> "FusionConfig":
        """A copy with some members' weight/scale/bias (by name) or the mode replaced."""
        for mapping in (weights, scales, biases):
            for name in (mapping or {}):
                self.member(name)
        members = tuple(replace(m, weight=float((weights or {}).get(m.name, m.weight)),
                                scale=float((scales or {}).get(m.name, m.scale)),
                                bias=float((biases or {}).get(m.name, m.bias))) for m in self.members)
        return FusionConfig(members, mode or self.mode, self.source)

    # ---- dict / TOML -----------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], base_dir: str | os.PathLike | None = None,
                  source: str | os.PathLike | None = None) -> "FusionConfig":
        """Build from the schema's keys; relative store paths are resolved against ``base_dir``."""
        where = source
        if not isinstance(doc, Mapping):
            raise FusionConfigError("a fusion config must be a table", where)
        unknown = sorted(set(doc) - set(TOP_KEYS))
        if unknown:
            raise FusionConfigError(f"unknown key(s) {', '.join(unknown)}", where,
                                    f"allowed top-level keys: {', '.join(TOP_KEYS)}")
        version = doc.get("version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise FusionConfigError(f"fusion config version {version!r} is not supported", where,
                                    f"this code reads version {SCHEMA_VERSION}")
        raw = doc.get("members")
        if not isinstance(raw, list) or not raw:
            raise FusionConfigError("no members", where, "add one [[members]] table per member store")
        base = Path(base_dir) if base_dir is not None else None
        members = [_member_from_dict(i, m, base, where) for i, m in enumerate(raw)]
        return cls(tuple(members), _mode(doc.get("mode", "soft"), where), Path(source) if source else None)

    def to_dict(self, relative_to: str | os.PathLike | None = None) -> dict[str, Any]:
        """The schema's keys; store paths relative to ``relative_to`` when given (else as stored)."""
        members = []
        for m in self.members:
            store = str(m.store)
            if relative_to is not None:
                store = os.path.relpath(os.path.abspath(m.store), os.path.abspath(relative_to))
            if m.is_png:
                d: dict[str, Any] = {"name": m.name, "png": store, "confidence": float(m.confidence),
                                     "weight": float(m.weight)}
            else:
                d = {"name": m.name, "store": store, "weight": float(m.weight), "scale": float(m.scale),
                     "bias": float(m.bias)}
            if m.group:
                d["group"] = m.group
            d["optional"] = bool(m.optional)
            members.append(d)
        return {"version": SCHEMA_VERSION, "mode": self.mode, "members": members}

    def to_toml(self, relative_to: str | os.PathLike | None = None, comment: str = "") -> str:
        header = "masseg fusion config (schema in ensemble/config.py)"
        if comment:
            header += "\n" + comment
        return tomlwrite.dumps(self.to_dict(relative_to), header=header)

    def save(self, path: str | os.PathLike, comment: str = "") -> None:
        """Write atomically as TOML, store paths relative to the file's folder (so the run folder can move)."""
        path = Path(path)
        atomic_write_text(path, self.to_toml(relative_to=path.parent, comment=comment))


def load_config(path: str | os.PathLike) -> FusionConfig:
    """Read a fusion config TOML file (relative store paths are relative to the file)."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise FusionConfigError("fusion config not found", path, "pass an existing TOML file") from None
    except UnicodeDecodeError:
        raise FusionConfigError("not a text file", path, "pass the fusion config TOML (e.g. a sweep's best.toml)") \
            from None
    except tomllib.TOMLDecodeError as exc:
        raise FusionConfigError(f"invalid TOML ({exc})", path) from None
    return FusionConfig.from_dict(doc, base_dir=path.parent, source=path)


def config_from_stores(stores: Iterable[str | os.PathLike], weights: Iterable[float] | None = None,
                       mode: str = "soft", confidence: float = DEFAULT_CONFIDENCE) -> FusionConfig:
    """Quick config for the CLI's ``--member`` form: one member per folder, equal weights unless given. A folder
    with a ``manifest.json`` is a logit store; any other folder is read as a PNG member with ``confidence``."""
    stores = [Path(s) for s in stores]
    weights = list(weights) if weights is not None else [1.0] * len(stores)
    if len(weights) != len(stores):
        raise FusionConfigError(f"{len(weights)} weights for {len(stores)} members", None,
                                "give one weight per member, in member order")
    members = []
    for s, w in zip(stores, weights):
        if not s.is_dir():
            raise FusionConfigError("member folder not found", s,
                                    "pass a logit store (masseg infer --out) or a folder of <video>/<frame>.png")
        if is_store(s):
            members.append({"store": str(s), "weight": float(w)})
        else:
            members.append({"png": str(s), "weight": float(w), "confidence": confidence})
    return FusionConfig.from_dict({"mode": mode, "members": members})


# ---- validation ----------------------------------------------------------------------------------------------
def _mode(mode, where) -> str:
    if mode not in MODES:
        raise FusionConfigError(f"unknown mode {mode!r}", where, f"use one of {', '.join(MODES)}")
    return mode


def _number(d, key, default, where, label) -> float:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise FusionConfigError(f"{label}: {key} must be a finite number, got {v!r}", where)
    return float(v)


def _member_from_dict(i: int, d, base: Path | None, where) -> MemberSpec:
    label = f"members[{i}]"
    if not isinstance(d, Mapping):
        raise FusionConfigError(f"{label} must be a table", where)
    unknown = sorted(set(d) - set(MEMBER_KEYS))
    if unknown:
        raise FusionConfigError(f"{label}: unknown key(s) {', '.join(unknown)}", where,
                                f"allowed keys: {', '.join(MEMBER_KEYS)}")
    kind = PNG_KIND if "png" in d else STORE_KIND
    if "png" in d and "store" in d:
        raise FusionConfigError(f"{label}: give either store (a logit store) or png (a folder of label PNGs), "
                                "not both", where)
    store = d.get(kind)
    if not isinstance(store, str) or not store:
        raise FusionConfigError(f"{label}: {kind} must be a non-empty path string", where,
                                "store = \"<logit store>\" or png = \"<folder of <video>/<frame>.png>\"")
    confidence = d.get("confidence", DEFAULT_CONFIDENCE)
    if kind == PNG_KIND:
        for key in ("scale", "bias"):
            if key in d:
                raise FusionConfigError(f"{label}: {key} does not apply to a PNG member (it has no logits)", where,
                                        "drop it; use confidence to set how much its label weighs in soft voting")
        problem = check_confidence(confidence)
        if problem:
            raise FusionConfigError(f"{label}: {problem}", where)
    elif "confidence" in d:
        raise FusionConfigError(f"{label}: confidence applies to PNG members only", where,
                                "use scale/bias for a logit store")
    path = Path(store)
    if base is not None and not path.is_absolute():
        path = base / path
    name = d.get("name", Path(store.rstrip("/\\")).name)
    group = d.get("group", "")
    optional = d.get("optional", False)
    if not isinstance(name, str) or not name:
        raise FusionConfigError(f"{label}: name must be a non-empty string", where)
    if not isinstance(group, str):
        raise FusionConfigError(f"{label}: group must be a string", where)
    if not isinstance(optional, bool):
        raise FusionConfigError(f"{label}: optional must be true or false", where)
    return MemberSpec(name=name, store=path, weight=_number(d, "weight", 1.0, where, label),
                      scale=_number(d, "scale", 1.0, where, label), bias=_number(d, "bias", 0.0, where, label),
                      group=group, optional=optional, kind=kind, confidence=float(confidence))


def _validate(cfg: FusionConfig) -> None:
    where = cfg.source
    _mode(cfg.mode, where)
    if not cfg.members:
        raise FusionConfigError("no members", where, "add one [[members]] table per member store")
    seen: set[str] = set()
    for m in cfg.members:
        if m.name in seen:
            raise FusionConfigError(f"member name {m.name!r} is used twice", where,
                                    "give each member a distinct name = \"...\"")
        seen.add(m.name)
        if m.weight < 0 or not math.isfinite(m.weight):
            raise FusionConfigError(f"member {m.name!r}: weight must be >= 0, got {m.weight}", where)
        if not (m.scale > 0) or not math.isfinite(m.scale):
            raise FusionConfigError(f"member {m.name!r}: scale must be > 0, got {m.scale}", where,
                                    "a non-positive scale would invert or erase the model's decision")
        if not math.isfinite(m.bias):
            raise FusionConfigError(f"member {m.name!r}: bias must be finite, got {m.bias}", where)
        if m.kind not in (STORE_KIND, PNG_KIND):
            raise FusionConfigError(f"member {m.name!r}: unknown kind {m.kind!r}", where)
        if m.is_png:
            problem = check_confidence(m.confidence)
            if problem:
                raise FusionConfigError(f"member {m.name!r}: {problem}", where)
            if not m.identity_scaling:
                raise FusionConfigError(f"member {m.name!r}: a PNG member has no logits, so scale/bias do not "
                                        f"apply (got scale {m.scale:g}, bias {m.bias:g})", where,
                                        "leave them out (a sweep's --scale '*=...' skips PNG members)")
    if not any(m.weight > 0 for m in cfg.members):
        raise FusionConfigError("every member has weight 0", where, "give at least one member a positive weight")
