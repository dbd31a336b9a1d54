"""From stored stride-4 object logits to video-resolution probabilities, exactly as Cutie does it.

Cutie's mask decoder predicts one logit map per object at stride 4 of the *padded* internal frame.
Everything after that is a fixed, parameter-free function. The runner stores the per-object logits
together with a small JSON-able *recipe* (geometry of the frame), so that the probabilities Cutie
would output can be rebuilt later (e.g. by the ensemble) without running the network again.

Recipe dict (all lists are plain ints; ``json.dumps`` works on it)::

    {
      "kind": "cutie_stride4",       # this format
      "padded_hw": [Hp, Wp],         # network input size, multiples of 16; logits are (N, Hp/4, Wp/4)
      "pad": [left, right, top, bottom],  # zero padding added to the internal frame (floor half top/left)
      "internal_hw": [h, w],         # internal frame size before padding (h = Hp - top - bottom, ...)
      "resize_hw": [[h1, w1], ...],  # bilinear resizes applied after unpadding, in order (may be empty)
      "video_hw": [H, W],            # final size (= last resize_hw entry, or internal_hw if none)
      "hflip": false,                # logits came from the horizontally mirrored (unpadded) frame of a
                                     # flipped member: mirror the final probabilities back
      "flip_aug": false,             # logits are (2, N, h4, w4): [0] plain, [1] mirrored; average
      "source": "network",           # "network"; "mask" (given annotation, logits are NaN);
                                     # "network+mask" (new objects given on a frame with predictions:
                                     # their logit rows are NaN); "none" (no object given yet, N = 0)
    }

For one video and one settings object every field except ``source`` is the same on all frames.

The function (``stride4_logits_to_prob``), for logits L of shape (N, h4, w4), N >= 0:

1. p_k = sigmoid(L_k)                                       (float32)
2. P = [prod_k (1 - p_k), p_1, ..., p_N]  (background first), clamp to [1e-7, 1 - 1e-7]
3. A = log(P / (1 - P))                                     ("soft aggregation" logits, N+1 channels)
4. A = bilinear upsample x4, align_corners=False            (-> Hp x Wp)
5. Q = softmax over the N+1 channels
6. if flip_aug: Q = (Q[0] + mirror(Q[1])) / 2 (steps 1-5 per pass; Cutie mirrors the padded frame)
7. unpad: Q[:, top:Hp-bottom, left:Wp-right]
8. for each (h, w) in resize_hw: bilinear resize to (h, w), align_corners=False (no antialias)
9. if hflip: mirror Q along width (the member mirrored the frame before padding, so with an odd padding
   the mirror must come after unpadding)

Result: (N+1, H, W) probabilities; channel 0 is background, channel k the k-th object of the frame's
``obj_ids``. ``argmax`` over channels (then channel -> object id) gives Cutie's label map.
Only ``source == "network"`` frames are a pure function of the logits: on annotated frames Cutie
outputs the (soft one-hot of the) given mask instead, which the runner returns as ``prob``.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from data.recipes import CutieStride4

RECIPE_KIND = CutieStride4.KIND   # the one definition of this recipe (fields, checks) is data.recipes
CLAMP = 1e-7
PAD_MULTIPLE = CutieStride4.PAD_MULTIPLE
LOGIT_STRIDE = 4


def soft_aggregate(prob: torch.Tensor, dim: int) -> torch.Tensor:
    """Object probabilities -> (K+1)-channel logits with a background channel first (step 2-3).

    Done in float32 regardless of autocast, as in Cutie.
    """
    prob = prob.float()
    bg = torch.prod(1 - prob, dim=dim, keepdim=True)
    new_prob = torch.cat([bg, prob], dim).clamp(CLAMP, 1 - CLAMP)
    return torch.log(new_prob / (1 - new_prob))


def pad_amounts(h: int, w: int, multiple: int = PAD_MULTIPLE) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) zero padding that makes (h, w) multiples of ``multiple``."""
    ph = (multiple - h % multiple) % multiple
    pw = (multiple - w % multiple) % multiple
    return pw // 2, pw - pw // 2, ph // 2, ph - ph // 2


