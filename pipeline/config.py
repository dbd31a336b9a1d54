"""Experiment configs (TOML): parsed and checked completely before any work starts.

An experiment names the data, the members (model, checkpoint, input sizes, flip, model options), the fusion and
the run folder. Every problem is collected with the offending key (``member[1].image_size``) and reported at
once, before any work starts, so a typo does not surface after an hour of inference. What a member may hold
comes from the model registry (:mod:`models.registry`): unknown models, options a model does not take, values
its declaration refuses (a SAM2 size that is not a multiple of 32, an unknown variant or preset) and checkpoints
of another model family are all config problems. See ``configs/*.toml`` for examples.

Schema::

    [run]     out (str, required), device ("auto"), launcher ("inline"|"local"|"ray"), workers (int >= 1),
              address (str, ray), codec ("q16"|"q8"|"f16"|"f32"), zip (str, default <out>/submission.zip),
              threads (int: torch CPU threads per process; 0 = torch's default. CPU results can differ in the
              last bits between thread counts, so pin it where runs must be bit-reproducible)
    [data]    root (str, required), split (str), objects_from ("auto"|"first_frame"|"appearance"),
              protocol ("davis"|"mosev2"|"vos-benchmark"|"none"), palette_from_dataset (bool)
    [[member]] name (str, required, unique), model (str, required: a registered model, see `masseg infer
              --help`), checkpoint (str, required: registry name or path), image_size (int or list of int: the
              model input size, one store per size; default: the model's), flip (bool), optional (bool), and the
              model's own options, declared in its registry entry (models/members/<model>.py):
              sam2: variant (str: sam2.1_hiera_t/s/b+/l..., default the registry checkpoint's), mem_scale
              (float), mem_bias (float), vos_optimized (bool); image_size a multiple of 32 (default 1024)
              cutie: size ("small"|"base"), preset ("mose"|"davis"|"mose_plus"|"davis_plus"|"generic"|
              "long_video"); image_size is the shorter side the frames are resized to (default: the preset's,
              480 for mose/davis, 720 for the plus presets, 0 = native size for generic/long_video)
              `scales` (list of int) is the old name of image_size: still read, with a warning
    [fusion]  mode ("soft"|"majority"), best (str: a `masseg sweep` best.toml; its members are matched to this
              experiment's stores by store name, and their weights/scaling/mode win),
              [fusion.members.<name>] weight (float >= 0), scale (float), bias (float);
              a table with png = "<folder>" instead names a PNG member (another tool's <video>/<frame>.png, see
              ensemble/pngs.py; not a model, nothing is inferred for it): weight, confidence (in (0.5, 1]),
              optional (bool)
    [sweep]   optional, needs ground truth on every frame: weights (list of "simplex:STEP" or "w1,w2,..." in
              store order, PNG members last in their [fusion.members] order), modes (list), scale / bias (lists of "STORE=VALUES", STORE may be *); the best
              setting found becomes the fusion of this run
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data.errors import MassegError

PROTOCOLS = ("davis", "mosev2", "vos-benchmark", "none")
CODECS = ("q16", "q8", "f16", "f32")


class ConfigError(MassegError):
    """One or more problems in an experiment config; ``problems`` lists them all."""

    def __init__(self, path, problems: list[str]):
        self.problems = problems
        text = f"{len(problems)} problem{'' if len(problems) == 1 else 's'} in the config:\n" + "\n".join(f"  - {p}" for p in problems)
        super().__init__(text, path, "fix the keys listed above; see configs/*.toml for examples")


# key -> (types, required, default, allowed values or None)
_RUN = {"out": (str, True, None, None), "device": (str, False, "auto", None),
        "launcher": (str, False, "inline", ("inline", "local", "ray")), "workers": (int, False, 1, None),
        "address": (str, False, "", None), "codec": (str, False, "q16", CODECS), "zip": (str, False, "", None),
        "threads": (int, False, 0, None), "layout": (str, False, "root", ("root", "annotations-root"))}
_DATA = {"root": (str, True, None, None), "split": (str, False, "", None),
         "objects_from": (str, False, "auto", ("auto", "first_frame", "appearance")),
         "protocol": (str, False, "davis", PROTOCOLS), "palette_from_dataset": (bool, False, True, None),
         "frames_root": (str, False, "", None)}
_MEMBER_COMMON = {"name": (str, True, None, None), "model": (str, True, None, None),
                  "checkpoint": (str, True, None, None), "image_size": ((int, list), False, None, None),
                  "scales": (list, False, None, None), "flip": (bool, False, False, None),
                  "optional": (bool, False, False, None)}
_FUSION = {"mode": (str, False, "soft", ("soft", "majority")), "best": (str, False, "", None),
           "members": (dict, False, None, None)}
_SWEEP = {"weights": (list, False, None, None), "modes": (list, False, None, None),
          "scale": (list, False, None, None), "bias": (list, False, None, None)}
_FUSION_MEMBER = {"weight": ((int, float), False, 1.0, None), "scale": ((int, float), False, 1.0, None),
                  "bias": ((int, float), False, 0.0, None)}
_FUSION_PNG = {"png": (str, True, None, None), "weight": ((int, float), False, 1.0, None),
               "confidence": ((int, float), False, 1.0, None), "optional": (bool, False, False, None)}


def _check_table(table: Any, schema: dict, where: str, problems: list[str]) -> dict:
    if not isinstance(table, dict):
        problems.append(f"{where}: expected a table")
        return {}
    out = {}
    for key in table:
        if key not in schema:
            problems.append(f"{where}.{key}: unknown key (allowed: {', '.join(schema)})")
    for key, (types, required, default, allowed) in schema.items():
        out[key] = default  # kept when the value is missing or wrong, so later checks can go on
        if key not in table:
            if required:
                problems.append(f"{where}.{key}: missing (required)")
            continue
        value = table[key]
        if isinstance(value, bool) and types is not bool and bool not in (types if isinstance(types, tuple) else ()):
            problems.append(f"{where}.{key}: expected {_tname(types)}, got a boolean")
            continue
        if not isinstance(value, types):
            problems.append(f"{where}.{key}: expected {_tname(types)}, got {type(value).__name__} {value!r}")
            continue
        if allowed is not None and value not in allowed:
            problems.append(f"{where}.{key}: {value!r} is not one of {', '.join(map(repr, allowed))}")
            continue
        out[key] = float(value) if types == (int, float) else value
    return out


def _tname(types) -> str:
    types = types if isinstance(types, tuple) else (types,)
    names = {int: "an integer", float: "a number", str: "a string", bool: "true/false", list: "a list",
             dict: "a table"}
    return " or ".join(names.get(t, t.__name__) for t in types)


@dataclass
class Member:
    """One configured model; expands into one store per (scale, flip)."""

    name: str
    model: str
    checkpoint: str
    image_sizes: list[int]
    flip: bool
    optional: bool
    options: dict = field(default_factory=dict)

    def runs(self) -> list["MemberRun"]:
        flips = [False, True] if self.flip else [False]
        return [MemberRun(self, s, f) for s in self.image_sizes for f in flips]


@dataclass
class MemberRun:
    """One store: a member at one input size, flipped or not (store ``<name>-s<image_size>[-flip]``)."""

    member: Member
    image_size: int
    flip: bool

    @property
    def store_name(self) -> str:
        return f"{self.member.name}-s{self.image_size}{'-flip' if self.flip else ''}"


@dataclass
class Experiment:
    path: Path
    raw: dict
    run: dict
    data: dict
    members: list[Member]
    fusion: dict
    sweep: dict | None = None
    warnings: list[str] = field(default_factory=list)   # accepted, but worth saying (e.g. an old key name)

    @property
    def out(self) -> Path:
        return Path(self.run["out"])

    def member_runs(self) -> list[MemberRun]:
        return [r for m in self.members for r in m.runs()]


def _resolve(base: Path, value: str) -> str:
    """Relative paths in a config are relative to the working directory if they exist there, else to the config."""
    if not value or os.path.isabs(value) or Path(value).exists():
        return value
    alt = base / value
    return str(alt) if alt.exists() else value


def _png_member(name: str, table: dict, models: set, base: Path, check_files: bool, problems: list[str]) -> dict:
    """``[fusion.members.<name>] png = ...``: another tool's label PNGs as a fusion member (ensemble.pngs)."""
    from ensemble.pngs import check_confidence
    where = f"fusion.members.{name}"
    if name in models:
        problems.append(f"{where}.png: {name!r} is a [[member]] (a model); give the PNG member its own name")
    vals = _check_table(table, _FUSION_PNG, where, problems)
    problem = check_confidence(vals["confidence"])
    if problem:
        problems.append(f"{where}.confidence: {problem}")
    if vals.get("weight") is not None and vals["weight"] < 0:
        problems.append(f"{where}.weight: must be >= 0")
    if vals.get("png"):
        vals["png"] = _resolve(base, vals["png"])
        if check_files and not Path(vals["png"]).is_dir():
            problems.append(f"{where}.png: folder {vals['png']!r} not found (a folder of <video>/<frame>.png)")
    return vals


