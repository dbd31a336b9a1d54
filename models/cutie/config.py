"""Model shapes and inference settings for Cutie.

Two separate things live here:

* ``ModelConfig``: the architecture hyper-parameters. Only the two official shapes exist
  (``small``: ResNet-18 pixel encoder, ``base``: ResNet-50); everything else is shared.
* ``CutieSettings``: how a video is processed (memory schedule, long-term memory, flip, resizing, AMP),
  with presets that reproduce the official evaluation configurations.

Settings are plain frozen dataclasses so they can be logged, compared and stored as JSON
(``to_dict``/``from_dict``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Mapping


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of one Cutie variant (official model/base.yaml, small.yaml swaps the encoder)."""

    name: str
    pixel_encoder: str  # torchvision trunk: 'resnet18' or 'resnet50'
    ms_dims: tuple[int, int, int]  # channels of f16, f8, f4
    pixel_dim: int = 256
    key_dim: int = 64
    value_dim: int = 256
    sensory_dim: int = 256
    embed_dim: int = 256
    mask_encoder_dim: int = 256  # final_dim of the ResNet-18 mask encoder (layer3)
    num_heads: int = 8
    num_queries: int = 16
    ff_dim: int = 2048
    num_blocks: int = 3
    pe_scale: float = 32.0
    pe_temperature: float = 128.0
    up_dims: tuple[int, int, int] = (256, 128, 128)
    pixel_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    pixel_std: tuple[float, float, float] = (0.229, 0.224, 0.225)


SMALL = ModelConfig(name="small", pixel_encoder="resnet18", ms_dims=(256, 128, 64))
BASE = ModelConfig(name="base", pixel_encoder="resnet50", ms_dims=(1024, 512, 256))
MODEL_CONFIGS = {"small": SMALL, "base": BASE}


def model_config(name: str | ModelConfig) -> ModelConfig:
    """Look up 'small' / 'base' (a ModelConfig passes through)."""
    if isinstance(name, ModelConfig):
        return name
    try:
        return MODEL_CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown Cutie variant {name!r}; expected one of {sorted(MODEL_CONFIGS)}") from None


@dataclass(frozen=True)
class LongTermSettings:
    """XMem-style long-term memory (only read when ``use_long_term`` is on).

    Frame counts include the permanent first frame, as in the official configs; the memory
    manager subtracts one internally.
    """

    count_usage: bool = True
    max_mem_frames: int = 10
    min_mem_frames: int = 5
    num_prototypes: int = 128
    max_num_tokens: int = 10000
    buffer_tokens: int = 2000


@dataclass(frozen=True)
class CutieSettings:
    """Inference settings; field names follow the official eval_config.yaml.

    ``resize_shorter_side`` is the data-loader resize of the official evaluation (frames whose
    shorter side is larger are resized to it, bilinear with antialias; masks nearest; outputs
    resized back bilinearly). It is applied by the runner, not by ``InferenceCore``.
    ``max_internal_size`` is the resize inside ``InferenceCore.step`` (official GUI/scripts).
    ``amp`` only has an effect on CUDA; ``amp_dtype`` is 'float16' or 'bfloat16'.
    """

    mem_every: int = 5
    max_mem_frames: int = 5
    top_k: int = 30
    stagger_updates: int = 5
    use_long_term: bool = False
    long_term: LongTermSettings = field(default_factory=LongTermSettings)
    chunk_size: int = -1
    flip_aug: bool = False
    max_internal_size: int = -1
    resize_shorter_side: int = -1
    amp: bool = False
    amp_dtype: str = "float16"

    def __post_init__(self) -> None:
        if self.mem_every < 1:
            raise ValueError(f"mem_every must be >= 1, got {self.mem_every}")
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if self.stagger_updates < 1:
            raise ValueError(f"stagger_updates must be >= 1, got {self.stagger_updates}")
        if self.use_long_term:
            lt = self.long_term
            if not 1 <= lt.min_mem_frames <= lt.max_mem_frames:
                raise ValueError("long_term needs 1 <= min_mem_frames <= max_mem_frames")
        elif self.max_mem_frames < 1:
            raise ValueError(f"max_mem_frames must be >= 1, got {self.max_mem_frames}")
        if self.amp_dtype not in ("float16", "bfloat16"):
            raise ValueError(f"amp_dtype must be 'float16' or 'bfloat16', got {self.amp_dtype!r}")

    def replace(self, **changes: Any) -> "CutieSettings":
        """Copy with some fields changed; ``long_term`` may be given as a dict."""
        if isinstance(changes.get("long_term"), Mapping):
            changes["long_term"] = replace(self.long_term, **changes["long_term"])
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CutieSettings":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown Cutie settings: {unknown}")
        kwargs = dict(data)
        if isinstance(kwargs.get("long_term"), Mapping):
            kwargs["long_term"] = LongTermSettings(**kwargs["long_term"])
        return cls(**kwargs)


# Official evaluation presets (eval_config.yaml / eval_plus_config.yaml / video_config.yaml).
PRESETS: dict[str, CutieSettings] = {
    # MOSE val and DAVIS 2017 val: 480p data loader, short working memory, no long-term memory.
    "mose": CutieSettings(resize_shorter_side=480, mem_every=5, max_mem_frames=5, top_k=30, stagger_updates=5),
    "davis": CutieSettings(resize_shorter_side=480, mem_every=5, max_mem_frames=5, top_k=30, stagger_updates=5),
    # "Plus" setting (Cutie+): 720p, memory every 3 frames, 10 memory frames.
    "mose_plus": CutieSettings(resize_shorter_side=720, mem_every=3, max_mem_frames=10, top_k=30, stagger_updates=5),
    "davis_plus": CutieSettings(resize_shorter_side=720, mem_every=3, max_mem_frames=10, top_k=30, stagger_updates=5),
    # eval_config.yaml dataset 'generic' (also LVOS): native size, long-term memory.
    "generic": CutieSettings(resize_shorter_side=-1, mem_every=5, use_long_term=True, long_term=LongTermSettings()),
    # video_config.yaml (scripts/GUI on long videos): internal 480p, memory every 10 frames, AMP on CUDA.
    "long_video": CutieSettings(
        max_internal_size=480, mem_every=10, use_long_term=True, long_term=LongTermSettings(), amp=True
    ),
}


def preset(name: str, **overrides: Any) -> CutieSettings:
    """A named preset, optionally with fields overridden."""
    try:
        base = PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown Cutie preset {name!r}; expected one of {sorted(PRESETS)}") from None
    return base.replace(**overrides) if overrides else base
