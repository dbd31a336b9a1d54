"""Member specs: one member run (model, checkpoint, input size, flip, model options) as a plain JSON-able dict.

Why a dict and not an object: it must cross process and machine boundaries unchanged (a subprocess's argv, a Ray
task's arguments) and be printed in logs; a plain dict of str/int/float/bool/None does all three. It is checked
once, in the launching process, so a typo fails before any worker starts; what a model accepts comes from the
model registry (:mod:`models.registry`, through :func:`pipeline.members.check_member`).

Keys (``member_spec`` fills defaults)::

    model        a registered model family (``masseg infer --help`` lists them)
    checkpoint   registry name (see `masseg checkpoints list`) or a path to a weight file
    image_size   model input size (sam2: S, multiple of 32; cutie: shorter side); None = the model's default
    flip         horizontal flip (the store records it; the ensemble un-flips)
    device       "auto" | "cpu" | "cuda" | "cuda:N"
    codec        logit store codec ("q16", "q8", "f16", "f32")
    objects_from "auto" | "first_frame" | "appearance" (dataset: where each object's first mask is given)
    threads      torch CPU threads per worker, or None to keep torch's default
    options      the model's own options (its registry declaration), unset ones left out
"""
from __future__ import annotations

import json

from data.codecs import CODECS, DEFAULT_CODEC
from data.dataset import OBJECTS_FROM
from data.errors import MassegError

from ..members import check_member

TOP_KEYS = ("model", "checkpoint", "image_size", "flip", "device", "codec", "objects_from", "threads", "options")


class SpecError(MassegError):
    """A member spec is malformed (unknown model, key or value)."""


def member_spec(model: str, checkpoint: str, image_size: int | None = None, flip: bool = False,
                device: str = "auto", codec: str = DEFAULT_CODEC, objects_from: str = "auto",
                threads: int | None = None, **options) -> dict:
    """Build and check a spec; ``options`` are the model's own options (None values are dropped)."""
    spec = {"model": model, "checkpoint": str(checkpoint), "image_size": image_size, "flip": bool(flip),
            "device": device, "codec": codec, "objects_from": objects_from, "threads": threads,
            "options": {k: v for k, v in options.items() if v is not None}}
    return check_spec(spec)


def check_spec(spec: dict) -> dict:
    """Validate a spec (e.g. one read back from JSON) and return it with the defaults filled: every problem at
    once, in one error."""
    if not isinstance(spec, dict):
        raise SpecError(f"member spec must be a JSON object, got {type(spec).__name__}")
    unknown = [k for k in spec if k not in TOP_KEYS]
    if unknown:
        raise SpecError(f"unknown member spec keys {unknown}", fix=f"allowed: {', '.join(TOP_KEYS)}")
    out = {"image_size": None, "flip": False, "device": "auto", "codec": DEFAULT_CODEC, "objects_from": "auto",
           "threads": None, "options": {}}
    out.update(spec)
    problems = []
    if not out.get("checkpoint"):
        problems.append("checkpoint: missing (a registry name or a path to a weight file)")
    if out["image_size"] is not None and (not isinstance(out["image_size"], int)
                                          or isinstance(out["image_size"], bool)):
        problems.append(f"image_size: must be an integer or null, got {out['image_size']!r}")
        out["image_size"] = None
    if out["codec"] not in CODECS:
        problems.append(f"codec: unknown codec {out['codec']!r} (use one of {', '.join(CODECS)})")
    if out["objects_from"] not in OBJECTS_FROM:
        problems.append(f"objects_from: unknown objects_from {out['objects_from']!r} "
                        f"(use one of {', '.join(OBJECTS_FROM)})")
    if out["threads"] is not None and (not isinstance(out["threads"], int) or out["threads"] < 1):
        problems.append(f"threads: must be a positive integer or null, got {out['threads']!r}")
    if not isinstance(out["options"], dict):
        problems.append("options: must be an object")
        out["options"] = {}
    fam, opts, size, more = check_member(out.get("model"), out.get("checkpoint"), out["options"],
                                         out["image_size"], device=out["device"])
    problems += more
    if problems:
        raise SpecError(f"bad member spec: {'; '.join(problems)}",
                        fix=f"see `masseg infer --help` for the options of each model")
    out["options"] = {k: v for k, v in opts.items() if v is not None}
    out["image_size"] = size
    out["flip"] = bool(out["flip"])
    json.dumps(out)  # must cross process boundaries as JSON
    return out


def spec_from_member_run(run, device: str = "auto", codec: str = DEFAULT_CODEC, objects_from: str = "auto",
                         threads: int | None = None) -> dict:
    """Spec of one :class:`pipeline.config.MemberRun` (a configured member at one input size, flipped or not)."""
    m = run.member
    return member_spec(m.model, m.checkpoint, image_size=run.image_size, flip=run.flip, device=device, codec=codec,
                       objects_from=objects_from, threads=threads, **m.options)


def spec_to_json(spec: dict) -> str:
    return json.dumps(check_spec(spec), sort_keys=True, separators=(",", ":"))


def spec_from_json(text: str) -> dict:
    try:
        return check_spec(json.loads(text))
    except json.JSONDecodeError as exc:
        raise SpecError(f"member spec is not valid JSON ({exc})") from None
