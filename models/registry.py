"""The model registry: every segmenter family declared once, everything else derived from the declaration.

A family (``sam2``, ``cutie``, ...) declares in one :class:`ModelFamily`: its options (name, type, default, help,
allowed values and a check), its input-size rule (``image_size``: default and check), which checkpoint family of
the checkpoint registry it takes, the recipe kind its logits are stored with (``data.recipes``), and how to build
its segmenter (a function taking a :class:`BuildRequest`). The experiment config schema
(``pipeline.config``), the member spec check and the launchers' builder (``pipeline.launch``) and the options of
``masseg infer`` / ``masseg launch-infer`` are all computed from these declarations, so a new model is one
declaration module plus its segmenter code, and an unknown model name is always an error listing the known ones.

Where declarations come from (``families()`` loads them once, in this order):

* every module of the ``models.members`` package (one small module per family, e.g. ``models/members/sam2.py``,
  defining ``FAMILY``); these modules must stay cheap to import (no torch at import time: the CLI's ``--help``
  and config checks read them), so the builder imports the model code lazily;
* the modules named in ``$MASSEG_MODELS`` (comma-separated; they call :func:`register` or define ``FAMILY``), and
  the ``masseg.models`` entry point group: models outside this repository; launcher worker processes inherit the
  environment, so they see the same models;
* :func:`register` at run time (tests, notebooks).
"""
from __future__ import annotations

import importlib
import os
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from data.errors import MassegError

ENV_VAR = "MASSEG_MODELS"
ENTRY_POINT_GROUP = "masseg.models"
OPTION_TYPES = (str, int, float, bool)


class UnknownModelError(MassegError):
    """A model name that no family declares."""


def _type_name(t: type) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true/false"}[t]


