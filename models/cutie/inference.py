"""Frame-by-frame inference (the official ``InferenceCore.step`` protocol).

One ``InferenceCore`` per video. ``step`` takes an RGB frame (3, H, W) in [0, 1] and optionally an
integer label mask with the ids of objects given on that frame, and returns the probabilities
(K+1, H, W) plus what is needed to rebuild them: the per-object stride-4 logits and a recipe.

Schedule (t counts processed frames from 0):
* memory frame when ``t - last_mem_t >= mem_every`` or a mask is given, never at ``end``;
* the decoder updates the sensory memory when ``t - last_mem_t`` is in the stagger set, never at ``end``;
* a mask with only new objects (or the first mask) replaces segmentation; a mask that adds objects
  while others are tracked is merged into the prediction (given pixels win).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .config import CutieSettings
from .memory import MemoryManager
from .network import CutieNetwork
from .recipe import LOGIT_STRIDE, make_recipe, pad_amounts, pad_to_multiple, soft_aggregate, unpad


@dataclass
class StepResult:
    """Output of one ``InferenceCore.step``.

    prob: (K+1, H, W) float32 at the size of the image given to ``step``; channel k+1 is ``obj_ids[k]``.
    logits: stride-4 object logits of the padded internal frame, float32, (K, Hp/4, Wp/4), or
        (2, K, Hp/4, Wp/4) with flip augmentation ([1] from the mirrored frame). Rows of objects the
        network did not predict on this frame (given by the mask) are NaN.
    recipe: see ``recipe.py``; ``stride4_logits_to_prob(logits, recipe)`` == prob when source == 'network'.
    """

    prob: torch.Tensor
    logits: torch.Tensor
    obj_ids: list[int]
    recipe: dict
    source: str
    is_memory_frame: bool

    def labels(self) -> torch.Tensor:
        """Argmax label map with real object ids (0 = background)."""
        lut = torch.tensor([0, *self.obj_ids], device=self.prob.device, dtype=torch.int64)
        return lut[self.prob.argmax(dim=0)]


def stagger_steps(mem_every: int, stagger_updates: int) -> set[int]:
    """Offsets since the last memory frame at which the decoder updates the sensory memory."""
    if stagger_updates >= mem_every:
        return set(range(1, mem_every + 1))
    return {int(v) for v in np.round(np.linspace(1, mem_every, stagger_updates)).astype(int)}


def internal_size(h: int, w: int, max_internal_size: int) -> tuple[int, int] | None:
    """Size after the ``max_internal_size`` shorter-side resize, or None when no resize is needed."""
    if max_internal_size <= 0 or min(h, w) <= max_internal_size:
        return None
    short = min(h, w)
    return int(h / short * max_internal_size), int(w / short * max_internal_size)


def frame_recipe(in_hw: tuple[int, int], settings: CutieSettings, source: str) -> dict:
    """Recipe of a frame of size ``in_hw`` given to ``step``: internal resize, padding, resize back."""
    in_hw = (int(in_hw[0]), int(in_hw[1]))
    internal = internal_size(*in_hw, settings.max_internal_size) or in_hw
    pad = pad_amounts(*internal)
    padded = (internal[0] + pad[2] + pad[3], internal[1] + pad[0] + pad[1])
    return make_recipe(padded_hw=padded, pad=pad, resize_hw=[list(in_hw)] if internal != in_hw else [],
                       flip_aug=settings.flip_aug, source=source)


class InferenceCore:
    """Cutie's inference loop and memory for one video."""

    def __init__(self, network: CutieNetwork, settings: CutieSettings | None = None):
        self.network = network
        self.settings = settings or CutieSettings()
        self.memory = MemoryManager(self.settings, network.cfg.sensory_dim)
        self.stagger = stagger_steps(self.settings.mem_every, self.settings.stagger_updates)
        self.obj_ids: list[int] = []  # channel order ("temporary ids" - 1)
        self.t = -1
        self.last_mem_t = 0
        self.last_mask: torch.Tensor | None = None

    def _autocast(self):
        device = self.network.device
        if self.settings.amp and device.type == "cuda":
            return torch.autocast("cuda", dtype=getattr(torch, self.settings.amp_dtype))
        return contextlib.nullcontext()

    @torch.inference_mode()
    def step(
        self,
        image: torch.Tensor,
        mask: torch.Tensor | np.ndarray | None = None,
        objects: Sequence[int] | None = None,
        *,
        end: bool = False,
        force_permanent: bool = False,
    ) -> StepResult:
        """Process one frame.

        image: (3, H, W) RGB in [0, 1]. mask: (H, W) integer label map or None. objects: the ids given
        by ``mask`` on this frame (default: the non-zero ids present in it). end: last frame of the
        video (nothing is memorised). force_permanent: memorise this frame permanently.
        """
        device = self.network.device
        image = image.to(device=device, dtype=torch.float32)
        if mask is not None:
            mask = torch.as_tensor(mask).to(device=device, dtype=torch.int64)
            if objects is None:
                objects = [int(v) for v in torch.unique(mask).tolist() if v != 0]
            objects = [int(o) for o in objects]

        in_hw = tuple(image.shape[-2:])
        new_hw = internal_size(*in_hw, self.settings.max_internal_size)
        if new_hw is not None:
            image = F.interpolate(image[None], size=new_hw, mode="bilinear", align_corners=False)[0]
            if mask is not None:
                mask = F.interpolate(mask[None, None].float(), size=new_hw, mode="nearest-exact")[0, 0].round().long()

        self.t += 1
        image, pad = pad_to_multiple(image)
        batch = image[None]
        if self.settings.flip_aug:
            batch = torch.cat([batch, torch.flip(batch, dims=[-1])], dim=0)

        new_objects = [o for o in objects if o not in self.obj_ids] if mask is not None else []
        since_mem = self.t - self.last_mem_t
        is_mem_frame = (since_mem >= self.settings.mem_every or mask is not None) and not end
        need_segment = mask is None or (len(self.obj_ids) > 0 and len(new_objects) > 0)
        update_sensory = since_mem in self.stagger and not end
        num_predicted = len(self.obj_ids) if need_segment else 0

        with self._autocast():
            normed = self.network.normalize(batch)
            (_, f8, f4), pix_feat, key, shrinkage, selection = self.network.encode_image(normed)
            logits = None
            if need_segment:
                prob, logits = self._segment(key, selection, pix_feat, f8, f4, update_sensory)
            if mask is not None:
                mask, _ = pad_to_multiple(mask)
                if need_segment:
                    prob = self._merge_mask(prob, mask, objects, new_objects)
                else:
                    self.obj_ids.extend(new_objects)
                    one_hot = torch.stack([mask == o for o in self.obj_ids], dim=0) if self.obj_ids else \
                        torch.zeros((0, *mask.shape), device=device)
                    prob = torch.softmax(soft_aggregate(one_hot, dim=0), dim=0)

            self.last_mask = prob[1:].unsqueeze(0)
            if self.settings.flip_aug:
                self.last_mask = torch.cat([self.last_mask, torch.flip(self.last_mask, dims=[-1])], dim=0)
            memorised = (is_mem_frame or force_permanent) and len(self.obj_ids) > 0
            if memorised:
                self._add_memory(normed, pix_feat, key, shrinkage, selection, force_permanent)

        out = unpad(prob, pad).float()
        if new_hw is not None:
            out = F.interpolate(out[None], size=in_hw, mode="bilinear", align_corners=False)[0]
        source = "network" if mask is None else ("network+mask" if need_segment else "mask")
        recipe = frame_recipe(in_hw, self.settings, source)
        return StepResult(prob=out, logits=self._full_logits(logits, num_predicted, image.shape[-2:]),
                          obj_ids=list(self.obj_ids), recipe=recipe, source=source, is_memory_frame=memorised)

    def _full_logits(self, logits: torch.Tensor | None, num_predicted: int, padded_hw) -> torch.Tensor:
        """(B, K_pred, h4, w4) -> (K, h4, w4) or (2, K, h4, w4), NaN rows for objects without prediction."""
        b = 2 if self.settings.flip_aug else 1
        h4, w4 = padded_hw[0] // LOGIT_STRIDE, padded_hw[1] // LOGIT_STRIDE
        k = len(self.obj_ids)
        if logits is None or num_predicted < k:
            full = torch.full((b, k, h4, w4), float("nan"), device=self.network.device)
            if logits is not None:
                full[:, :num_predicted] = logits
        else:
            full = logits.float()
        return full if self.settings.flip_aug else full[0]

    def _segment(self, key, selection, pix_feat, f8, f4, update_sensory):
        """Read memory and decode -> (probabilities (K+1, Hp, Wp), logits (B, K, h4, w4))."""
        if not self.memory.engaged:  # objects known but never memorised: nothing to read
            h, w = key.shape[-2:]
            prob = torch.zeros((len(self.obj_ids) + 1, h * 16, w * 16), device=key.device)
            prob[0] = 1
            return prob, None
        sensory = self.memory.get_sensory(self.obj_ids)
        readout = self.memory.read(self.network, pix_feat, key, selection, self.last_mask, self.obj_ids,
                                   chunk_size=self.settings.chunk_size)
        new_sensory, logits, prob = self.network.segment(
            f8, f4, readout, sensory, chunk_size=self.settings.chunk_size, update_sensory=update_sensory
        )
        if self.settings.flip_aug:
            prob = (prob[0] + torch.flip(prob[1], dims=[-1])) / 2
        else:
            prob = prob[0]
        if update_sensory:
            self.memory.set_sensory(new_sensory, self.obj_ids)
        return prob, logits

    def _merge_mask(self, prob: torch.Tensor, mask: torch.Tensor, objects: list[int], new_objects: list[int]):
        """Prediction of tracked objects + given masks (given pixels win; new objects appended)."""
        obj_prob = prob[1:]
        obj_prob[:, mask > 0] = 0
        for obj in objects:
            if obj in self.obj_ids:
                obj_prob[self.obj_ids.index(obj)] = (mask == obj).type_as(obj_prob)
        added = [(mask == obj).type_as(obj_prob).unsqueeze(0) for obj in new_objects]
        self.obj_ids.extend(new_objects)
        merged = torch.cat([obj_prob, *added], dim=0)
        return torch.softmax(soft_aggregate(merged, dim=0), dim=0)

    def _add_memory(self, normed, pix_feat, key, shrinkage, selection, force_permanent: bool) -> None:
        self.memory.init_sensory(key, self.obj_ids)
        value, sensory, summaries = self.network.encode_mask(
            normed, pix_feat, self.memory.get_sensory(self.obj_ids), self.last_mask,
            deep_update=True, chunk_size=self.settings.chunk_size,
        )
        self.memory.add_memory(key, shrinkage, value, summaries, self.obj_ids, selection,
                               permanent="all" if force_permanent else "first")
        self.last_mem_t = self.t
        self.memory.set_sensory(sensory, self.obj_ids)
