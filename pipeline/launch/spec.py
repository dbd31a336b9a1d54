"""Member specs: one member run (model, checkpoint, input scale, flip, knobs) as a plain JSON-able dict.

Why a dict and not an object: it must cross process and machine boundaries unchanged (a subprocess's argv, a Ray
task's arguments) and be printed in logs; a plain dict of str/int/float/bool/None does all three. It is checked
once, in the launching process, so a typo fails before any worker starts.

Keys (``member_spec`` fills defaults)::

    model        "sam2" | "cutie"
    checkpoint   registry name (see `masseg checkpoints list`) or a path to a weight file
    scale        model input size (sam2: S, low-res logits are S/4) or None for the model's default
    flip         horizontal flip (the store records it; the ensemble un-flips)
    device       "auto" | "cpu" | "cuda" | "cuda:N"
    codec        logit store codec ("q16", "q8", "f16", "f32")
    objects_from "auto" | "first_frame" | "appearance" (dataset: where each object's first mask is given)
    threads      torch CPU threads per worker, or None to keep torch's default
    options      model-specific: sam2 {config, mem_scale, mem_bias, vos_optimized};
                 cutie {size, preset}
"""
from __future__ import annotations

import json

from data.codecs import CODECS, DEFAULT_CODEC
from data.errors import MassegError

MODELS = ("sam2", "cutie")
OBJECTS_FROM = ("auto", "first_frame", "appearance")
OPTION_KEYS = {"sam2": ("config", "mem_scale", "mem_bias", "vos_optimized"), "cutie": ("size", "preset")}
TOP_KEYS = ("model", "checkpoint", "scale", "flip", "device", "codec", "objects_from", "threads", "options")


class SpecError(MassegError):
    """A member spec is malformed (unknown model, key or value)."""


def member_spec(model: str, checkpoint: str, scale: int | None = None, flip: bool = False, device: str = "auto",
                codec: str = DEFAULT_CODEC, objects_from: str = "auto", threads: int | None = None,
                **options) -> dict:
    """Build and check a spec; ``options`` are the model-specific keys (None values are dropped)."""
    spec = {"model": model, "checkpoint": str(checkpoint), "scale": scale, "flip": bool(flip), "device": device,
            "codec": codec, "objects_from": objects_from, "threads": threads,
            "options": {k: v for k, v in options.items() if v is not None}}
    return check_spec(spec)


def check_spec(spec: dict) -> dict:
    """Validate a spec (e.g. one read back from JSON) and return it with defaults filled."""
    if not isinstance(spec, dict):
        raise SpecError(f"member spec must be a JSON object, got {type(spec).__name__}")
    unknown = [k for k in spec if k not in TOP_KEYS]
    if unknown:
        raise SpecError(f"unknown member spec keys {unknown}", fix=f"allowed: {', '.join(TOP_KEYS)}")
    out = {"scale": None, "flip": False, "device": "auto", "codec": DEFAULT_CODEC, "objects_from": "auto",
           "threads": None, "options": {}}
    out.update(spec)
    if out.get("model") not in MODELS:
        raise SpecError(f"unknown model {out.get('model')!r}", fix=f"use one of {', '.join(MODELS)}")
    if not out.get("checkpoint"):
        raise SpecError("member spec needs a checkpoint", fix="a registry name or a path to a weight file")
    if out["scale"] is not None and (not isinstance(out["scale"], int) or isinstance(out["scale"], bool)
                                     or out["scale"] <= 0):
        raise SpecError(f"scale must be a positive integer or null, got {out['scale']!r}")
    if out["codec"] not in CODECS:
        raise SpecError(f"unknown codec {out['codec']!r}", fix=f"use one of {', '.join(CODECS)}")
    if out["objects_from"] not in OBJECTS_FROM:
        raise SpecError(f"unknown objects_from {out['objects_from']!r}", fix=f"use one of {', '.join(OBJECTS_FROM)}")
    if out["threads"] is not None and (not isinstance(out["threads"], int) or out["threads"] < 1):
        raise SpecError(f"threads must be a positive integer or null, got {out['threads']!r}")
    if not isinstance(out["options"], dict):
        raise SpecError("member spec options must be an object")
    bad = [k for k in out["options"] if k not in OPTION_KEYS[out["model"]]]
    if bad:
        raise SpecError(f"unknown {out['model']} options {bad}", fix=f"allowed: {', '.join(OPTION_KEYS[out['model']])}")
    out["flip"] = bool(out["flip"])
    json.dumps(out)  # must cross process boundaries as JSON
    return out


def spec_from_member_run(run, device: str = "auto", codec: str = DEFAULT_CODEC, objects_from: str = "auto",
                         threads: int | None = None) -> dict:
    """Spec of one :class:`pipeline.config.MemberRun` (a configured member at one scale, flipped or not)."""
    m = run.member
    opts = dict(m.options)
    if m.model == "sam2" and "variant" in opts:
        opts["config"] = opts.pop("variant")
    return member_spec(m.model, m.checkpoint, scale=run.scale, flip=run.flip, device=device, codec=codec,
                       objects_from=objects_from, threads=threads, **opts)


def spec_to_json(spec: dict) -> str:
    return json.dumps(check_spec(spec), sort_keys=True, separators=(",", ":"))


def spec_from_json(text: str) -> dict:
    try:
        return check_spec(json.loads(text))
    except json.JSONDecodeError as exc:
        raise SpecError(f"member spec is not valid JSON ({exc})") from None
