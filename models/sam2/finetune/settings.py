"""`masseg train` config (TOML): every key checked, every problem reported at once, before any model work.

The TOML is small on purpose: it names what a person changes between fine-tuning runs. Everything else comes from
the official SAM2.1 MOSE fine-tune recipe (``sam2.1_training/sam2.1_hiera_b+_MOSE_finetune.yaml``), which
:mod:`models.sam2.finetune.hydra_config` turns into the hydra config the official trainer runs.

Schema::

    [model]   variant (str, "sam2.1_hiera_b+"), checkpoint (str, required: registry name or path),
              image_size (int, 1024: training resolution), mem_scale / mem_bias (float, 20 / -10: the memory-encoder
              mask scaling sigmoid_scale/bias_for_mem_enc, trained with the values the member uses at inference)
    [[data.train]] root (str, required: a MOSE-layout root with JPEGImages/ and Annotations/),
              list (str: a video list file, absolute or under the root; default every video folder),
              multiplier (number > 0, 1: how often each clip is repeated per epoch, the mixing ratio)
    [data]    val_root (str), val_split (str): the local validation split scored with J&F during training
    [train]   out (str, required: run folder), epochs (int, 40), batch_size (int, 1), num_frames (int, 8),
              max_objects (int, 3), workers (int, 10), lr (float, 5e-6), encoder_lr (float, 3e-6: image encoder),
              weight_decay (0.1), layer_decay (0.9), grad_clip (0.1), seed (int, 123), val_every (int, 0 = only
              after the last epoch when a val split is given), val_image_size (int, image_size),
              device ("auto"|"cpu"|"cuda"), amp (bool, true: bf16 autocast on CUDA, as the official config;
              always off on CPU), gpus (int, 1: processes per node), nodes (int, 1), threads (int, 0: torch CPU
              threads, 0 = torch's default), log_every (int, 10: official trainer log/scalar frequency in steps)
    [loss]    mask (20), dice (1), iou (1), class (1): the official MultiStepMultiMasksAndIous weights
    [augment] preset ("masseg"|"official", "masseg"): the MASSeg augmentation of models.sam2.finetune.augment (as
              `masseg data preview` shows it), or the official MOSE fine-tune YAML's transforms;
              [augment.settings] overrides the MASSeg DEFAULTS
    [slurm]   use_cluster (bool, false), partition, account, qos (str), timeout_hour (int, 24),
              cpus_per_task (int, 10), mem_gb (int, 0 = none): the official submitit launcher's settings
"""
from __future__ import annotations

import hashlib
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data.errors import MassegError

AUGMENT_PRESETS = ("official", "masseg")
DEVICES = ("auto", "cpu", "cuda")

Num = (int, float)
# key -> (types, required, default, check or None); check(value) returns a problem text or None
_pos = lambda v: None if v > 0 else "must be > 0"  # noqa: E731
_nonneg = lambda v: None if v >= 0 else "must be >= 0"  # noqa: E731
_size = lambda v: None if v > 0 and v % 32 == 0 else "must be a positive multiple of 32"  # noqa: E731

_MODEL = {"variant": (str, False, "sam2.1_hiera_b+", None), "checkpoint": (str, True, None, None),
          "image_size": (int, False, 1024, _size), "mem_scale": (Num, False, 20.0, None),
          "mem_bias": (Num, False, -10.0, None)}
