"""SAM2Long as a pipeline member: the SAM2 member's model, prompts and store contract, SAM2Long's memory tree.

SAM2Long (Ding et al., training-free, same SAM2/SAM2.1 checkpoints) keeps ``num_pathway`` memory pathways per
object, branches on the mask decoder's three candidates, scores pathways by cumulative log IoU, keeps the best few
and, at the end of the video, traces the best pathway back. This member follows the official code's per-object
flow (``tools/vos_inference.py`` always runs ``vos_separate_inference_per_object``) with the algorithm, quirks and
constants of ../shared/golden/sam2long/README.md:

* objects are independent: each has its own tree from its first given frame ``s``; the image encoder runs once
  per frame for all objects (it has no per-object input, so the numbers are those of one run per object);
* frame ``s`` is the prompt (the package's ``add_new_mask`` + preflight), ``s+1`` a plain SAM2 step, frames
  ``t >= s+2`` one SAM2 step per pathway (:class:`models.sam2long.model.Sam2LongModel`), then scoring and pruning
  (:mod:`models.sam2long.tree`);
* what is stored is what the SAM2 member stores: per frame and object the S/4 x S/4 low-res logits of the final
  pathway and its object score, recipe ``sam2_bilinear``; fusion needs nothing new.

Defaults: ``num_pathway=3``, ``iou_threshold=0.1``, ``uncertainty=2.0``. The official argument parser says 3 / 0.3
/ 1, but the official README's evaluation command (the published numbers) and the defaults of the function that
``main()`` calls say 3 / 0.1 / 2, and the golden fixture was made with those; the parser's values are a stale
leftover that the documented command overrides.

Pathways that are exact copies (all of them on frame s+2, and on frames where pruning kept one parent's children
several times) are computed once: the official code runs them again and gets the same bits.

Memory: only the memory features and pointers some live pathway can still read are kept (at most ~16 per pathway,
:meth:`Tree.live_canons`); the low-res logits of every kept slot wait for the back-trace in an anonymous temporary
file (:mod:`models.sam2long.spill`) in ``scratch_dir`` (the stage points it at the store's temp area).
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from tqdm import tqdm

from data.dataset import Video
from data.errors import MassegError
from models.sam2.segmenter import Sam2Segmenter
from models.stage import FrameOutput

from .model import Sam2LongModel
from .spill import LogitSpill
from .tree import Slot, Tree, score_entries, select_entries

DEFAULTS = {"num_pathway": 3, "iou_threshold": 0.1, "uncertainty": 2.0}


def check_options(num_pathway, iou_threshold, uncertainty) -> tuple[int, float, float]:
    """Validate the three SAM2Long options; one clear error each."""
    try:
        p = int(num_pathway)
        if p != float(num_pathway) or p < 1:
            raise ValueError
    except (TypeError, ValueError):
        raise MassegError(f"num_pathway {num_pathway!r} is not a positive integer", fix="use e.g. 3") from None
    try:
        thr, unc = float(iou_threshold), float(uncertainty)
    except (TypeError, ValueError):
        raise MassegError(f"iou_threshold {iou_threshold!r} / uncertainty {uncertainty!r} must be numbers",
                          fix="use e.g. 0.1 and 2") from None
    if not 0.0 <= thr < 1.0:
        raise MassegError(f"iou_threshold {iou_threshold!r} is outside [0, 1)", fix="use e.g. 0.1")
    if not unc >= 0.0 or unc == float("inf"):
        raise MassegError(f"uncertainty {uncertainty!r} must be a finite number >= 0", fix="use e.g. 2")
    return p, thr, unc


class _Object:
    """One object's tree, its prompt output and the memory payloads still readable (canon -> (features, ptr))."""

    def __init__(self, obj_id: int, idx: int, tree: Tree, prompt_out: dict):
        self.obj_id = obj_id
        self.idx = idx
        self.tree = tree
        self.prompt_out = prompt_out
        self.payload: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}


