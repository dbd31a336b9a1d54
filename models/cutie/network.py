"""The Cutie network: all learnable modules under their checkpoint names, and the per-frame operations.

The network is stateless; memory and the frame loop live in ``memory.py`` / ``inference.py``.
Images given to the ``encode_*`` methods are already normalised (``normalize``), so a frame is
normalised once even when it is both segmented and memorised.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ModelConfig, model_config
from .decoder import MaskDecoder, PixelFeatureFuser
from .encoders import KeyProjection, MaskEncoder, PixelEncoder
from .modules import GConv2d
from .recipe import LOGIT_STRIDE, soft_aggregate
from .transformer import ObjectSummarizer, QueryTransformer


def others_of(masks: torch.Tensor) -> torch.Tensor:
    """For each object (dim 1), the clamped sum of all other objects' masks."""
    return (masks.sum(dim=1, keepdim=True) - masks).clamp(0, 1)


class _SensoryAux(nn.Module):
    def __init__(self, sensory_dim: int, embed_dim: int):
        super().__init__()
        self.projection = GConv2d(sensory_dim, embed_dim + 1, kernel_size=1)


class AuxComputer(nn.Module):
    """Holds the training-only auxiliary-loss head so official checkpoints load strictly; never run."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.sensory_aux = _SensoryAux(cfg.sensory_dim, cfg.embed_dim)


class CutieNetwork(nn.Module):
    """cutie-small / cutie-base. ``state_dict()`` keys and shapes equal the official checkpoints'."""

    def __init__(self, cfg: ModelConfig | str = "small"):
        super().__init__()
        cfg = model_config(cfg)
        self.cfg = cfg
        self.pixel_encoder = PixelEncoder(cfg)
        self.pix_feat_proj = nn.Conv2d(cfg.ms_dims[0], cfg.pixel_dim, kernel_size=1)
        self.key_proj = KeyProjection(cfg)
        self.mask_encoder = MaskEncoder(cfg)
        self.mask_decoder = MaskDecoder(cfg)
        self.pixel_fuser = PixelFeatureFuser(cfg)
        self.object_transformer = QueryTransformer(cfg)
        self.object_summarizer = ObjectSummarizer(cfg)
        self.aux_computer = AuxComputer(cfg)
        self.register_buffer("pixel_mean", torch.tensor(cfg.pixel_mean).view(-1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(cfg.pixel_std).view(-1, 1, 1), persistent=False)
        # Channels-last (NHWC) maps and convolution weights: oneDNN convolves them without reordering, and
        # max-pooling / bilinear upsampling have fast NHWC kernels on CPU (4-6x faster than NCHW here).
        # Only the memory layout changes; checkpoints load into it and state_dict() keys/shapes are the same.
        self.to(memory_format=torch.channels_last)
        self.eval()

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] -> ImageNet-normalised, channels-last (the layout every map keeps from here on)."""
        return ((image - self.pixel_mean) / self.pixel_std).contiguous(memory_format=torch.channels_last)

    def encode_image(self, image: torch.Tensor):
        """Normalised (B,3,H,W) -> ((f16, f8, f4), pix_feat, key, shrinkage, selection)."""
        f16, f8, f4 = self.pixel_encoder(image)
        pix_feat = self.pix_feat_proj(f16)
        key, shrinkage, selection = self.key_proj(f16)
        return (f16, f8, f4), pix_feat, key, shrinkage, selection

    def encode_mask(
        self,
        image: torch.Tensor,
        pix_feat: torch.Tensor,
        sensory: torch.Tensor,
        masks: torch.Tensor,
        *,
        deep_update: bool = True,
        chunk_size: int = -1,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Memorise soft masks (B,K,H,W) -> (mask values, new sensory, object summaries (B,K,Q,C+1))."""
        value, new_sensory = self.mask_encoder(
            image, pix_feat, sensory, masks, others_of(masks), deep_update=deep_update, chunk_size=chunk_size
        )
        summaries = self.object_summarizer(masks, value)
        return value, new_sensory, summaries

    def pixel_fusion(
        self,
        pix_feat: torch.Tensor,
        visual_readout: torch.Tensor,
        sensory: torch.Tensor,
        last_mask16: torch.Tensor,
        *,
        chunk_size: int = -1,
    ) -> torch.Tensor:
        """Fuse the visual readout with sensory memory and the previous mask (already at stride 16)."""
        return self.pixel_fuser(
            pix_feat, visual_readout, sensory, last_mask16, others_of(last_mask16), chunk_size=chunk_size
        )

    def readout_query(self, pixel_readout: torch.Tensor, obj_memory: torch.Tensor) -> torch.Tensor:
        return self.object_transformer(pixel_readout, obj_memory)

    def segment(
        self,
        f8: torch.Tensor,
        f4: torch.Tensor,
        readout: torch.Tensor,
        sensory: torch.Tensor,
        *,
        chunk_size: int = -1,
        update_sensory: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Decode -> (new sensory, stride-4 object logits (B,K,h4,w4), probabilities (B,K+1,H,W))."""
        sensory, logits = self.mask_decoder(
            f8, f4, readout, sensory, chunk_size=chunk_size, update_sensory=update_sensory
        )
        agg = soft_aggregate(torch.sigmoid(logits), dim=1)
        agg = F.interpolate(agg, scale_factor=LOGIT_STRIDE, mode="bilinear", align_corners=False)
        return sensory, logits, F.softmax(agg, dim=1)

    def train(self, mode: bool = True):  # noqa: D401 - torch API
        """Inference-only implementation: always stays in eval mode (BatchNorm statistics frozen)."""
        return super().train(False)
