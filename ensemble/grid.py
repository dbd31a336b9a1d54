"""Fusion settings to compare: weight grids over the simplex, explicit weights, per-member scale/bias ranges.

A :class:`Setting` is one complete choice (mode, and per member weight, scale, bias, in config order); the
sweep evaluates a list of them and writes the best one back as a fusion config.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from .config import FusionConfig
from .errors import FusionConfigError
from .voting import GroupUse, MemberUse


@dataclass(frozen=True)
class Setting:
    mode: str
    weights: tuple[float, ...]
    scales: tuple[float, ...]
    biases: tuple[float, ...]

    def groups(self, config: FusionConfig) -> tuple[GroupUse, ...]:
        """The config's groups with this setting's numbers (member order = config order)."""
        index = {m.name: i for i, m in enumerate(config.members)}
        return tuple(GroupUse(g, tuple(MemberUse(m.name, self.weights[index[m.name]], self.scales[index[m.name]],
                                                 self.biases[index[m.name]]) for m in ms))
                     for g, ms in config.groups().items())

    def config(self, base: FusionConfig) -> FusionConfig:
        names = base.names
        return base.with_settings(self.mode, dict(zip(names, self.weights)), dict(zip(names, self.scales)),
                                  dict(zip(names, self.biases)))

    def columns(self, names: Sequence[str]) -> dict:
        """Flat description for tables: mode, w_<member>, scale_<member>, bias_<member>."""
        out: dict = {"mode": self.mode}
        out.update({f"w_{n}": w for n, w in zip(names, self.weights)})
        out.update({f"scale_{n}": s for n, s in zip(names, self.scales)})
        out.update({f"bias_{n}": b for n, b in zip(names, self.biases)})
        return out

    def describe(self, names: Sequence[str]) -> str:
        parts = [self.mode, "w=" + "/".join(f"{w:g}" for w in self.weights)]
        for n, s, b in zip(names, self.scales, self.biases):
            if s != 1.0 or b != 0.0:
                parts.append(f"{n}:s{s:g}b{b:+g}")
        return " ".join(parts)


def simplex_grid(n: int, step: float) -> list[tuple[float, ...]]:
    """All weight vectors of ``n`` members with weights in multiples of ``step`` summing to 1 (vertices
    included: each member alone). ``1/step`` must be an integer."""
    if n < 1:
        raise FusionConfigError("a weight grid needs at least one member")
    k = round(1.0 / step) if step > 0 else 0
    if k < 1 or not math.isclose(k * step, 1.0, rel_tol=1e-9, abs_tol=1e-12):
        raise FusionConfigError(f"simplex step {step!r} must divide 1 (e.g. 0.5, 0.25, 0.2, 0.1)")
    out = []
    for cut in itertools.combinations(range(k + n - 1), n - 1):       # stars and bars
        parts, prev = [], -1
        for c in cut + (k + n - 1,):
            parts.append(c - prev - 1)
            prev = c
        out.append(tuple(p / k for p in parts))
    return sorted(out, reverse=True)


def parse_values(text: str) -> list[float]:
    """``"1,2,4"`` or an inclusive range ``"start:stop:step"`` (e.g. ``"-2:2:0.5"``)."""
    text = text.strip()
    try:
        if ":" in text:
            a, b, s = (float(x) for x in text.split(":"))
            if s <= 0 or b < a:
                raise ValueError
            n = int(math.floor((b - a) / s + 1e-9)) + 1
            return [round(a + i * s, 12) for i in range(n)]
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise FusionConfigError(f"cannot read values {text!r}", None,
                                "use a comma list (1,2,4) or an inclusive range start:stop:step") from None


def parse_member_values(items: Iterable[str], names: Sequence[str], what: str,
                        skip: Sequence[str] = ()) -> dict[str, list[float]]:
    """``["sam2=1,2", "cutie=0.5:1.5:0.5"]`` -> {member: values}; ``*=...`` applies to every member but those in
    ``skip`` (PNG members: they have no logits to scale), which may not be named either."""
    out: dict[str, list[float]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep:
            raise FusionConfigError(f"--{what} {item!r}: expected MEMBER=VALUES", None,
                                    f"e.g. --{what} {names[0]}=1,2,4 (or *=... for every member)")
        targets = [n for n in names if n not in skip] if name.strip() == "*" else [name.strip()]
        for t in targets:
            if t in skip:
                raise FusionConfigError(f"--{what}: member {t!r} is a PNG member: it has no logits, so output "
                                        "scaling does not apply to it", None, "sweep its weight instead")
            if t not in names:
                raise FusionConfigError(f"--{what}: no member named {t!r}", None,
                                        f"members: {', '.join(names)}")
            out[t] = parse_values(values)
    return out


def parse_weights(text: str, n: int) -> list[tuple[float, ...]]:
    """``"simplex:0.1"`` -> the grid; ``"0.5,0.3,0.2"`` -> one explicit vector of ``n`` weights."""
    text = text.strip()
    if text.startswith("simplex:"):
        return simplex_grid(n, float(text.split(":", 1)[1]))
    vals = parse_values(text)
    if len(vals) != n or ":" in text:
        raise FusionConfigError(f"weights {text!r}: need {n} comma-separated weights (one per member, in "
                                "config order) or simplex:STEP")
    if any(v < 0 for v in vals) or not any(v > 0 for v in vals):
        raise FusionConfigError(f"weights {text!r}: weights must be >= 0 with at least one > 0")
    return [tuple(vals)]


def make_settings(config: FusionConfig, modes: Sequence[str] | None = None,
                  weights: Sequence[tuple[float, ...]] | None = None,
                  scales: Mapping[str, Sequence[float]] | None = None,
                  biases: Mapping[str, Sequence[float]] | None = None) -> list[Setting]:
    """The product of modes x weight vectors x per-member scale values x per-member bias values.

    Unlisted pieces keep the config's own values. Duplicates are dropped, order is kept."""
    names = config.names
    modes = list(modes) if modes else [config.mode]
    for m in modes:
        if m not in ("soft", "majority"):
            raise FusionConfigError(f"unknown mode {m!r}", None, "use soft and/or majority")
    weights = list(weights) if weights else [tuple(m.weight for m in config.members)]
    for w in weights:
        if len(w) != len(names):
            raise FusionConfigError(f"weight vector {w} has {len(w)} entries for {len(names)} members")
    scale_axes = [list((scales or {}).get(m.name, [m.scale])) for m in config.members]
    bias_axes = [list((biases or {}).get(m.name, [m.bias])) for m in config.members]
    for m, sa, ba in zip(config.members, scale_axes, bias_axes):
        if m.is_png and (sa != [1.0] or ba != [0.0]):
            raise FusionConfigError(f"member {m.name!r} is a PNG member: it has no logits, so scale/bias do not "
                                    "apply to it", None, "sweep its weight instead")
    for m, axis in zip(config.members, scale_axes):
        if any(not (s > 0) or not math.isfinite(s) for s in axis):
            raise FusionConfigError(f"member {m.name!r}: scales must be > 0, got {axis}")
    out, seen = [], set()
    for mode in modes:
        for w in weights:
            for sc in itertools.product(*scale_axes):
                for bi in itertools.product(*bias_axes):
                    # a member with weight 0 takes no part: its scale/bias do not matter
                    sc_eff = tuple(s if wi > 0 else 1.0 for s, wi in zip(sc, w))
                    bi_eff = tuple(b if wi > 0 else 0.0 for b, wi in zip(bi, w))
                    s = Setting(mode, tuple(float(x) for x in w), tuple(map(float, sc_eff)), tuple(map(float, bi_eff)))
                    if s not in seen:
                        seen.add(s)
                        out.append(s)
    return out
