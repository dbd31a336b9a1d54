"""SAM2 as a pipeline segmenter: one video in, raw low-resolution logits and object scores out, frame by frame.

It drives the package's ``SAM2VideoPredictor`` the way the official VOS evaluation (tools/vos_inference.py) does:
one inference state per video, every object's first mask added with ``add_new_mask`` (ascending ids), the
package's preflight (memory encoding of the prompts), then one forward pass in which each object is tracked by
the predictor's own ``_run_single_frame_inference`` with its own memory, no post-processing. The per-frame loop is
``propagate_in_video``'s, with three differences that leave every stored number unchanged:

* objects first given on a later frame (YouTube-VOS) start on that frame, as the official
  ``--track_object_appearing_later_in_video`` mode does (objects are independent in SAM2, so one shared pass equals
  one pass per object); frames before an object's first frame have no entry for it;
* the video-resolution upsampling and the non-overlap clamp (output-only in the package) are left to the ensemble:
  what is stored is ``pred_masks`` (S/4 x S/4, before any clamp) and ``object_score_logits``;
* frames are decoded lazily (:mod:`models.sam2.frames`) and per-frame outputs that the tracker can no longer read
  (see :func:`memory_lookback`) are released, so memory stays flat on long videos.

Exactness against the official flow is checked by tests/models/sam2 (golden fixture, bitwise on the reference CPU).
"""
from __future__ import annotations

import contextlib
import importlib.metadata
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from data.dataset import Video
from data.errors import MassegError
from data.recipes import Sam2Bilinear
from models.stage import FrameOutput

from data.hashing import file_sha256

from .build import build_predictor, load_checkpoint
from .frames import LazyFrames