def pad_to_multiple(x: torch.Tensor, multiple: int = PAD_MULTIPLE) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Zero-pad the last two dims to multiples of ``multiple``; returns (padded, pad)."""
    pad = pad_amounts(x.shape[-2], x.shape[-1], multiple)
    if any(pad):
        x = F.pad(x, pad)
    return x, pad


def unpad(x: torch.Tensor, pad: Sequence[int]) -> torch.Tensor:
    """Inverse of ``pad_to_multiple`` on the last two dims."""
    left, right, top, bottom = (int(p) for p in pad)
    return x[..., top : x.shape[-2] - bottom, left : x.shape[-1] - right]


def make_recipe(
    *,
    padded_hw: Sequence[int],
    pad: Sequence[int],
    resize_hw: Sequence[Sequence[int]] = (),
    hflip: bool = False,
    flip_aug: bool = False,
    source: str = "network",
) -> dict[str, Any]:
    """Build a recipe dict (see module docstring); internal_hw and video_hw are derived. The dict is the JSON form
    of :class:`data.recipes.CutieStride4`, which checks it."""
    return CutieStride4.make(padded_hw, pad, resize_hw, hflip=hflip, flip_aug=flip_aug, source=source).to_dict()


def with_resize(recipe: dict[str, Any], hw: Sequence[int]) -> dict[str, Any]:
    """The recipe with one more bilinear resize appended (no-op when already at that size)."""
    hw = [int(hw[0]), int(hw[1])]
    if hw == recipe["video_hw"]:
        return recipe
    out = dict(recipe)
    out["resize_hw"] = [*recipe["resize_hw"], hw]
    out["video_hw"] = hw
    return out


def _pass_to_padded_prob(logits: torch.Tensor) -> torch.Tensor:
    """Steps 1-5 for one pass: (N, h4, w4) -> (N+1, Hp, Wp)."""
    agg = soft_aggregate(torch.sigmoid(logits.float()), dim=0)
    up = F.interpolate(agg.unsqueeze(0), scale_factor=LOGIT_STRIDE, mode="bilinear", align_corners=False)
    return torch.softmax(up, dim=1)[0]


def finish_padded_prob(prob: torch.Tensor, recipe: dict[str, Any]) -> torch.Tensor:
    """Steps 7-8: unpad a padded (K+1, Hp, Wp) probability map and apply the resize chain."""
    prob = unpad(prob, recipe["pad"])
    for h, w in recipe["resize_hw"]:
        if list(prob.shape[-2:]) != [h, w]:
            prob = F.interpolate(prob.unsqueeze(0), size=(h, w), mode="bilinear", align_corners=False)[0]
    return prob


def stride4_logits_to_prob(logits: np.ndarray | torch.Tensor, recipe: dict[str, Any]) -> np.ndarray | torch.Tensor:
    """Rebuild Cutie's output probabilities (N+1, H, W) from stride-4 object logits and a recipe.

    ``logits``: (N, Hp/4, Wp/4), or (2, N, Hp/4, Wp/4) when ``recipe["flip_aug"]``. A numpy input gives a
    float32 numpy output, a tensor input a float32 tensor on the same device.
    """
    if recipe.get("kind") != RECIPE_KIND:
        raise ValueError(f"not a {RECIPE_KIND} recipe: kind={recipe.get('kind')!r}")
    as_numpy = isinstance(logits, np.ndarray)
    x = torch.from_numpy(np.ascontiguousarray(logits)) if as_numpy else logits
    hp, wp = recipe["padded_hw"]
    expected = (hp // LOGIT_STRIDE, wp // LOGIT_STRIDE)
    if tuple(x.shape[-2:]) != expected:
        raise ValueError(f"logits spatial size {tuple(x.shape[-2:])} does not match recipe padded_hw/4 {expected}")
    with torch.no_grad():
        if recipe.get("flip_aug"):
            if x.ndim != 4 or x.shape[0] != 2:
                raise ValueError(f"flip_aug recipe needs logits of shape (2, N, h4, w4), got {tuple(x.shape)}")
            prob = (_pass_to_padded_prob(x[0]) + torch.flip(_pass_to_padded_prob(x[1]), dims=[-1])) / 2
        else:
            if x.ndim != 3:
                raise ValueError(f"logits must be (N, h4, w4), got {tuple(x.shape)}")
            prob = _pass_to_padded_prob(x)
        prob = finish_padded_prob(prob, recipe)
        if recipe.get("hflip") and not recipe.get("flip_aug"):
            prob = torch.flip(prob, dims=[-1])
    return prob.cpu().numpy() if as_numpy else prob
