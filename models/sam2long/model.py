"""SAM2Long's changes to SAM2's memory read-out, added to the `sam2` package's predictor by composition.

The package's own ``SAM2Base._prepare_memory_conditioned_features`` assembles the memory of a frame from
``output_dict`` by frame distance: the non-conditioning output ``d`` frames back gets temporal slot ``7 - d``
(``d <= 6``) and its pointer temporal position ``d`` (``d <= 15``, stopping at frame index < 0), the prompt frame
gets slot 0 and its true distance. SAM2Long's rule is the same with *ranks* in a chosen list of memory frames V
instead of distances (README 2.4.2-2.4.3). So, instead of re-writing that method, each pathway call gets a
*virtual* output dict: V[-d] sits at virtual frame ``f - d`` with ``f = len(V) - 1`` (so the oldest entry, at -1,
is a spatial memory but never a pointer: the official quirk), and the prompt at ``f - (t - s)``. The package then
builds exactly SAM2Long's memory, positional encodings and pointer tokens.

What the package cannot do is added with hooks that leave its state dict alone:

* key re-weighting (README 2.4.4): a forward pre-hook on every memory-attention layer's cross-attention scales
  each memory token of the key input by its frame's weight (``linspace(0.95, 1.05, n)`` by ascending object
  score rank), using the real token count of a memory frame (H*W of the memory feature map; the official code
  hard-codes 4096, which only holds at image size 1024);
* the three per-candidate object pointers (README 2.4.5): a forward hook on the mask decoder keeps its output
  tokens; the pointers are ``obj_ptr_proj`` of all three, hard-gated by the object score;
* on CPU, SAM2Long's base code runs the two-way transformer's and memory attention's SDPA with the math kernel
  (the image encoder's attention is not affected); the same is done here so CPU results match it bit for bit
  where the CPU's kernels allow.
"""
from __future__ import annotations

import functools

import torch

from .tree import PROMPT_SCORE, Slot


def _math_sdpa(forward):
    @functools.wraps(forward)
    def wrapped(*args, **kwargs):
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with sdpa_kernel([SDPBackend.MATH]):
            return forward(*args, **kwargs)

    return wrapped


def rank_weights(scores: list[float]) -> torch.Tensor:
    """Per-entry weights ``linspace(0.95, 1.05, n)`` assigned by ascending score rank (the official argsort +
    scatter on a float32 row)."""
    row = torch.tensor([scores], dtype=torch.float32)
    standard = torch.linspace(0.95, 1.05, len(scores)).to(row)
    out = torch.zeros_like(row)
    out.scatter_(1, torch.argsort(row, dim=1), standard.unsqueeze(0))
    return out[0]