def pick_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"``: CUDA when available, else CPU."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise MassegError(f"unknown device {device!r}", fix="use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise MassegError(f"device {device} requested but CUDA is not available", fix="use --device cpu or auto")
    return dev


def memory_lookback(model, num_frames: int) -> int:
    """How many frames back from the frame being tracked the tracker reads non-conditioning outputs.

    From ``SAM2Base._prepare_memory_conditioned_features`` (forward tracking, eval): spatial memories come from
    the previous frame and ``num_maskmem - 2`` more frames every ``memory_temporal_stride_for_eval`` frames
    (reaching back ``1 + stride * (num_maskmem - 2)``); object pointers from the previous
    ``min(num_frames, max_obj_ptrs_in_encoder) - 1`` frames. Conditioning (prompted) frames are always kept."""
    mem = 0
    if model.num_maskmem > 1:
        mem = 1 + model.memory_temporal_stride_for_eval * (model.num_maskmem - 2)
    ptr = min(num_frames, model.max_obj_ptrs_in_encoder) - 1 if model.use_obj_ptrs_in_encoder else 0
    return max(mem, ptr, 1)


@contextlib.contextmanager
def _frames_from(frames: LazyFrames):
    """Let ``init_state`` take ``frames`` instead of reading (and preloading) a JPEG folder.

    ``init_state`` gets its frames from the module-level ``load_video_frames``; swapping that one name for the
    duration of the call keeps everything else of the package's state set-up as is."""
    import sam2.sam2_video_predictor as svp

    original = svp.load_video_frames

    def load_video_frames(video_path, image_size, offload_video_to_cpu, **kwargs):
        if image_size != frames.image_size:
            raise AssertionError(f"frames resized to {frames.image_size}, model expects {image_size}")
        return frames, frames.height, frames.width

    svp.load_video_frames = load_video_frames
    try:
        yield
    finally:
        svp.load_video_frames = original


class Sam2Segmenter:
    """A SAM2 member: one (config, checkpoint, input size, mask scaling, flip) combination.

    ``image_size``: model input size S (default: the config's, 1024); low-res logits are S/4 x S/4.
    ``mem_scale`` / ``mem_bias``: MASSeg mask scaling, ``sigmoid_scale_for_mem_enc`` / ``sigmoid_bias_for_mem_enc``
    (default: the config's 20 / -10): what the memory encoder is fed is ``sigmoid(logits) * scale + bias``.
    ``hflip``: frames and prompt masks are mirrored; stored logits stay mirrored (the recipe says so).
    ``objects_from``: recorded in the manifest (the dataset decides which objects are prompted where)."""

    name = "sam2"

    def __init__(self, checkpoint: str | Path, config: str = "sam2.1_hiera_l", image_size: int | None = None,
                 mem_scale: float | None = None, mem_bias: float | None = None, hflip: bool = False,
                 device: str | torch.device | None = None, vos_optimized: bool = False,
                 objects_from: str | None = None, release_outputs: bool = True):
        self.device = pick_device(device)
        if vos_optimized and self.device.type != "cuda":
            raise MassegError("the compiled vos_optimized predictor needs CUDA", fix="drop --vos-optimized on CPU")
        overrides = []
        if image_size is not None:
            if int(image_size) <= 0 or int(image_size) % 32:
                raise MassegError(f"image size {image_size} is not a positive multiple of 32",
                                  fix="use e.g. 512, 768, 1024 or 1280")
            overrides.append(f"++model.image_size={int(image_size)}")
        if mem_scale is not None:
            overrides.append(f"++model.sigmoid_scale_for_mem_enc={float(mem_scale)!r}")
        if mem_bias is not None:
            overrides.append(f"++model.sigmoid_bias_for_mem_enc={float(mem_bias)!r}")
        self.checkpoint = Path(checkpoint).resolve()
        self.predictor, self.config_ref = build_predictor(config, overrides=overrides, vos_optimized=vos_optimized)
        load_checkpoint(self.predictor, self.checkpoint, self.config_ref.label)
        self.predictor.to(self.device)
        if getattr(self.predictor, "clear_non_cond_mem_around_input", False):
            raise MassegError("configs with clear_non_cond_mem_around_input=true are not supported",
                              self.config_ref.path, "use the official VOS setting (false)")
        self.checkpoint_sha256 = file_sha256(self.checkpoint)
        self.hflip = bool(hflip)
        self.vos_optimized = bool(vos_optimized)
        self.objects_from = objects_from
        self.release_outputs = release_outputs
        self.dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        self.image_size = int(self.predictor.image_size)
        self.stats: dict = {}

    # ---- the segmenter protocol (models.stage) ------------------------------------------------------------------
    def settings(self) -> dict:
        p = self.predictor
        return {"config": self.config_ref.label, "image_size": self.image_size,
                "sigmoid_scale_for_mem_enc": float(p.sigmoid_scale_for_mem_enc),
                "sigmoid_bias_for_mem_enc": float(p.sigmoid_bias_for_mem_enc),
                "dtype": str(self.dtype).replace("torch.", ""), "hflip": self.hflip,
                "objects_from": self.objects_from}

    def manifest(self) -> dict:
        return {"model": "sam2", "variant": self.config_ref.variant, "config": self.config_ref.label,
                "checkpoint": str(self.checkpoint), "checkpoint_sha256": self.checkpoint_sha256,
                "settings": self.settings(), "scale": self.image_size, "flip": self.hflip,
                "code_version": _version("masseg-pipeline"), "sam2_version": _version("sam2"),
                "torch_version": torch.__version__,
                "runtime": {"device": str(self.device), "vos_optimized": self.vos_optimized}}

    def recipe(self, video: Video) -> Sam2Bilinear:
        return Sam2Bilinear(video_hw=(int(video.size[0]), int(video.size[1])), hflip=self.hflip)

    def video_meta(self, video: Video) -> dict:
        first = video.first_given
        return {"image_size": self.image_size, "lowres_hw": [self.image_size // 4] * 2,
                "obj_ids": sorted(first), "first_given": {str(k): int(v) for k, v in sorted(first.items())}}

    def run_video(self, video: Video) -> Iterator[FrameOutput]:
        """Yield every frame's (N, S/4, S/4) logits and (N,) object scores; N counts objects given so far."""
        pred = self.predictor
        first_given = video.first_given
        state = self._prompted_state(video)
        # model-side order (the package's loop order) and output order (ascending ids)
        order = [(idx, state["obj_idx_to_id"][idx]) for idx in range(len(state["obj_idx_to_id"]))]
        lookback = memory_lookback(pred, len(video))
        retained = 0
        hw = self.image_size // 4
        for f in range(len(video)):
            active = [(idx, oid) for idx, oid in order if first_given[oid] <= f]
            results = {}
            if active:
                with self._compute():
                    for idx, oid in active:
                        results[oid] = self._track(state, idx, f)
            ids = sorted(results)
            logits = np.empty((len(ids), hw, hw), np.float32)
            scores = np.empty((len(ids),), np.float32)
            for i, oid in enumerate(ids):
                logits[i] = results[oid]["pred_masks"][0, 0].float().cpu().numpy()
                scores[i] = results[oid]["object_score_logits"].float().reshape(-1)[0].item()
            del results
            if self.release_outputs:
                self._release(state, [idx for idx, _ in active], keep_from=f + 1 - lookback)
            retained = max(retained, sum(len(state["output_dict_per_obj"][idx]["non_cond_frame_outputs"])
                                         for idx, _ in active))
            self.stats = {"lookback": lookback, "max_retained_outputs": retained, "frames": f + 1}
            yield FrameOutput(f, video.frame_names[f], ids, logits, scores)

    # ---- internals ----------------------------------------------------------------------------------------------
    def _prompted_state(self, video: Video) -> dict:
        """The package's inference state with every object's first given mask added and the preflight run, as
        ``propagate_in_video`` starts; SAM2Long starts its trees from the same state."""
        pred = self.predictor
        first_given = video.first_given
        prompts = video.prompt_masks()  # DatasetError on a missing/empty prompt, before any model work
        frames = LazyFrames(video, self.image_size, self.hflip)
        with self._compute():
            with _frames_from(frames):
                state = pred.init_state(video_path=video.name)
            for t in sorted(prompts):
                labels = prompts[t][:, ::-1] if self.hflip else prompts[t]
                for oid in sorted(o for o, f in first_given.items() if f == t):
                    pred.add_new_mask(inference_state=state, frame_idx=t, obj_id=oid, mask=labels == oid)
            pred.propagate_in_video_preflight(state)
        return state

    def _compute(self):
        """inference mode, plus bf16 autocast on CUDA as the official evaluation runs (fp32 on CPU). Entered per
        step, never across a ``yield``, so the caller's code never runs under it."""
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        if self.device.type == "cuda":
            stack.enter_context(torch.autocast("cuda", dtype=torch.bfloat16))
        return stack

    def _track(self, state: dict, obj_idx: int, frame_idx: int) -> dict:
        """One object on one frame, as ``propagate_in_video`` does it (forward, memory encoder on)."""
        pred = self.predictor
        out_dict = state["output_dict_per_obj"][obj_idx]
        out = out_dict["cond_frame_outputs"].get(frame_idx)
        if out is None:
            out, _ = pred._run_single_frame_inference(
                inference_state=state, output_dict=out_dict, frame_idx=frame_idx, batch_size=1,
                is_init_cond_frame=False, point_inputs=None, mask_inputs=None, reverse=False, run_mem_encoder=True)
            out_dict["non_cond_frame_outputs"][frame_idx] = out
        state["frames_tracked_per_obj"][obj_idx][frame_idx] = {"reverse": False}
        return out

    @staticmethod
    def _release(state: dict, obj_indices: list[int], keep_from: int) -> None:
        """Drop non-conditioning outputs older than ``keep_from``: no later frame reads them."""
        for idx in obj_indices:
            outputs = state["output_dict_per_obj"][idx]["non_cond_frame_outputs"]
            for t in [t for t in outputs if t < keep_from]:
                del outputs[t]


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None
