"""Reference runs of the `sam2` package's own video predictor, driven the way the official VOS evaluation
(tools/vos_inference.py) drives it: ``init_state`` on a folder of ``<int>.jpg`` (every frame preloaded),
``add_new_mask`` per object, ``propagate_in_video``. The stage's outputs are compared with these bit for bit."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def build_package_predictor(weights: Path, image_size: int, extra=()):
    from sam2.build_sam import build_sam2_video_predictor

    return build_sam2_video_predictor("configs/sam2.1/sam2.1_hiera_t.yaml", ckpt_path=str(weights), device="cpu",
                                      apply_postprocessing=False,
                                      hydra_overrides_extra=["++model.non_overlap_masks=true",
                                                             f"++model.image_size={image_size}", *extra])


def lowres_of(state: dict, obj_id: int, frame: int) -> tuple[np.ndarray, float]:
    """(pred_masks (h, w), object score) of one object on one frame, read from the state like the golden harness."""
    out_dict = state["output_dict_per_obj"][state["obj_id_to_idx"][obj_id]]
    out = out_dict["cond_frame_outputs"].get(frame)
    if out is None:
        out = out_dict["non_cond_frame_outputs"][frame]
    return out["pred_masks"][0, 0].numpy().copy(), float(out["object_score_logits"].reshape(-1)[0])


@torch.inference_mode()
def run_joint(predictor, frame_dir: Path, labels: np.ndarray) -> dict:
    """DAVIS/MOSE mode: all objects of the frame-0 label map in one state, one forward propagation."""
    state = predictor.init_state(video_path=str(frame_dir), async_loading_frames=False)
    for oid in sorted(int(i) for i in np.unique(labels) if i != 0):
        predictor.add_new_mask(inference_state=state, frame_idx=0, obj_id=oid, mask=labels == oid)
    out = {}
    for f, obj_ids, _ in predictor.propagate_in_video(state):
        for oid in obj_ids:
            out[(f, oid)] = lowres_of(state, oid, f)
    return out


@torch.inference_mode()
def run_separate(predictor, frame_dir: Path, first_masks: dict[int, tuple[int, np.ndarray]]) -> dict:
    """Objects-appearing-later mode: each object alone, from its first annotated frame, forward."""
    state = predictor.init_state(video_path=str(frame_dir), async_loading_frames=False)
    out = {}
    for oid in sorted(first_masks):
        t, mask = first_masks[oid]
        predictor.reset_state(state)
        predictor.add_new_mask(inference_state=state, frame_idx=t, obj_id=oid, mask=mask)
        for f, _, _ in predictor.propagate_in_video(state, start_frame_idx=t, reverse=False):
            out[(f, oid)] = lowres_of(state, oid, f)
    return out