def load_experiment(path: str | os.PathLike, overrides: dict | None = None, check_files: bool = True,
                    resolve_checkpoint=None) -> Experiment:
    """Parse and validate. ``resolve_checkpoint(name)`` may check that a checkpoint name or path is known."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise MassegError("config not found", path, "pass an existing TOML file, e.g. configs/mose_masseg.toml") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [f"not valid TOML: {exc}"]) from None
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {}).update(values)
    problems: list[str] = []
    for key in raw:
        if key not in ("run", "data", "member", "fusion", "sweep"):
            problems.append(f"{key}: unknown section (allowed: run, data, member, fusion, sweep)")
    run = _check_table(raw.get("run", {}), _RUN, "run", problems)
    data = _check_table(raw.get("data", {}), _DATA, "data", problems)
    fusion = _check_table(raw.get("fusion", {}), _FUSION, "fusion", problems)
    if isinstance(run.get("workers"), int) and run["workers"] < 1:
        problems.append("run.workers: must be >= 1")
    if isinstance(run.get("threads"), int) and run["threads"] < 0:
        problems.append("run.threads: must be >= 0 (0 = torch's default)")
    base = path.parent
    if data.get("root"):
        data["root"] = _resolve(base, data["root"])
        if check_files and not Path(data["root"]).is_dir():
            problems.append(f"data.root: folder {data['root']!r} not found")
    if data.get("split"):
        data["split"] = _resolve(base, data["split"])
    if data.get("frames_root"):  # the benchmark's sparse frame list (YouTube-VOS valid/ for a valid_all_frames root)
        data["frames_root"] = _resolve(base, data["frames_root"])
        if check_files and not Path(data["frames_root"]).is_dir():
            problems.append(f"data.frames_root: folder {data['frames_root']!r} not found")
    members: list[Member] = []
    raw_members = raw.get("member", [])
    if not isinstance(raw_members, list) or not raw_members:
        problems.append("member: at least one [[member]] table is required")
        raw_members = []
    seen = set()
    warnings: list[str] = []
    for i, m in enumerate(raw_members):
        member = _check_member(m, f"member[{i}]", base, check_files, resolve_checkpoint, seen, problems, warnings,
                               run.get("device"))
        if member is not None:
            members.append(member)
    fmembers = fusion.get("members") or {}
    resolved_fm = {}
    for name, table in fmembers.items():
        if isinstance(table, dict) and "png" in table:     # a PNG member: fused, never inferred
            resolved_fm[name] = _png_member(name, table, seen, base, check_files, problems)
            continue
        if name not in seen:
            problems.append(f"fusion.members.{name}: no member of that name (members: {', '.join(sorted(seen))}; "
                            "a PNG member needs png = \"<folder>\")")
        resolved_fm[name] = _check_table(table, _FUSION_MEMBER, f"fusion.members.{name}", problems)
        if resolved_fm[name].get("weight") is not None and resolved_fm[name]["weight"] < 0:
            problems.append(f"fusion.members.{name}.weight: must be >= 0")
    fusion["members"] = resolved_fm
    if fusion.get("best"):
        fusion["best"] = _resolve(base, fusion["best"])
        if check_files and not Path(fusion["best"]).is_file():
            problems.append(f"fusion.best: file {fusion['best']!r} not found (run `masseg sweep` first or remove it)")
    sweep = None
    if "sweep" in raw:
        sweep = _check_table(raw["sweep"], _SWEEP, "sweep", problems)
        for key, value in sweep.items():
            if value is not None and not all(isinstance(v, str) for v in value):
                problems.append(f"sweep.{key}: expected a list of strings, got {value!r}")
        if sweep.get("modes") and not set(sweep["modes"]) <= {"soft", "majority"}:
            problems.append(f"sweep.modes: {sweep['modes']!r} may hold only 'soft' and 'majority'")
        if data.get("protocol") == "none":
            problems.append("sweep: needs a J&F protocol in data.protocol (the sweep ranks settings by J&F)")
        if fusion.get("best"):
            problems.append("sweep: cannot be combined with fusion.best (the sweep writes the best setting)")
    if run.get("launcher") == "ray" and not run.get("address"):
        problems.append("run.address: required with launcher = 'ray' (e.g. 'auto' or 'ray://host:10001')")
    if problems:
        raise ConfigError(path, problems)
    return Experiment(path, raw, run, data, members, fusion, sweep, warnings)


def _image_sizes(vals: dict, where: str, problems: list[str], warnings: list[str]) -> tuple[list | None, str]:
    """The member's input sizes as a list (None: the model's default) and the key they were given under."""
    sizes, key = vals.get("image_size"), "image_size"
    if vals.get("scales") is not None:
        if sizes is not None:
            problems.append(f"{where}.scales: old name of image_size; give only image_size")
            return None, key
        sizes, key = vals["scales"], "scales"
        warnings.append(f"{where}.scales: renamed image_size (one name for the input size everywhere); "
                        "`scales` is still read")
    if sizes is None:
        return None, key
    sizes = [sizes] if isinstance(sizes, int) and not isinstance(sizes, bool) else sizes
    if not sizes or not all(isinstance(s, int) and not isinstance(s, bool) for s in sizes):
        problems.append(f"{where}.{key}: expected an integer or a non-empty list of integers, got {sizes!r}")
        return None, key
    if len(set(sizes)) != len(sizes):
        problems.append(f"{where}.{key}: {sizes!r} lists a size twice")
    return list(sizes), key


def _check_member(m: Any, where: str, base: Path, check_files: bool, resolve_checkpoint, seen: set,
                  problems: list[str], warnings: list[str], device: str | None = None) -> Member | None:
    """One [[member]] table: the common keys here, the model's own options and input-size rule from its registry
    declaration (through pipeline.members.check_member, which the launch spec uses too)."""
    from .members import check_member

    if not isinstance(m, dict):
        problems.append(f"{where}: expected a table")
        return None
    vals = _check_table({k: v for k, v in m.items() if k in _MEMBER_COMMON}, _MEMBER_COMMON, where, problems)
    model = m.get("model")
    name = vals.get("name")
    if name:
        if name in seen:
            problems.append(f"{where}.name: {name!r} used twice")
        seen.add(name)
        if not all(c.isalnum() or c in "-_." for c in name):
            problems.append(f"{where}.name: {name!r} may only hold letters, digits, '-', '_' and '.'")
    ckpt = vals.get("checkpoint")
    if ckpt:
        vals["checkpoint"] = _resolve(base, ckpt)
        if check_files and resolve_checkpoint is not None:
            err = resolve_checkpoint(vals["checkpoint"])
            if err:
                problems.append(f"{where}.checkpoint: {err}")
    sizes, size_key = _image_sizes(vals, where, problems, warnings)
    if not isinstance(model, str):
        return None  # "model: missing" / "expected a string" is already reported
    options = {k: v for k, v in m.items() if k not in _MEMBER_COMMON}
    fam, opts, _, more = check_member(model, vals.get("checkpoint"), options, None, where, device=device)
    problems.extend(more)
    if fam is None:
        return None
    if sizes is None:
        sizes = [fam.image_size.default_for(opts)]
    for s in sizes:
        problems.extend(fam.check_image_size(s, f"{where}.{size_key}"))
    if not name:
        return None
    return Member(name, fam.name, vals["checkpoint"] or "", sizes, vals["flip"], vals["optional"], opts)