_DATA = {"train": (list, True, None, None), "val_root": (str, False, "", None), "val_split": (str, False, "", None)}
_SOURCE = {"root": (str, True, None, None), "list": (str, False, "", None), "multiplier": (Num, False, 1.0, _pos)}
_TRAIN = {"out": (str, True, None, None), "epochs": (int, False, 40, _pos), "batch_size": (int, False, 1, _pos),
          "num_frames": (int, False, 8, _pos), "max_objects": (int, False, 3, _pos), "workers": (int, False, 10, _nonneg),
          "lr": (Num, False, 5.0e-6, _pos), "encoder_lr": (Num, False, 3.0e-6, _pos),
          "weight_decay": (Num, False, 0.1, _nonneg), "layer_decay": (Num, False, 0.9, _pos),
          "grad_clip": (Num, False, 0.1, _pos), "seed": (int, False, 123, _nonneg), "val_every": (int, False, 0, _nonneg),
          "val_image_size": (int, False, 0, lambda v: None if v == 0 or (v > 0 and v % 32 == 0)
                             else "must be 0 (= image_size) or a positive multiple of 32"),
          "device": (str, False, "auto", lambda v: None if v in DEVICES else f"must be one of {', '.join(DEVICES)}"),
          "amp": (bool, False, True, None), "gpus": (int, False, 1, _pos), "nodes": (int, False, 1, _pos),
          "threads": (int, False, 0, _nonneg), "log_every": (int, False, 10, _pos)}
_LOSS = {"mask": (Num, False, 20.0, _nonneg), "dice": (Num, False, 1.0, _nonneg), "iou": (Num, False, 1.0, _nonneg),
         "class": (Num, False, 1.0, _nonneg)}
_AUGMENT = {"preset": (str, False, "masseg", lambda v: None if v in AUGMENT_PRESETS
                       else f"must be one of {', '.join(AUGMENT_PRESETS)}"),
            "settings": (dict, False, None, None)}
_SLURM = {"use_cluster": (bool, False, False, None), "partition": (str, False, "", None),
          "account": (str, False, "", None), "qos": (str, False, "", None), "timeout_hour": (int, False, 24, _pos),
          "cpus_per_task": (int, False, 10, _pos), "mem_gb": (int, False, 0, _nonneg)}
_TOP = {"model": _MODEL, "data": _DATA, "train": _TRAIN, "loss": _LOSS, "augment": _AUGMENT, "slurm": _SLURM}


class TrainConfigError(MassegError):
    """One or more problems in a training config; ``problems`` lists them all (first one in the message)."""

    def __init__(self, path, problems: list[str]):
        self.problems = problems
        more = f" (and {len(problems) - 1} more: {'; '.join(problems[1:])})" if len(problems) > 1 else ""
        super().__init__(f"bad training config: {problems[0]}{more}", path,
                         "fix the key named; see configs/train_*.toml for examples")


def _tname(types) -> str:
    types = types if isinstance(types, tuple) else (types,)
    names = {int: "an integer", float: "a number", str: "a string", bool: "true/false", list: "a list",
             dict: "a table"}
    return " or ".join(dict.fromkeys(names.get(t, t.__name__) for t in types))


def _check(table: Any, schema: dict, where: str, problems: list[str]) -> dict:
    if not isinstance(table, dict):
        problems.append(f"[{where}]: expected a table")
        table = {}
    out = {}
    for key in table:
        if key not in schema:
            problems.append(f"{where}.{key}: unknown key (allowed: {', '.join(schema)})")
    for key, (types, required, default, check) in schema.items():
        out[key] = default
        if key not in table:
            if required:
                problems.append(f"{where}.{key}: missing (required)")
            continue
        value = table[key]
        if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
            problems.append(f"{where}.{key}: expected {_tname(types)}, got a boolean")
            continue
        if not isinstance(value, types):
            problems.append(f"{where}.{key}: expected {_tname(types)}, got {type(value).__name__} {value!r}")
            continue
        msg = check(value) if check is not None else None
        if msg:
            problems.append(f"{where}.{key}: {value!r} {msg}")
            continue
        out[key] = float(value) if types is Num else value
    return out


@dataclass
class Source:
    """One training root in MOSE layout and how often its clips are repeated per epoch."""

    root: Path
    list: Path | None
    multiplier: float


