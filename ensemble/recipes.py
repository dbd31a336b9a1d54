"""Map one member's native logits to video-resolution class maps, exactly the way the model itself does.

Every member ends up on one footing: a float32 tensor ``(C, H, W)`` whose channel 0 is the background and
channel ``c >= 1`` the object ``ids[c - 1]`` (the video's object ids, ascending). ``argmax`` over channels (first
maximum wins, so ties go to the background, then to the lower id) is the member's own label map.

SAM2 (``sam2_bilinear``): its objects are independent sigmoids, and its evaluation flow decides with logits:
bilinear upsampling (align_corners=False) straight to video resolution, a non-overlap clamp (every object that
is not the per-pixel ``argmax`` -- first maximum in store order -- is clamped to <= -10) and ``logit > 0``.
On our footing each object gets ``p = sigmoid(z)`` of its clamped (scaled) logit ``z``, and the background gets
``1 - max_k p_k``. After the clamp the per-pixel maximum object is exactly SAM2's winner, and ``p > 1 - p``
is ``z > 0``, so ``argmax`` reproduces SAM2's rule -- except where float32 rounds ``sigmoid(z)`` to exactly 0.5
for a tiny positive ``z`` (below ~1e-7). There the background is lowered by one ulp (and raised where ``z <= 0``
would otherwise win), which makes the identity exact rather than almost exact. ``1 - max p`` is what Cutie's
``prod(1 - p_k)`` becomes once SAM2's clamp has pushed every other object below sigmoid(-10) ~ 4.5e-5, so both
families' maps sum to (almost exactly) one and can be averaged.

Cutie (``cutie_stride4``): per-object stride-4 logits of the padded frame; sigmoid, soft aggregation with a
background of ``prod(1 - p_k)`` (clamped to [1e-7, 1 - 1e-7], back to logits), bilinear x4, softmax over the
K+1 channels, unpad, optional bilinear resizes to video size. That is Cutie's own output distribution.

MASSeg output scaling ``p = sigmoid(scale * logit + bias)`` is applied where the logits are: to SAM2's
video-resolution logits before the clamp, and to Cutie's per-object logits before aggregation. ``scale=1,
bias=0`` skips the arithmetic, so the model's own numbers pass through untouched.

The recipe types themselves (kinds, fields, checks) are defined once, in :mod:`data.recipes`, shared with the
models that write them; each kind's mapping is looked up in ``MAPPINGS`` by its class. The ensemble may not
import ``models`` (dependency rule), so the Cutie arithmetic is written here; ``tests/ensemble/test_recipes.py``
checks it against ``models.cutie.recipe``.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from data.errors import StoreError
from data.recipes import CutieStride4, Recipe, Sam2Bilinear, as_recipe

from .ops import first_argmax

SAM2_CLAMP = -10.0        # SAM2Base._apply_non_overlapping_constraints
CUTIE_EPS = 1e-7          # Cutie's aggregate() clamp
CUTIE_STRIDE = 4


def _scaled(x: torch.Tensor, scale: float, bias: float) -> torch.Tensor:
    if scale == 1.0 and bias == 0.0:
        return x
    return x * scale + bias


# ---- SAM2 ------------------------------------------------------------------------------------------------------
def sam2_upsample(lowres: torch.Tensor, video_hw: Sequence[int]) -> torch.Tensor:
    """(N, h, w) low-res logits -> (N, H, W) video-res logits, as SAM2's ``_get_orig_video_res_output``."""
    if lowres.shape[0] == 0:
        return lowres.new_zeros((0, int(video_hw[0]), int(video_hw[1])))
    up = F.interpolate(lowres[:, None], size=(int(video_hw[0]), int(video_hw[1])), mode="bilinear",
                       align_corners=False)
    return up[:, 0]


def sam2_clamp(z: torch.Tensor) -> torch.Tensor:
    """SAM2's non-overlap constraint on (N, H, W): objects other than the per-pixel argmax are clamped to <= -10."""
    n = z.shape[0]
    if n <= 1:
        return z
    winner = first_argmax(z)[None]
    keep = winner == torch.arange(n, dtype=winner.dtype).view(n, 1, 1)
    return torch.where(keep, z, torch.clamp(z, max=SAM2_CLAMP))


def sam2_channels(up: torch.Tensor, rows: Sequence[int], n_channels: int, scale: float = 1.0,
                  bias: float = 0.0) -> torch.Tensor:
    """Video-res logits of the present objects (store order) -> the (C, H, W) common-footing map.

    ``rows[i]`` is the channel (>= 1) of the i-th present object; channels of objects without an entry on this
    frame (not yet appeared, or not tracked) stay at probability 0.
    """
    H, W = up.shape[-2:]
    out = torch.zeros((n_channels, H, W), dtype=torch.float32)
    if up.shape[0] == 0:
        out[0] = 1.0
        return out
    z = sam2_clamp(_scaled(up, scale, bias))
    p = torch.sigmoid(z)
    pmax = torch.amax(p, dim=0) if p.shape[0] > 1 else p[0]
    zmax = torch.amax(z, dim=0) if z.shape[0] > 1 else z[0]
    bg = 1.0 - pmax
    # float32 sigmoid is 0.5 for 0 < z < ~1e-7: make the background lose (z > 0) or win (z <= 0) strictly as
    # SAM2's `logit > 0` does (background is channel 0, so an equal value already wins for it).
    below = torch.nextafter(pmax, torch.zeros_like(pmax))
    bg = torch.where(zmax > 0, torch.minimum(bg, below), torch.maximum(bg, pmax))
    out[0] = bg
    out[list(rows)] = p
    return out


