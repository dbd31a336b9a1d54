"""Run Cutie over a whole video, as the official evaluation does, and hand out per-frame results.

Input: frames (any iterable of uint8 (H, W, 3) RGB arrays, consumed lazily with one frame of
lookahead to know which one is last), the object prompts (label masks on the frames where objects are
first given, and the declaration of which object first appears where) and ``CutieSettings``.

Per frame it yields a ``CutieFrame``: object ids (channel order), the stride-4 logits with their
recipe (``recipe.py``), probabilities at video resolution and the label map with real object ids.
It knows nothing about where results go: iterate ``iter_video`` or pass a sink to ``run_video``.

Official evaluation details reproduced here: frames whose shorter side exceeds
``settings.resize_shorter_side`` are resized to it (bilinear, antialias; masks nearest) and the
probabilities are resized back bilinearly before the argmax; frames before the first prompt are not
processed (they are reported with no objects); the last frame is processed with ``end=True``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .config import CutieSettings
from .inference import InferenceCore, frame_recipe
from .network import CutieNetwork
from .recipe import LOGIT_STRIDE, with_resize


class PromptError(ValueError):
    """The object prompts are inconsistent (with themselves or with the video)."""


class UndeclaredObjectError(PromptError):
    """A mask contains object ids that were not declared (or before their declared first frame)."""


@dataclass(frozen=True)
class Prompts:
    """Where objects are given.

    masks: frame index -> (H, W) integer label map at video resolution (0 = background).
    first_frame: object id -> index of the frame whose mask first gives it.
    A mask may only contain declared objects whose first frame is not later than the mask's frame
    (re-annotating an already tracked object is allowed and resets it to the mask).
    """

    masks: Mapping[int, np.ndarray]
    first_frame: Mapping[int, int]

    @classmethod
    def first_frame_only(cls, mask: np.ndarray, frame_index: int = 0) -> "Prompts":
        """All objects of one mask, given on ``frame_index`` (the DAVIS/MOSE semi-supervised setting)."""
        ids = [int(v) for v in np.unique(mask) if v != 0]
        return cls(masks={frame_index: mask}, first_frame={i: frame_index for i in ids})

    def objects_first_on(self, frame: int) -> list[int]:
        return sorted(o for o, f in self.first_frame.items() if f == frame)

    def validate(self) -> None:
        """Raise ``PromptError``/``UndeclaredObjectError`` naming the offending ids and frames."""
        for obj, frame in self.first_frame.items():
            if int(obj) <= 0:
                raise PromptError(f"object ids must be positive integers, got {obj}")
            if frame not in self.masks:
                raise PromptError(f"object {obj} is declared to first appear on frame {frame}, which has no mask")
        for frame, mask in self.masks.items():
            mask = np.asarray(mask)
            if mask.ndim != 2 or not np.issubdtype(mask.dtype, np.integer):
                raise PromptError(f"mask of frame {frame} must be a 2-D integer label map, got {mask.dtype} {mask.shape}")
            present = {int(v) for v in np.unique(mask) if v != 0}
            undeclared = sorted(present - set(self.first_frame))
            if undeclared:
                raise UndeclaredObjectError(f"mask of frame {frame} contains undeclared object ids {undeclared}")
            early = sorted(o for o in present if self.first_frame[o] > frame)
            if early:
                raise UndeclaredObjectError(
                    f"mask of frame {frame} contains objects {early} declared to first appear later "
                    f"(frames {[self.first_frame[o] for o in early]})"
                )
            absent = sorted(set(self.objects_first_on(frame)) - present)
            if absent:
                raise PromptError(f"objects {absent} are declared to first appear on frame {frame} but are not in its mask")


@dataclass
class CutieFrame:
    """Result for one video frame (numpy, CPU)."""

    index: int
    obj_ids: list[int]  # channel order of logits/prob (prob channel k+1 <-> obj_ids[k])
    logits: np.ndarray  # float32 (N, h4, w4), or (2, N, h4, w4) with flip_aug; NaN rows = not predicted
    recipe: dict  # rebuilds prob from logits, see recipe.py
    prob: np.ndarray  # float32 (N+1, H, W) at video resolution
    labels: np.ndarray  # (H, W) object ids, uint8 when all ids < 256
    is_prompt: bool = False  # a mask was given on this frame


def loader_size(hw: tuple[int, int], size: int) -> tuple[int, int]:
    """(H, W) after the official loader resize: shorter side -> ``size``, longer side scaled and truncated.

    The rule of torchvision's ``Resize([size])``, which the official data loader uses; spelled out here so
    that inference does not import torchvision.
    """
    h, w = int(hw[0]), int(hw[1])
    if h <= w:
        return size, int(size * w / h)
    return int(size * h / w), size


def loader_resize(image: torch.Tensor, size: int) -> torch.Tensor:
    """Official data-loader resize of a (3, H, W) float image: shorter side -> size, bilinear + antialias."""
    out_hw = loader_size(image.shape[-2:], size)
    if tuple(image.shape[-2:]) == out_hw:
        return image
    return F.interpolate(image[None], size=out_hw, mode="bilinear", align_corners=False, antialias=True)[0]


def loader_resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """Same for a label map: PIL nearest (ids up to 2**31 - 1)."""
    out_h, out_w = loader_size(mask.shape, size)
    if (out_h, out_w) == mask.shape:
        return mask.astype(np.int64)
    small = mask.max(initial=0) < 256
    pil = Image.fromarray(mask.astype(np.uint8 if small else np.int32))
    return np.asarray(pil.resize((out_w, out_h), Image.NEAREST)).astype(np.int64)


def _needs_loader_resize(h: int, w: int, size: int) -> bool:
    return size > 0 and min(h, w) > size


def _label_dtype(obj_ids) -> np.dtype:
    top = max(obj_ids, default=0)
    return np.dtype(np.uint8 if top < 256 else np.uint16 if top < 65536 else np.int32)


class CutieRunner:
    """Processes videos with one network and one settings object (a fresh memory per video)."""

    def __init__(self, network: CutieNetwork, settings: CutieSettings | None = None):
        self.network = network
        self.settings = settings or CutieSettings()

    @property
    def device(self) -> torch.device:
        return self.network.device

    def _empty_frame(self, index: int, hw: tuple[int, int], net_hw: tuple[int, int]) -> CutieFrame:
        """A frame before any object is given: background only, no network run (as the official eval)."""
        recipe = with_resize(frame_recipe(net_hw, self.settings, source="none"), hw)
        hp, wp = recipe["padded_hw"]
        b = (2,) if self.settings.flip_aug else ()
        logits = np.zeros((*b, 0, hp // LOGIT_STRIDE, wp // LOGIT_STRIDE), np.float32)
        return CutieFrame(index=index, obj_ids=[], logits=logits, recipe=recipe,
                          prob=np.ones((1, *hw), np.float32), labels=np.zeros(hw, np.uint8))

    @torch.inference_mode()
    def iter_video(self, frames: Iterable[np.ndarray], prompts: Prompts) -> Iterator[CutieFrame]:
        """Yield one ``CutieFrame`` per input frame, in order."""
        prompts.validate()
        size = self.settings.resize_shorter_side
        core = InferenceCore(self.network, self.settings)
        started = False
        video_hw: tuple[int, int] | None = None
        it = iter(frames)
        current = next(it, None)
        index = 0
        while current is not None:
            following = next(it, None)
            frame = np.asarray(current)
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                raise ValueError(f"frame {index} must be uint8 (H, W, 3) RGB, got {frame.dtype} {frame.shape}")
            hw = (int(frame.shape[0]), int(frame.shape[1]))
            if video_hw is None:
                video_hw = hw
            elif hw != video_hw:
                raise ValueError(f"frame {index} has size {hw}, the video started with {video_hw}")
            resize = _needs_loader_resize(*hw, size)
            if not frame.flags.writeable:  # e.g. np.asarray(PIL image); torch wants writable memory
                frame = frame.copy()
            image = torch.from_numpy(frame).to(self.device).permute(2, 0, 1).float() / 255
            if resize:
                image = loader_resize(image, size)
            net_hw = (int(image.shape[-2]), int(image.shape[-1]))

            mask = objects = None
            if index in prompts.masks:
                mask = np.asarray(prompts.masks[index])
                if mask.shape != hw:
                    raise PromptError(f"mask of frame {index} has shape {mask.shape}, the frame is {hw}")
                mask = loader_resize_mask(mask, size) if resize else mask.astype(np.int64)
                present = {int(v) for v in np.unique(mask) if v != 0}
                objects = sorted(present | set(prompts.objects_first_on(index)))
                started = True
            if not started:
                yield self._empty_frame(index, hw, net_hw)
            else:
                result = core.step(image, None if mask is None else torch.from_numpy(mask), objects,
                                   end=following is None)
                prob, recipe = result.prob, result.recipe
                if resize:
                    prob = F.interpolate(prob[None], size=hw, mode="bilinear", align_corners=False)[0]
                    recipe = with_resize(recipe, hw)
                lut = np.array([0, *result.obj_ids], dtype=_label_dtype(result.obj_ids))
                prob_np = prob.cpu().numpy()
                yield CutieFrame(
                    index=index, obj_ids=result.obj_ids, logits=result.logits.cpu().numpy(), recipe=recipe,
                    prob=prob_np, labels=lut[prob_np.argmax(axis=0)], is_prompt=mask is not None,
                )
            current = following
            index += 1
        beyond = sorted(f for f in prompts.masks if f >= index)
        if beyond:
            raise PromptError(f"masks given for frames {beyond}, but the video has {index} frames")


def iter_video(network: CutieNetwork, frames: Iterable[np.ndarray], prompts: Prompts,
               settings: CutieSettings | None = None) -> Iterator[CutieFrame]:
    """Generator over the video's ``CutieFrame`` results (see ``CutieRunner.iter_video``)."""
    return CutieRunner(network, settings).iter_video(frames, prompts)


def run_video(network: CutieNetwork, frames: Iterable[np.ndarray], prompts: Prompts,
              settings: CutieSettings | None, sink: Callable[[CutieFrame], None]) -> int:
    """Process the whole video, calling ``sink(frame_result)`` for each frame; returns the frame count."""
    count = 0
    for result in iter_video(network, frames, prompts, settings):
        sink(result)
        count += 1
    return count