class Sam2LongSegmenter(Sam2Segmenter):
    """A SAM2Long member. Same arguments as :class:`Sam2Segmenter` (no ``vos_optimized``: the compiled predictor
    is a different class), plus ``num_pathway``, ``iou_threshold``, ``uncertainty`` (see the module docstring).

    ``autocast``: None (default) runs bf16 autocast on CUDA as the official evaluation does, fp32 on CPU; False
    forces fp32 on CUDA too (the gpu test compares the two).
    ``trace``: record the whole tree (per object and frame: candidates, slots, memory frames) in ``self.trace``
    for comparison with the official code; off in production runs (it grows with the video)."""

    name = "sam2long"

    def __init__(self, checkpoint: str | Path, config: str = "sam2.1_hiera_l", image_size: int | None = None,
                 mem_scale: float | None = None, mem_bias: float | None = None, hflip: bool = False,
                 device: str | torch.device | None = None, objects_from: str | None = None,
                 num_pathway: int = DEFAULTS["num_pathway"], iou_threshold: float = DEFAULTS["iou_threshold"],
                 uncertainty: float = DEFAULTS["uncertainty"], scratch_dir: str | Path | None = None,
                 trace: bool = False, autocast: bool | None = None):
        self.num_pathway, self.iou_threshold, self.uncertainty = check_options(num_pathway, iou_threshold,
                                                                               uncertainty)
        super().__init__(checkpoint, config=config, image_size=image_size, mem_scale=mem_scale, mem_bias=mem_bias,
                         hflip=hflip, device=device, vos_optimized=False, objects_from=objects_from)
        try:
            self.model = Sam2LongModel(self.predictor, math_attention=self.device.type == "cpu")
        except ValueError as exc:
            raise MassegError(f"config {self.config_ref.label} does not fit SAM2Long: {exc}", self.config_ref.path,
                              "use a packaged SAM2/SAM2.1 config") from None
        if autocast is False:  # fp32 on CUDA too (the official evaluation autocasts to bf16 there)
            self.dtype = torch.float32
        elif autocast and self.device.type != "cuda":
            raise MassegError("bf16 autocast is only used on CUDA", fix="drop autocast on CPU")
        self.scratch_dir = scratch_dir
        self.trace_enabled = bool(trace)
        self.trace: dict = {}

    # ---- the segmenter protocol ---------------------------------------------------------------------------------
    def _compute(self):
        """inference mode, plus bf16 autocast on CUDA unless fp32 was asked for (``autocast=False``)."""
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        if self.device.type == "cuda" and self.dtype == torch.bfloat16:
            stack.enter_context(torch.autocast("cuda", dtype=torch.bfloat16))
        return stack

    def settings(self) -> dict:
        return dict(super().settings(), num_pathway=self.num_pathway, iou_threshold=self.iou_threshold,
                    uncertainty=self.uncertainty)

    def manifest(self) -> dict:
        return dict(super().manifest(), model="sam2long")

    def run_video(self, video: Video) -> Iterator[FrameOutput]:
        """Track every object through the whole video, then yield every frame's (N, S/4, S/4) logits of the
        back-traced best pathway and its object scores (N counts objects given so far)."""
        hw = self.image_size // 4
        num_frames = len(video)
        with LogitSpill((hw, hw), self.scratch_dir) as spill:
            objects = []
            # the stage's bar counts written frames, which all come at the end: show the tracking pass too
            with tqdm(total=num_frames, desc=f"sam2long tracking {video.name}", unit="frame", leave=False,
                      position=2, disable=None, dynamic_ncols=True) as bar:
                for _ in self.track(video, spill, objects):
                    bar.update(1)
            paths = {o.obj_id: o.tree.backtrace(num_frames - 1) for o in objects}
            if self.trace_enabled:
                for o in objects:
                    self.trace.setdefault(o.obj_id, {})["sel_slot"] = paths[o.obj_id]
            for f in range(num_frames):
                ids = sorted(o.obj_id for o in objects if o.tree.start <= f)
                logits = np.empty((len(ids), hw, hw), np.float32)
                scores = np.empty((len(ids),), np.float32)
                for i, oid in enumerate(ids):
                    obj = next(o for o in objects if o.obj_id == oid)
                    k = paths[oid][f]
                    if k < 0:
                        logits[i] = spill.get(obj.tree.prompt_record)
                        scores[i] = obj.prompt_out["object_score_logits"].float().reshape(-1)[0].item()
                    else:
                        slot = obj.tree.frames[f][k]
                        logits[i] = spill.get(slot.record)
                        scores[i] = slot.osl
                yield FrameOutput(f, video.frame_names[f], ids, logits, scores)

    def track(self, video: Video, spill: LogitSpill, objects: list) -> Iterator[int]:
        """The forward pass: fills ``objects`` (one tree per object, ascending ids) and yields each frame index
        once that frame is tracked for every object present. Stopping early leaves the trees of the frames done
        (the golden tests compare a prefix of a clip this way: a prefix of a longer video, not a shorter one)."""
        pred = self.predictor
        first_given = video.first_given
        state = self._prompted_state(video)
        num_frames = len(video)
        max_valid = min(num_frames, pred.max_obj_ptrs_in_encoder) - 1
        self.trace = {}
        self.stats = {}
        for idx in sorted(state["obj_idx_to_id"], key=lambda i: state["obj_idx_to_id"][i]):
            oid = state["obj_idx_to_id"][idx]
            s = first_given[oid]
            prompt_out = state["output_dict_per_obj"][idx]["cond_frame_outputs"][s]
            tree = Tree(s, self.num_pathway, self.iou_threshold, max_valid)
            tree.prompt_record = spill.put(prompt_out["pred_masks"][0, 0].float().cpu())
            objects.append(_Object(oid, idx, tree, prompt_out))
        peak_payload = 0
        for f in range(num_frames):
            active = [o for o in objects if o.tree.start < f]
            if active:
                with self._compute():
                    feats = pred._get_image_feature(state, f, 1)
                    for obj in active:
                        self._step(state, obj, f, feats, num_frames, spill)
                peak_payload = max(peak_payload, sum(len(o.payload) for o in objects))
            self.stats = {"frames": f + 1, "max_payloads": peak_payload, "spilled_records": spill.records,
                          "spilled_mib": round(spill.bytes_on_disk / 2**20, 2)}
            yield f

    # ---- one object on one frame --------------------------------------------------------------------------------
    def _step(self, state: dict, obj: _Object, t: int, feats, num_frames: int, spill: LogitSpill) -> None:
        tree, model = obj.tree, self.model
        s = tree.start
        storage = state["storage_device"]
        trace = self.trace.setdefault(obj.obj_id, {}) if self.trace_enabled else None
        if t == s + 1:
            out, ious = model.plain_step(state, state["output_dict_per_obj"][obj.idx], t)
            canon = tree.canon(-1, -1)
            tree.frames[t] = [Slot(iou=float(ious.max()), osl=float(out["object_score_logits"].reshape(-1)[0]),
                                   acc=0.0, parent=0, cand=-1,
                                   record=spill.put(out["pred_masks"][0, 0].float().cpu()), canon=canon)]
            obj.payload[canon] = (out["maskmem_features"], out["obj_ptr"])
            state["output_dict_per_obj"][obj.idx]["non_cond_frame_outputs"].pop(t, None)
            if trace is not None:
                sl = tree.frames[t][0]
                trace["frame1_cand_iou"] = [float(v) for v in ious.reshape(-1)]
                trace.setdefault("frames", {})[t] = {"slots": [(0, -1, 0.0, sl.iou, sl.osl)]}
            return
        P = self.num_pathway
        results: dict[int, dict] = {}
        calls = []
        for p in range(P):
            parent = tree.pathway_slot(t, p).canon
            if parent not in results:
                results[parent] = model.pathway_step(feats, t, s, num_frames, obj.prompt_out, tree.memory(t, p),
                                                     obj.payload)
            calls.append(results[parent])
        ious = [[float(v) for v in r["ious"].reshape(-1)] for r in calls]
        osls = [float(r["object_score"].reshape(-1)[0]) for r in calls]
        acc = [tree.acc(t, p) for p in range(P)]
        kept, uncertain = select_entries(score_entries(acc, ious, osls), P, self.uncertainty, osls)
        slots, made = [], {}
        for e in kept:
            parent = tree.pathway_slot(t, e.pathway).canon
            canon = tree.canon(parent, e.cand)
            if canon not in made:
                r, j = results[parent], e.cand
                feat = model.encode(feats, r["high_res"][:, j:j + 1], r["object_score"], storage)
                obj.payload[canon] = (feat, r["obj_ptrs"][:, j])
                made[canon] = spill.put(r["low_res"][0, j].float().cpu())
            slots.append(Slot(iou=ious[e.pathway][e.cand], osl=osls[e.pathway], acc=e.score, parent=e.pathway,
                              cand=e.cand, record=made[canon], canon=canon))
        tree.frames[t] = slots
        live = tree.live_canons(t)
        for c in [c for c in obj.payload if c not in live]:
            del obj.payload[c]
        if trace is not None:
            trace.setdefault("frames", {})[t] = {
                "uncertain": uncertain, "cand_iou": ious, "cand_osl": osls,
                "mem_frames": [r["spatial_frames"] for r in calls], "ptr_frames": [r["pointer_frames"] for r in calls],
                "slots": [(sl.parent, sl.cand, sl.acc, sl.iou, sl.osl) for sl in slots]}