# ---- Cutie -----------------------------------------------------------------------------------------------------
def cutie_padded_prob(logits: torch.Tensor, scale: float = 1.0, bias: float = 0.0) -> torch.Tensor:
    """(N, h4, w4) object logits -> (N+1, Hp, Wp) probabilities over the padded frame (Cutie's segment())."""
    prob = torch.sigmoid(_scaled(logits, scale, bias))[None]            # (1, N, h4, w4), as in CUTIE.segment
    new_prob = torch.cat([torch.prod(1 - prob, dim=1, keepdim=True), prob], 1).clamp(CUTIE_EPS, 1 - CUTIE_EPS)
    agg = torch.log(new_prob / (1 - new_prob))
    agg = F.interpolate(agg, scale_factor=CUTIE_STRIDE, mode="bilinear", align_corners=False)
    return F.softmax(agg, dim=1)[0]


def cutie_video_prob(logits: torch.Tensor, recipe: CutieStride4 | Mapping, scale: float = 1.0,
                     bias: float = 0.0) -> torch.Tensor:
    """(N, h4, w4) -> (N+1, H, W) video-res probabilities in the frame's object order (Cutie's step() output)."""
    recipe = as_recipe(recipe)
    hp, wp = recipe.padded_hw
    if tuple(logits.shape[-2:]) != (hp // CUTIE_STRIDE, wp // CUTIE_STRIDE):
        raise ValueError(f"logits are {tuple(logits.shape[-2:])}, recipe padded_hw/4 is "
                         f"{(hp // CUTIE_STRIDE, wp // CUTIE_STRIDE)}")
    if logits.shape[0] == 0:
        prob = torch.ones((1, hp, wp), dtype=torch.float32)
    else:
        prob = cutie_padded_prob(logits, scale, bias)
    left, right, top, bottom = recipe.pad
    prob = prob[:, top:hp - bottom, left:wp - right]
    for h, w in _resize_chain(recipe):
        if tuple(prob.shape[-2:]) != (h, w):
            prob = F.interpolate(prob[None], size=(h, w), mode="bilinear", align_corners=False)[0]
    return prob


def _resize_chain(recipe: CutieStride4) -> list[tuple[int, int]]:
    """Bilinear resizes after unpadding: the recipe's explicit chain, else one step to video_hw when needed."""
    return list(recipe.resize_hw) if recipe.resize_hw else [recipe.video_hw]


def cutie_channels(logits: torch.Tensor, recipe: CutieStride4 | Mapping, rows: Sequence[int], n_channels: int,
                   scale: float = 1.0, bias: float = 0.0) -> torch.Tensor:
    """Cutie's probabilities scattered into the (C, H, W) common-footing map (absent objects: 0)."""
    prob = cutie_video_prob(logits, recipe, scale, bias)
    if len(rows) == n_channels - 1 and list(rows) == list(range(1, n_channels)):
        return prob                       # the frame holds every object in order: no copy
    out = torch.zeros((n_channels,) + tuple(prob.shape[-2:]), dtype=torch.float32)
    out[0] = prob[0]
    if len(rows):
        out[list(rows)] = prob[1:]
    return out


def hflip(x: torch.Tensor) -> torch.Tensor:
    """Mirror a map computed on a horizontally flipped frame back to the video's orientation."""
    return torch.flip(x, dims=[-1])


def as_tensor(a: np.ndarray) -> torch.Tensor:
    """float32 tensor sharing memory with a (decoded, writable) store array."""
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


# ---- dispatch by recipe type -----------------------------------------------------------------------------------
class Sam2Mapping:
    """``sam2_bilinear``: upsampling (the costly, scale-independent part) once per frame, then per scaling."""

    @staticmethod
    def prepare(native: torch.Tensor, recipe: Sam2Bilinear) -> torch.Tensor:
        up = sam2_upsample(native, recipe.video_hw)
        return hflip(up) if recipe.hflip else up

    @staticmethod
    def channels(prepared: torch.Tensor, recipe: Sam2Bilinear, rows: Sequence[int], n_channels: int,
                 scale: float, bias: float) -> torch.Tensor:
        return sam2_channels(prepared, rows, n_channels, scale, bias)


class CutieMapping:
    """``cutie_stride4``: the scaling acts on the native logits, so everything happens per scaling."""

    @staticmethod
    def prepare(native: torch.Tensor, recipe: CutieStride4) -> torch.Tensor:
        return native

    @staticmethod
    def channels(prepared: torch.Tensor, recipe: CutieStride4, rows: Sequence[int], n_channels: int,
                 scale: float, bias: float) -> torch.Tensor:
        out = cutie_channels(prepared, recipe, rows, n_channels, scale, bias)
        return hflip(out) if recipe.hflip else out


MAPPINGS: dict[type[Recipe], type] = {Sam2Bilinear: Sam2Mapping, CutieStride4: CutieMapping}


def mapping_for(recipe: Recipe, where) -> type:
    """The mapping of a recipe's kind; StoreError (naming ``where``) for a kind or variant the ensemble cannot fuse."""
    mapping = MAPPINGS.get(type(recipe))
    if mapping is None:
        raise StoreError(f"the ensemble has no mapping for logit recipe kind {recipe.KIND!r}", where,
                         f"it fuses {', '.join(r.KIND for r in MAPPINGS)}")
    if isinstance(recipe, CutieStride4) and recipe.flip_aug:
        raise StoreError("cutie flip_aug recipes (both passes in one frame) are not supported by the ensemble",
                         where, "store the plain and the mirrored run as two members (hflip=true) in one group")
    return mapping