@dataclass
class TrainConfig:
    path: Path | None
    model: dict
    sources: list[Source]
    val_root: Path | None
    val_split: str
    train: dict
    loss: dict
    augment: dict
    slurm: dict
    raw: dict = field(repr=False, default_factory=dict)

    @property
    def out(self) -> Path:
        return Path(self.train["out"])

    @property
    def val_image_size(self) -> int:
        return self.train["val_image_size"] or self.model["image_size"]

    def fingerprint(self) -> str:
        """Identity of a run: a rerun with the same fingerprint resumes, another one is refused."""
        doc = json.dumps(self.raw, sort_keys=True, default=str)
        return hashlib.sha256(doc.encode()).hexdigest()


def _resolve(base: Path, value: str) -> Path:
    """As in experiment configs: a relative path is taken from the working directory when it exists there, else
    from the config's folder when it exists there, else from the working directory (outputs)."""
    p = Path(os.path.expanduser(value))
    if p.is_absolute() or p.exists() or not (base / p).exists():
        return p.absolute()
    return base / p


def parse_config(doc: dict, path: str | os.PathLike | None = None, base: Path | None = None) -> TrainConfig:
    """Check a parsed TOML document; relative paths: see :func:`_resolve` (``base``: the config file's folder)."""
    problems: list[str] = []
    base = base or (Path(path).resolve().parent if path else Path.cwd())
    for key in doc:
        if key not in _TOP:
            problems.append(f"[{key}]: unknown section (allowed: {', '.join(_TOP)})")
    parts = {name: _check(doc.get(name, {}), schema, name, problems) for name, schema in _TOP.items()
             if name in doc or any(v[1] for v in schema.values())}
    for name, schema in _TOP.items():
        parts.setdefault(name, {k: v[2] for k, v in schema.items()})
    sources = []
    for i, item in enumerate(parts["data"].get("train") or []):
        s = _check(item, _SOURCE, f"data.train[{i}]", problems)
        if s.get("root"):
            root = _resolve(base, s["root"])
            lst = None
            if s["list"]:
                lst = Path(os.path.expanduser(s["list"]))
                lst = lst if lst.is_absolute() else (base / lst if not (root / lst).exists() and (base / lst).exists() else root / lst)
            sources.append(Source(root, lst, s["multiplier"]))
    if "data" in doc and isinstance(doc["data"], dict) and "train" in doc["data"] and not sources and \
            not any(p.startswith("data.train") for p in problems):
        problems.append("data.train: needs at least one [[data.train]] root")
    data = parts["data"]
    if data["val_split"] and not data["val_root"]:
        problems.append("data.val_split: given without data.val_root")
    tr = parts["train"]
    if tr["val_every"] and not data["val_root"]:
        problems.append("train.val_every: validation needs data.val_root (the local validation split)")
    if problems:
        raise TrainConfigError(path, problems)
    out = _resolve(base, tr["out"])
    tr = dict(tr, out=str(out))
    return TrainConfig(path=Path(path) if path else None, model=parts["model"], sources=sources,
                       val_root=_resolve(base, data["val_root"]) if data["val_root"] else None,
                       val_split=data["val_split"], train=tr, loss=parts["loss"],
                       augment=dict(parts["augment"], settings=dict(parts["augment"]["settings"] or {})),
                       slurm=parts["slurm"], raw=doc)


def load_config(path: str | os.PathLike, overrides: dict | None = None) -> TrainConfig:
    """Read and check a training TOML. ``overrides``: {"train.out": ..., ...} applied before checking."""
    path = Path(path)
    if not path.is_file():
        raise MassegError("training config not found", path, "pass the path of a TOML file such as "
                                                             "configs/train_mose_b+.toml")
    try:
        doc = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise MassegError(f"not valid TOML ({exc})", path, "fix the syntax at the line named") from None
    for dotted, value in (overrides or {}).items():
        section, key = dotted.split(".", 1)
        if isinstance(doc.get(section), dict) or section not in doc:
            doc.setdefault(section, {})[key] = value
    return parse_config(doc, path)