def tree_arrays(trace: dict, obj_ids: list[int], num_frames: int, num_pathway: int) -> dict:
    """The recorded trees in the golden fixture's array layout (README section 5): T x N x ..., -1 / NaN unused."""
    T, N, P = num_frames, len(obj_ids), num_pathway
    out = {"sel_slot": np.full((T, N), -1, np.int16), "uncertain": np.zeros((T, N), bool),
           "cand_iou": np.full((T, N, P, 3), np.nan, np.float32), "cand_osl": np.full((T, N, P), np.nan, np.float32),
           "slot_src_pathway": np.full((T, N, P), -1, np.int16), "slot_cand": np.full((T, N, P), -1, np.int16),
           "slot_acc": np.full((T, N, P), np.nan, np.float64), "slot_iou": np.full((T, N, P), np.nan, np.float32),
           "slot_osl": np.full((T, N, P), np.nan, np.float32), "mem_frames": np.full((T, N, P, 6), -1, np.int16),
           "ptr_frames": np.full((T, N, P, 15), -1, np.int16), "frame1_cand_iou": np.full((N, 3), np.nan, np.float32)}
    for n, oid in enumerate(obj_ids):
        tr = trace[oid]
        for t, k in tr.get("sel_slot", {}).items():
            out["sel_slot"][t, n] = k
        if "frame1_cand_iou" in tr:
            out["frame1_cand_iou"][n] = tr["frame1_cand_iou"]
        for t, rec in tr.get("frames", {}).items():
            for k, (parent, cand, acc, iou, osl) in enumerate(rec["slots"]):
                out["slot_src_pathway"][t, n, k] = parent
                out["slot_cand"][t, n, k] = cand
                out["slot_acc"][t, n, k] = acc
                out["slot_iou"][t, n, k] = iou
                out["slot_osl"][t, n, k] = osl
            if "cand_iou" not in rec:  # frame s+1
                continue
            out["uncertain"][t, n] = rec["uncertain"]
            out["cand_iou"][t, n] = rec["cand_iou"]
            out["cand_osl"][t, n] = rec["cand_osl"]
            for p in range(P):
                m, q = rec["mem_frames"][p], rec["ptr_frames"][p]
                out["mem_frames"][t, n, p, :len(m)] = m
                out["ptr_frames"][t, n, p, :len(q)] = q
    return out
