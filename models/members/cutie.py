"""Cutie (our re-implementation, official checkpoints) as a member: options, input-size rule and builder."""
from __future__ import annotations

from models.registry import BuildRequest, ImageSize, ModelFamily, Option

# preset -> the data-loader shorter side it evaluates at (0: native size); the presets themselves are
# models.cutie.config.PRESETS (tests/models/test_registry.py checks both agree)
PRESET_SIZES = {"mose": 480, "davis": 480, "mose_plus": 720, "davis_plus": 720, "generic": 0, "long_video": 0}
SIZES = ("small", "base")


def _image_size_problem(size: int) -> str | None:
    return None if size >= 0 else f"shorter side must be a positive number of pixels (0 = native size), got {size}"


def _build(req: BuildRequest):
    from models.cutie.segmenter import CutieSegmenter

    o = req.options
    # 0 = no data-loader resize (native size), whatever the preset says
    scale = None if req.image_size is None else (req.image_size or -1)
    return CutieSegmenter(req.checkpoint, size=o["size"], preset=o["preset"], scale=scale, hflip=req.flip,
                          device=req.device, objects_from=req.objects_from)


def _agrees_with_checkpoint(options, info) -> list[str]:
    theirs = info.get("model_size")
    if theirs and options.get("size") and options["size"] != theirs:
        return [f"size: {options['size']} does not fit checkpoint {info.get('name')} (a cutie-{theirs} "
                f"checkpoint): remove size or set it to {theirs}"]
    return []


FAMILY = ModelFamily(
    name="cutie",
    summary="Cutie (CVPR 2024), our re-implementation loading the official checkpoints",
    help="Cutie with the official checkpoints and evaluation presets",
    checkpoint_family="cutie",
    recipe_kind="cutie_stride4",
    example_checkpoint="cutie-base-mega",
    image_size=ImageSize(lambda o: PRESET_SIZES.get(o.get("preset"), 480),
                         "Cutie shorter side the frames are resized to, 0 = native [cutie default: the preset's, "
                         "480 for mose/davis, 720 for the plus presets, native for generic/long_video]",
                         _image_size_problem),
    options=(
        Option("size", str, default="base", choices=SIZES, from_checkpoint="model_size",
               help="cutie model size [default: the registry checkpoint's, else base]"),
        Option("preset", str, default="mose", choices=tuple(PRESET_SIZES),
               help="cutie inference settings: official eval defaults, the 'plus' setting, long videos"),
    ),
    build=_build,
    consistency=_agrees_with_checkpoint,
)