class Sam2LongModel:
    """A loaded ``SAM2VideoPredictor`` plus the hooks SAM2Long needs (installed once; inert unless armed)."""

    def __init__(self, predictor, math_attention: bool):
        from sam2.modeling.sam.transformer import Attention

        self.predictor = predictor
        if predictor.memory_temporal_stride_for_eval != 1:
            raise ValueError("SAM2Long needs memory_temporal_stride_for_eval = 1 (the packaged configs' value)")
        self.key_weights: torch.Tensor | None = None
        self.decoder_out = None
        self._handles = [predictor.sam_mask_decoder.register_forward_hook(self._keep_decoder_out)]
        for layer in predictor.memory_attention.layers:
            self._handles.append(layer.cross_attn_image.register_forward_pre_hook(self._weight_keys,
                                                                                   with_kwargs=True))
        if math_attention:
            for mod in list(predictor.sam_mask_decoder.modules()) + list(predictor.memory_attention.modules()):
                if isinstance(mod, Attention):
                    mod.forward = _math_sdpa(mod.forward)

    # ---- hooks ------------------------------------------------------------------------------------------------
    def _keep_decoder_out(self, module, args, output):
        self.decoder_out = output  # (masks, iou_pred, sam_tokens_out, object_score_logits)

    def _weight_keys(self, module, args, kwargs):
        w = self.key_weights
        if w is None:
            return None
        k = kwargs["k"]
        if k.shape[1] != w.shape[1]:
            raise RuntimeError(f"key re-weighting: {w.shape[1]} weights for {k.shape[1]} memory tokens")
        return args, dict(kwargs, k=w.to(k.device) * k)

    # ---- steps ------------------------------------------------------------------------------------------------
    def plain_step(self, state: dict, out_dict: dict, frame: int) -> tuple[dict, torch.Tensor]:
        """Frame s+1: the package's own SAM2 step (argmax-IoU candidate, memory encoded). Returns its compact
        output and the decoder's 3 IoU predictions."""
        self.decoder_out = None
        out, _ = self.predictor._run_single_frame_inference(
            inference_state=state, output_dict=out_dict, frame_idx=frame, batch_size=1, is_init_cond_frame=False,
            point_inputs=None, mask_inputs=None, reverse=False, run_mem_encoder=True)
        return out, self.decoder_out[1]

    def pathway_step(self, feats, t: int, start: int, num_frames: int, prompt_out: dict,
                     memory: list[tuple[int, Slot]], payload: dict) -> dict:
        """One pathway's track step on frame ``t`` with memory frames ``memory`` (V, oldest first); ``payload``
        maps a slot's ``canon`` to its stored memory features and pointer. Returns the 3 candidates."""
        pred = self.predictor
        _, _, vision_feats, vision_pos, feat_sizes = feats
        f = len(memory) - 1
        non_cond = {}
        for d, (_, slot) in enumerate(reversed(memory), 1):
            feat, ptr = payload[slot.canon]
            non_cond[f - d] = {"maskmem_features": feat, "maskmem_pos_enc": prompt_out["maskmem_pos_enc"],
                               "obj_ptr": ptr}
        virtual = {"cond_frame_outputs": {f - (t - start): prompt_out}, "non_cond_frame_outputs": non_cond}
        spatial = [slot.osl for _, slot in memory[-(pred.num_maskmem - 1):]]
        pointers = [slot.osl for _, slot in reversed(memory[1:])]
        hw = prompt_out["maskmem_features"].shape[-2] * prompt_out["maskmem_features"].shape[-1]
        ptr_tokens = pred.hidden_dim // pred.mem_dim if pred.mem_dim < pred.hidden_dim else 1
        wf = rank_weights([PROMPT_SCORE] + spatial)
        wp = rank_weights([PROMPT_SCORE] + pointers)
        self.key_weights = torch.cat([wf.repeat_interleave(hw), wp.repeat_interleave(ptr_tokens)])[None, :, None]
        self.decoder_out = None
        try:
            _, sam_outputs, _, _ = pred._track_step(
                frame_idx=f, is_init_cond_frame=False, current_vision_feats=vision_feats,
                current_vision_pos_embeds=vision_pos, feat_sizes=feat_sizes, point_inputs=None, mask_inputs=None,
                output_dict=virtual, num_frames=num_frames, track_in_reverse=False, prev_sam_mask_logits=None)
        finally:
            self.key_weights = None
        low_res, high_res, ious, _, _, _, object_score = sam_outputs
        tokens = self.decoder_out[2]
        # all three candidates' pointers, hard-gated by presence (README 2.4.5)
        ptrs = pred.obj_ptr_proj(tokens)
        present = (object_score > 0).float()[:, None]
        ptrs = present * ptrs
        ptrs = ptrs + (1 - present) * pred.no_obj_ptr
        return {"low_res": low_res, "high_res": high_res, "ious": ious, "object_score": object_score,
                "obj_ptrs": ptrs, "spatial_frames": [fr for fr, _ in memory[-(pred.num_maskmem - 1):]],
                "pointer_frames": [fr for fr, _ in reversed(memory[1:])]}

    def encode(self, feats, high_res: torch.Tensor, object_score: torch.Tensor, storage_device) -> torch.Tensor:
        """Memory features of one kept candidate (sigmoid x scale + bias; no-object embedding), stored bf16."""
        _, _, vision_feats, _, feat_sizes = feats
        feat, _ = self.predictor._encode_new_memory(
            current_vision_feats=vision_feats, feat_sizes=feat_sizes, pred_masks_high_res=high_res,
            object_score_logits=object_score, is_mask_from_pts=False)
        return feat.to(torch.bfloat16).to(storage_device, non_blocking=True)

    def close(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

