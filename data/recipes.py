"""Logit recipes: how a member's stored native-resolution logits map to video resolution, as typed objects.

Why here: the models write recipes, the store records them (as JSON in each video's index), the ensemble reads
them, and ``models`` and ``ensemble`` may not import each other. So the one definition of each recipe kind (its
fields, their types and their checks) lives in the core layer; the *mapping* itself (the arithmetic of each
kind) stays in the ensemble, which dispatches on the recipe's class.

Kinds (``RECIPES`` maps the ``kind`` string stored in the index to its class):

* :class:`Sam2Bilinear` (``"sam2_bilinear"``): objects are independent sigmoid logits at SxS/4; bilinear
  (align_corners=False) straight to ``video_hw``, SAM2's non-overlap clamp, ``logit > 0``.
* :class:`CutieStride4` (``"cutie_stride4"``): per-object stride-4 logits of the padded internal frame; Cutie's
  soft aggregation, bilinear x4, softmax, unpad, the resize chain (see ``models/cutie/recipe.py``).

A new kind is one dataclass here (``KIND``, ``REQUIRED``, its fields and ``_fields_from``, listed in ``RECIPES``)
plus one mapping in ``ensemble/recipes.py`` (``MAPPINGS``); ``as_recipe`` then accepts it everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Mapping, Sequence

from .errors import StoreError


class RecipeError(StoreError):
    """A recipe that is not one of the known kinds, or whose fields are missing or malformed."""


def _hw(value, key: str) -> tuple[int, int]:
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
        raise ValueError(f"{key} must be [height, width] of positive integers, got {value!r}")
    return int(value[0]), int(value[1])


def _bool(value, key: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true/false, got {value!r}")
    return value


@dataclass(frozen=True)
class Recipe:
    """Base of every recipe kind: the video size the logits map to and whether they come from a mirrored frame."""

    KIND: ClassVar[str] = ""
    REQUIRED: ClassVar[tuple[str, ...]] = ("video_hw",)    # keys its dict form must hold (the rest defaults)
    video_hw: tuple[int, int]
    hflip: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in a video's index (plain lists, ints and bools)."""
        out: dict[str, Any] = {"kind": self.KIND}
        for f in fields(self):
            name, value = f.name, getattr(self, f.name)
            if isinstance(value, tuple):
                value = [list(v) if isinstance(v, tuple) else v for v in value]
            out[name] = value
        return out

    @classmethod
    def _fields_from(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        return {"video_hw": _hw(d["video_hw"], "video_hw"), "hflip": _bool(d.get("hflip", False), "hflip")}


@dataclass(frozen=True)
class Sam2Bilinear(Recipe):
    """SAM2's low-res (S/4) object logits, bilinear straight to ``video_hw``."""

    KIND: ClassVar[str] = "sam2_bilinear"


@dataclass(frozen=True)
class CutieStride4(Recipe):
    """Cutie's stride-4 logits of the padded internal frame (``pad`` = left, right, top, bottom)."""

    KIND: ClassVar[str] = "cutie_stride4"
    REQUIRED: ClassVar[tuple[str, ...]] = ("video_hw", "padded_hw", "pad")
    padded_hw: tuple[int, int] = (16, 16)
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)
    internal_hw: tuple[int, int] = (16, 16)
    resize_hw: tuple[tuple[int, int], ...] = field(default_factory=tuple)   # empty: one resize to video_hw
    flip_aug: bool = False            # two passes in one frame (Cutie's own flip_aug): (2, N, h4, w4) logits
    source: str = "network"           # network | mask | network+mask | none (see models/cutie/recipe.py)

    SOURCES: ClassVar[tuple[str, ...]] = ("network", "mask", "network+mask", "none")
    PAD_MULTIPLE: ClassVar[int] = 16

    def __post_init__(self):
        hp, wp = self.padded_hw
        if hp % self.PAD_MULTIPLE or wp % self.PAD_MULTIPLE:
            raise ValueError(f"padded_hw must be multiples of {self.PAD_MULTIPLE}, got {list(self.padded_hw)}")
        left, right, top, bottom = self.pad
        if [hp - top - bottom, wp - left - right] != list(self.internal_hw):
            raise ValueError(f"internal_hw {list(self.internal_hw)} is not padded_hw {list(self.padded_hw)} "
                             f"less pad {list(self.pad)}")
        if self.source not in self.SOURCES:
            raise ValueError(f"source must be one of {', '.join(self.SOURCES)}, got {self.source!r}")

    @classmethod
    def make(cls, padded_hw: Sequence[int], pad: Sequence[int], resize_hw: Sequence[Sequence[int]] = (),
             hflip: bool = False, flip_aug: bool = False, source: str = "network") -> "CutieStride4":
        """internal_hw and video_hw derived from the padding and the resize chain."""
        hp, wp = (int(v) for v in padded_hw)
        left, right, top, bottom = (int(v) for v in pad)
        internal = (hp - top - bottom, wp - left - right)
        chain = tuple((int(h), int(w)) for h, w in resize_hw)
        return cls(video_hw=chain[-1] if chain else internal, hflip=bool(hflip), padded_hw=(hp, wp),
                   pad=(left, right, top, bottom), internal_hw=internal, resize_hw=chain, flip_aug=bool(flip_aug),
                   source=source)

    @classmethod
    def _fields_from(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        out = super()._fields_from(d)
        padded = _hw(d["padded_hw"], "padded_hw")
        pad = d["pad"]
        if (not isinstance(pad, (list, tuple)) or len(pad) != 4
                or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in pad)):
            raise ValueError(f"pad must be [left, right, top, bottom] of integers >= 0, got {pad!r}")
        pad = tuple(int(v) for v in pad)
        internal = d.get("internal_hw")
        internal = _hw(internal, "internal_hw") if internal is not None else (
            padded[0] - pad[2] - pad[3], padded[1] - pad[0] - pad[1])
        chain = d.get("resize_hw") or []
        if not isinstance(chain, (list, tuple)):
            raise ValueError(f"resize_hw must be a list of [height, width], got {chain!r}")
        return dict(out, padded_hw=padded, pad=pad, internal_hw=internal,
                    resize_hw=tuple(_hw(hw, "resize_hw[]") for hw in chain),
                    flip_aug=_bool(d.get("flip_aug", False), "flip_aug"), source=d.get("source", "network"))


RECIPES: dict[str, type[Recipe]] = {cls.KIND: cls for cls in (Sam2Bilinear, CutieStride4)}
KINDS = tuple(RECIPES)


def from_dict(d: Mapping[str, Any], where=None) -> Recipe:
    """The typed recipe of a stored dict; :class:`RecipeError` (naming ``where``, e.g. the store file) if the kind
    is unknown or a field is missing or malformed."""
    kind = d.get("kind") if isinstance(d, Mapping) else None
    cls = RECIPES.get(kind)
    if cls is None:
        raise RecipeError(f"unknown logit recipe kind {kind!r}", where,
                          f"known kinds: {', '.join(KINDS)}; re-run inference with a current stage")
    missing = [k for k in cls.REQUIRED if k not in d]
    if missing:
        raise RecipeError(f"{kind} recipe lacks {', '.join(missing)}", where, "re-run inference for this video")
    try:
        return cls(**cls._fields_from(d))
    except (ValueError, TypeError) as exc:
        raise RecipeError(f"malformed {kind} recipe: {exc}", where, "re-run inference for this video") from None


def as_recipe(obj: Recipe | Mapping[str, Any], where=None) -> Recipe:
    """A typed recipe from either form (segmenters may return either; the store holds dicts)."""
    return obj if isinstance(obj, Recipe) else from_dict(obj, where)
