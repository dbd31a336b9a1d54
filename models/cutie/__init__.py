"""Cutie (Cheng et al., CVPR 2024) re-implemented for this pipeline.

Loads the official cutie-small / cutie-base checkpoints key for key and reproduces the official
inference (``InferenceCore.step`` protocol, memory manager, evaluation resizing).

Typical use::

    from models.cutie import build_cutie, preset, Prompts, iter_video
    net = build_cutie("base", "cutie-base-mega.pth", device="cuda")
    for f in iter_video(net, frames, Prompts.first_frame_only(first_mask), preset("mose")):
        ...  # f.obj_ids, f.logits + f.recipe, f.prob, f.labels
"""
from .config import BASE, PRESETS, SMALL, CutieSettings, LongTermSettings, ModelConfig, model_config, preset
from .device import disable_tf32, exact_numerics, pick_device
from .inference import InferenceCore, StepResult
from .network import CutieNetwork
from .recipe import RECIPE_KIND, make_recipe, soft_aggregate, stride4_logits_to_prob
from .runner import CutieFrame, CutieRunner, PromptError, Prompts, UndeclaredObjectError, iter_video, run_video
from .weights import CheckpointMismatchError, build_cutie, check_state_dict, load_weights, read_checkpoint

__all__ = [
    "BASE", "PRESETS", "SMALL", "CutieSettings", "LongTermSettings", "ModelConfig", "model_config", "preset",
    "disable_tf32", "exact_numerics", "pick_device",
    "InferenceCore", "StepResult", "CutieNetwork",
    "RECIPE_KIND", "make_recipe", "soft_aggregate", "stride4_logits_to_prob",
    "CutieFrame", "CutieRunner", "PromptError", "Prompts", "UndeclaredObjectError", "iter_video", "run_video",
    "CheckpointMismatchError", "build_cutie", "check_state_dict", "load_weights", "read_checkpoint",
]
