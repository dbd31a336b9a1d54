"""SAM2Long (training-free memory tree on SAM2/SAM2.1 checkpoints) as a member: options, input-size rule, builder.

Defaults are the official README's evaluation command (num_pathway 3, iou_threshold 0.1, uncertainty 2; also the
defaults of the function its ``main()`` calls, and what the golden fixture was made with); the official argument
parser's 0.3 / 1 are not what the published numbers used. See :mod:`models.sam2long.segmenter`."""
from __future__ import annotations

import math

from models.members.sam2 import SAM2_OPTIONS, _agrees_with_checkpoint, sam2_image_size
from models.registry import BuildRequest, ModelFamily, Option


def _pathways_problem(n: int) -> str | None:
    return None if n >= 1 else f"must be a positive integer (e.g. 3), got {n}"


def _iou_problem(v: float) -> str | None:
    return None if 0.0 <= v < 1.0 else f"must be in [0, 1) (e.g. 0.1), got {v}"


def _uncertainty_problem(v: float) -> str | None:
    return None if math.isfinite(v) and v >= 0.0 else f"must be a finite number >= 0 (e.g. 2), got {v}"


def _build(req: BuildRequest):
    from models.sam2long.segmenter import Sam2LongSegmenter

    o = req.options
    return Sam2LongSegmenter(req.checkpoint, config=o["variant"], image_size=req.image_size,
                             mem_scale=o["mem_scale"], mem_bias=o["mem_bias"], hflip=req.flip, device=req.device,
                             objects_from=req.objects_from, num_pathway=o["num_pathway"],
                             iou_threshold=o["iou_threshold"], uncertainty=o["uncertainty"])


FAMILY = ModelFamily(
    name="sam2long",
    summary="SAM2Long: SAM2/SAM2.1 with a training-free memory tree (pathways, cumulative IoU, back-trace)",
    help="SAM2Long memory tree on SAM2/SAM2.1 checkpoints",
    checkpoint_family="sam2",
    recipe_kind="sam2_bilinear",
    example_checkpoint="sam2.1_hiera_large",
    image_size=sam2_image_size("sam2long"),
    options=SAM2_OPTIONS + (
        Option("num_pathway", int, default=3, help="memory pathways kept per object [default: 3, official README]",
               check=_pathways_problem),
        Option("iou_threshold", float, default=0.1,
               help="a frame is memory only if its predicted IoU is above this [default: 0.1, official README; "
                    "its argument parser says 0.3]", check=_iou_problem),
        Option("uncertainty", float, default=2.0,
               help="frames whose largest |object score| is at most this branch on distinct masks [default: 2, "
                    "official README; its argument parser says 1]", check=_uncertainty_problem),
    ),
    build=_build,
    consistency=_agrees_with_checkpoint,
)