@dataclass(frozen=True)
class Option:
    """One model option: the config key, the spec key and (dashes for underscores) the CLI flag ``--<name>``.

    ``default`` None means unset: then ``from_checkpoint`` (a field of the checkpoint registry entry, e.g. the
    SAM2 config of ``sam2.1_hiera_large``) supplies it, or the segmenter's own default applies; ``required``
    makes an option that stays unset a config problem. ``check(value)`` returns a problem text or None."""

    name: str
    type: type
    default: Any = None
    help: str = ""
    choices: tuple | None = None
    check: Callable[[Any], str | None] | None = None
    from_checkpoint: str | None = None
    required: bool = False
    aliases: tuple[str, ...] = ()      # extra CLI flags (old names kept working), e.g. ("--config",)

    def __post_init__(self):
        if self.type not in OPTION_TYPES:
            raise TypeError(f"option {self.name}: type must be one of str, int, float, bool")

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable (None when it is)."""
        if self.type is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif self.type is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, self.type)
        if not ok:
            got = "a boolean" if isinstance(value, bool) else f"{type(value).__name__} {value!r}"
            return f"expected {_type_name(self.type)}, got {got}"
        if self.choices is not None and value not in self.choices:
            return f"{value!r} is not one of {', '.join(map(repr, self.choices))}"
        return self.check(value) if self.check is not None else None

    def convert(self, value: Any) -> Any:
        return float(value) if self.type is float and value is not None else value


@dataclass(frozen=True)
class ImageSize:
    """A family's input-size rule. ``default`` is an int or a function of the (filled-in) options, e.g. Cutie's
    preset; ``check(size)`` returns a problem text or None."""

    default: int | Callable[[Mapping[str, Any]], int]
    help: str
    check: Callable[[int], str | None] | None = None

    def default_for(self, options: Mapping[str, Any]) -> int:
        return int(self.default(options)) if callable(self.default) else int(self.default)

    def problem(self, size: Any) -> str | None:
        if not isinstance(size, int) or isinstance(size, bool):
            return f"expected an integer, got {type(size).__name__} {size!r}"
        return self.check(size) if self.check is not None else (None if size > 0 else "must be positive")


@dataclass(frozen=True)
class BuildRequest:
    """Everything a builder gets: the resolved checkpoint file, the options with defaults filled (including
    those taken from the checkpoint entry), and the run-wide settings."""

    checkpoint: Path
    options: Mapping[str, Any]
    image_size: int | None
    flip: bool = False
    device: str = "auto"
    objects_from: str = "auto"


@dataclass(frozen=True)
class ModelFamily:
    """One segmenter family, declared once (see the module docstring)."""

    name: str
    help: str
    checkpoint_family: str          # the family of `pipeline.registry` entries this model takes ("sam2", "cutie")
    recipe_kind: str                # data.recipes kind of its stored logits
    image_size: ImageSize
    build: Callable[[BuildRequest], Any]
    options: tuple[Option, ...] = ()
    example_checkpoint: str = ""    # shown in errors and help
    summary: str = ""               # one line for tables and --help
    # (options, checkpoint entry fields) -> problems, e.g. a SAM2 variant that is not the checkpoint's
    consistency: Callable[[Mapping[str, Any], Mapping[str, Any]], list[str]] | None = None
    # (options, device as configured: "auto", "cpu", "cuda", "cuda:N") -> problems, e.g. a CUDA-only option on CPU
    device_check: Callable[[Mapping[str, Any], str], list[str]] | None = None

    def __post_init__(self):
        if not self.name or not all(c.isalnum() or c in "-_" for c in self.name):
            raise ValueError(f"model family name {self.name!r}: letters, digits, '-' and '_' only")
        names = [o.name for o in self.options]
        if len(set(names)) != len(names):
            raise ValueError(f"model family {self.name}: an option is declared twice")

    def option(self, name: str) -> Option | None:
        return next((o for o in self.options if o.name == name), None)

    @property
    def option_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.options)

    def check_options(self, values: Mapping[str, Any], checkpoint_info: Mapping[str, Any] | None = None,
                      where: str = "", require: bool = True) -> tuple[dict, list[str]]:
        """Options with defaults filled, and every problem (``where.key: text``): unknown keys, wrong types,
        values outside the allowed set or failing the family's check, required options left unset.

        ``checkpoint_info``: the checkpoint registry entry's fields (empty for a file outside the registry);
        unset options with ``from_checkpoint`` take their value from it."""
        prefix = f"{where}." if where else ""
        problems = []
        for key in values:
            if self.option(key) is None:
                allowed = ", ".join(self.option_names) or "none"
                problems.append(f"{prefix}{key}: not an option of model {self.name} (its options: {allowed})")
        out = {}
        info = checkpoint_info or {}
        for opt in self.options:
            value = values.get(opt.name)
            if value is None and opt.from_checkpoint and info.get(opt.from_checkpoint) is not None:
                value = info[opt.from_checkpoint]
            if value is None:
                value = opt.default
            if value is None:
                if opt.required and require:
                    problems.append(f"{prefix}{opt.name}: not set, and the checkpoint does not name one "
                                    f"(a file outside the checkpoint registry): set {opt.name}")
                out[opt.name] = None
                continue
            text = opt.problem(value)
            if text:
                problems.append(f"{prefix}{opt.name}: {text}")
                out[opt.name] = opt.default
                continue
            out[opt.name] = opt.convert(value)
        if info and not problems:
            if info.get("family") not in (None, self.checkpoint_family):
                problems.append(f"{prefix}checkpoint: {info.get('name')} is a {info.get('family')} checkpoint; "
                                f"model {self.name} takes {self.checkpoint_family} checkpoints"
                                + (f" (e.g. {self.example_checkpoint})" if self.example_checkpoint else ""))
            elif self.consistency is not None:
                problems.extend(f"{prefix}{p}" for p in self.consistency(out, info))
        return out, problems

    def check_device(self, options: Mapping[str, Any], device: str | None, where: str = "") -> list[str]:
        if self.device_check is None or not device:
            return []
        prefix = f"{where}." if where else ""
        return [f"{prefix}{p}" for p in self.device_check(options, str(device))]

    def check_image_size(self, size: Any, where: str = "image_size") -> list[str]:
        text = self.image_size.problem(size)
        return [f"{where}: {self.name} {text}"] if text else []


# ---- the registry -------------------------------------------------------------------------------------------
_FAMILIES: dict[str, ModelFamily] = {}
_LOADED = False


def register(family: ModelFamily, replace: bool = False) -> ModelFamily:
    """Add a family (``replace`` to redefine one, e.g. in a test). Returns it, so a module may write
    ``FAMILY = register(ModelFamily(...))``."""
    _load()
    if family.name in _FAMILIES and not replace and _FAMILIES[family.name] is not family:
        raise ValueError(f"model family {family.name!r} is already registered")
    _FAMILIES[family.name] = family
    return family


def unregister(name: str) -> None:
    _FAMILIES.pop(name, None)


def _add_module(module) -> None:
    fam = getattr(module, "FAMILY", None)
    if isinstance(fam, ModelFamily):
        _FAMILIES.setdefault(fam.name, fam)


def _load() -> None:
    """Import the declarations once (built-in members, $MASSEG_MODELS, entry points)."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import models.members as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        _add_module(importlib.import_module(f"{pkg.__name__}.{info.name}"))
    for name in [m.strip() for m in os.environ.get(ENV_VAR, "").split(",") if m.strip()]:
        try:
            _add_module(importlib.import_module(name))
        except ImportError as exc:
            raise MassegError(f"cannot import model module {name!r} named in ${ENV_VAR} ({exc})",
                              fix=f"fix or unset {ENV_VAR}") from None
    try:
        from importlib.metadata import entry_points
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            obj = ep.load()
            if isinstance(obj, ModelFamily):
                _FAMILIES.setdefault(obj.name, obj)
            else:
                _add_module(obj)
    except Exception as exc:  # a broken third-party plugin must not take the built-in models down
        raise MassegError(f"a '{ENTRY_POINT_GROUP}' entry point failed to load ({type(exc).__name__}: {exc})",
                          fix="fix or uninstall the package that declares it") from None


def families() -> dict[str, ModelFamily]:
    """Every registered family by name (built-in ones first, in name order)."""
    _load()
    return dict(_FAMILIES)


def names() -> tuple[str, ...]:
    return tuple(families())


def get(name: str) -> ModelFamily:
    """The family called ``name``; :class:`UnknownModelError` listing the known ones otherwise."""
    fams = families()
    fam = fams.get(name) if isinstance(name, str) else None
    if fam is None:
        raise UnknownModelError(f"unknown model {name!r}", fix=f"known models: {', '.join(fams)}")
    return fam


def unknown_model_problem(name: Any) -> str:
    return f"unknown model {name!r} (known models: {', '.join(names())})"
