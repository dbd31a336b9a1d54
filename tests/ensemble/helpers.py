"""Test helpers: real logit stores built from arrays (golden fixtures or synthetic members)."""
from __future__ import annotations

import importlib.util
from pathlib import Path
import numpy as np

from data.store import LogitStore


def sam2_recipe(video_hw, hflip=False) -> dict:
    return {"kind": "sam2_bilinear", "video_hw": [int(video_hw[0]), int(video_hw[1])], "hflip": bool(hflip)}


def cutie_recipe(padded_hw, pad, video_hw, internal_hw=None, hflip=False) -> dict:
    hp, wp = padded_hw
    l, r, t, b = pad
    internal = internal_hw or [hp - t - b, wp - l - r]
    return {"kind": "cutie_stride4", "padded_hw": [hp, wp], "pad": [l, r, t, b], "internal_hw": list(internal),
            "video_hw": list(video_hw), "hflip": bool(hflip)}


def write_store(root, model: str, videos: dict, codec: str = "f32", settings: dict | None = None) -> LogitStore:
    """videos: {name: {"frame_names": [...], "video_hw": (H, W), "recipe": {...},
    "frames": {frame_name: (obj_ids, logits (N, h, w))}}}; frames absent from "frames" are not written
    (so the video is left incomplete) unless "frames" covers all frame names."""
    store = LogitStore.create(root, {"model": model, "settings": settings or {}}, codec=codec)
    for name, v in videos.items():
        meta = {"frame_names": list(v["frame_names"]), "video_hw": list(v["video_hw"]), "recipe": v["recipe"]}
        with store.writer(name, meta) as w:
            for i, f in enumerate(v["frame_names"]):
                ids, logits = v["frames"][f]
                w.write(i, f, list(ids), np.asarray(logits, np.float32))
    return store


def load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
