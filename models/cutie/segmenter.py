"""Cutie as a member of the inference stage (`models.stage`): videos in, per-object stride-4 logits out.

It plugs the video runner into the stage protocol (``manifest``, ``recipe``, ``video_meta``, ``run_video``).
What goes into the store is exactly the runner's per-object logits of the padded internal frame; on frames
where an object's mask is given, Cutie outputs the mask itself, and its logit row is NaN ("not predicted",
the store keeps it). A flipped member mirrors frames and prompts on the way in; the recipe says ``hflip`` so
the ensemble mirrors the probabilities back.
"""
from __future__ import annotations

import dataclasses
from importlib import metadata
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from data.dataset import Video
from data.errors import DatasetError, MassegError
from data.hashing import file_sha256

from .config import preset as make_preset
from .device import pick_device
from .inference import frame_recipe
from .recipe import with_resize
from .runner import CutieRunner, PromptError, Prompts, loader_size
from .weights import CheckpointMismatchError, build_cutie


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


class CutieSegmenter:
    """One Cutie member: model size, checkpoint, preset, input scale (shorter side), flip."""

    name = "cutie"

    def __init__(self, checkpoint: str | Path, size: str = "base", preset: str = "mose", scale: int | None = None,
                 hflip: bool = False, device: str = "auto", objects_from: str = "auto", threads: int | None = None):
        self.checkpoint = Path(checkpoint)
        if not self.checkpoint.is_file():
            raise MassegError("Cutie checkpoint not found", self.checkpoint,
                              "pass an existing .pth or a registry name (`masseg checkpoints list`)")
        self.size = size
        self.preset = preset
        overrides = {"resize_shorter_side": int(scale)} if scale else {}
        self.settings = make_preset(preset, **overrides)
        if self.settings.flip_aug:
            raise MassegError("flip_aug inside a Cutie member is not stored; run a flipped member instead",
                              fix="set flip = true on the member (one store per flip)")
        self.scale = self.settings.resize_shorter_side
        self.hflip = bool(hflip)
        self.device = pick_device(None if device == "auto" else device)
        self.objects_from = objects_from
        if threads:
            torch.set_num_threads(int(threads))
        try:
            network = build_cutie(size, self.checkpoint, device=self.device)
        except CheckpointMismatchError as exc:
            if exc.unreadable:
                raise MassegError(str(exc), self.checkpoint, "download it again (`masseg checkpoints fetch NAME`) "
                                                             "or pass the right file") from None
            raise MassegError(f"checkpoint does not fit cutie-{size}: {exc}", self.checkpoint,
                              "use the matching size (small/base) or the right file") from None
        self.runner = CutieRunner(network, self.settings)
        self.checkpoint_sha256 = file_sha256(self.checkpoint)

    # ---- stage protocol --------------------------------------------------------------------------------------
    def manifest(self) -> dict:
        return {"model": "cutie", "variant": f"cutie-{self.size}", "checkpoint": str(self.checkpoint),
                "checkpoint_sha256": self.checkpoint_sha256,
                "settings": dict(dataclasses.asdict(self.settings), preset=self.preset,
                                 objects_from=self.objects_from, device_type=self.device.type),
                "scale": self.scale, "flip": self.hflip, "code_version": _version("masseg-pipeline"),
                "torch_version": _version("torch")}

    def _net_hw(self, hw: tuple[int, int]) -> tuple[int, int]:
        size = self.settings.resize_shorter_side
        if size > 0 and min(hw) > size:  # the runner's loader resize
            return loader_size(hw, size)
        return hw

    def recipe(self, video: Video) -> dict:
        hw = tuple(int(v) for v in video.size)
        recipe = with_resize(frame_recipe(self._net_hw(hw), self.settings, source="network"), hw)
        return dict(recipe, hflip=self.hflip)

    def video_meta(self, video: Video) -> dict:
        return {"obj_ids": video.object_ids, "first_given": {str(k): v for k, v in video.first_given.items()},
                "scale": self.scale}

    def run_video(self, video: Video) -> Iterator:
        from models.stage import FrameOutput
        first = video.first_given
        masks = video.prompt_masks()
        if self.hflip:
            masks = {t: np.ascontiguousarray(m[:, ::-1]) for t, m in masks.items()}
        prompts = Prompts(masks=masks, first_frame=first)
        expected = self.recipe(video)
        geometry = {k: v for k, v in expected.items() if k not in ("source", "hflip")}

        def frames():
            for i in range(len(video)):
                f = video.frame(i)
                yield np.ascontiguousarray(f[:, ::-1]) if self.hflip else f

        try:
            for out in self.runner.iter_video(frames(), prompts):
                got = {k: v for k, v in out.recipe.items() if k not in ("source", "hflip")}
                if got != geometry:  # a frame of another size, or a settings/recipe drift: never store it silently
                    raise DatasetError(f"frame {video.frame_names[out.index]} gives recipe {got}, expected {geometry}",
                                       video.frame_path(out.index), "all frames of a video must have one size")
                yield FrameOutput(out.index, video.frame_names[out.index], list(out.obj_ids),
                                  np.ascontiguousarray(out.logits, dtype=np.float32), None)
        except PromptError as exc:
            raise DatasetError(str(exc), video.ann_dir, "fix the annotation masks of this video") from None
