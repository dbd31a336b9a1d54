"""SAM2 / SAM2.1 (official `sam2` package) as a member: options, input-size rule and builder."""
from __future__ import annotations

from models.registry import BuildRequest, ImageSize, ModelFamily, Option
from models.sam2.variants import canonical, variant_problem


def _image_size_problem(size: int) -> str | None:
    if size <= 0 or size % 32:
        return f"input size must be a positive multiple of 32 (e.g. 512, 768, 1024, 1280), got {size}"
    return None


def sam2_image_size(member: str) -> ImageSize:
    """The SAM2 input-size rule; shared with members that run SAM2 checkpoints (sam2long)."""
    return ImageSize(1024, f"SAM2 image_size S (multiple of 32; logits are S/4) [{member} default: 1024]",
                     _image_size_problem)


# Options of every member that runs SAM2 checkpoints (sam2long too), declared once so names, help and checks
# cannot drift apart between them.
SAM2_OPTIONS = (
    Option("variant", str, help="SAM2 model config: sam2.1_hiera_t/s/b+/l, sam2_hiera_*, or a config yaml "
                                "[default: the registry checkpoint's]",
           check=variant_problem, from_checkpoint="config", required=True, aliases=("--config",)),
    Option("mem_scale", float, help="MASSeg mask scaling: sigmoid_scale_for_mem_enc [default: the config's, 20]"),
    Option("mem_bias", float, help="MASSeg mask scaling: sigmoid_bias_for_mem_enc [default: the config's, -10]"),
)


def _build(req: BuildRequest):
    from models.sam2.segmenter import Sam2Segmenter

    o = req.options
    return Sam2Segmenter(req.checkpoint, config=o["variant"], image_size=req.image_size, mem_scale=o["mem_scale"],
                         mem_bias=o["mem_bias"], hflip=req.flip, device=req.device,
                         vos_optimized=bool(o["vos_optimized"]), objects_from=req.objects_from)


def _agrees_with_checkpoint(options, info) -> list[str]:
    """A variant name that is not the one the registry checkpoint was trained with would fail at load time."""
    given, theirs = canonical(options.get("variant") or ""), canonical(info.get("config") or "")
    if given and theirs and given != theirs:
        return [f"variant: {given} does not fit checkpoint {info.get('name')} (a {theirs} checkpoint): "
                f"remove variant or set it to {theirs}"]
    return []


def _device(options, device: str) -> list[str]:
    if options.get("vos_optimized") and device.startswith("cpu"):
        return ["vos_optimized: the compiled VOS predictor needs CUDA, the device is cpu: drop vos_optimized"]
    return []


FAMILY = ModelFamily(
    name="sam2",
    summary="SAM2 / SAM2.1 video predictor (official sam2 package), MASSeg mask scaling",
    help="SAM2 / SAM2.1 (official package) with MASSeg mask scaling",
    checkpoint_family="sam2",
    recipe_kind="sam2_bilinear",
    example_checkpoint="sam2.1_hiera_large",
    image_size=sam2_image_size("sam2"),
    options=SAM2_OPTIONS + (
        Option("vos_optimized", bool, default=False, help="compiled VOS predictor (CUDA only)"),
    ),
    build=_build,
    consistency=_agrees_with_checkpoint,
    device_check=_device,
)
