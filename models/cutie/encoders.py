"""Image and mask encoders.

The ResNet trunks (``resnet.py``) follow torchvision's layout (conv1/bn1/layerN, Bottleneck stride on the
3x3 conv), the one the official checkpoints use; no pretrained weights, the checkpoint supplies them.
BatchNorm always runs with running statistics.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ModelConfig
from .modules import GroupFeatureFusionBlock, SensoryDeepUpdater
from .resnet import Trunk, conv_bn


class _FrozenBN(nn.Module):
    """Base for the ResNet-based encoders: BatchNorm stays in eval mode even under .train()."""

    def train(self, mode: bool = True):  # noqa: D401 - torch API
        super().train(False)
        return self


class PixelEncoder(_FrozenBN):
    """ResNet stem + layer1..3 (layer1 is called ``res2`` in the checkpoint); returns f16, f8, f4."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        net = Trunk(cfg.pixel_encoder)
        self.conv1 = net.conv1
        self.bn1 = net.bn1
        self.maxpool = net.maxpool
        self.res2 = net.layer1
        self.layer2 = net.layer2
        self.layer3 = net.layer3

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.maxpool(F.relu_(conv_bn(self.conv1, self.bn1, x)))
        f4 = self.res2(x)
        f8 = self.layer2(f4)
        f16 = self.layer3(f8)
        return f16, f8, f4


class KeyProjection(nn.Module):
    """Memory key, shrinkage (d^2 + 1) and selection (sigmoid) from the stride-16 features."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.pix_feat_proj = nn.Conv2d(cfg.ms_dims[0], cfg.pixel_dim, kernel_size=1)
        self.key_proj = nn.Conv2d(cfg.pixel_dim, cfg.key_dim, kernel_size=3, padding=1)
        self.d_proj = nn.Conv2d(cfg.pixel_dim, 1, kernel_size=3, padding=1)
        self.e_proj = nn.Conv2d(cfg.pixel_dim, cfg.key_dim, kernel_size=3, padding=1)

    def forward(self, f16: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pix_feat_proj(f16)
        shrinkage = self.d_proj(x) ** 2 + 1
        selection = torch.sigmoid(self.e_proj(x))
        return self.key_proj(x), shrinkage, selection


class MaskEncoder(_FrozenBN):
    """Per-object value encoder: ResNet-18 on [image, mask, others] (5 channels) + fusion + deep update.

    Note the official stem order here: conv1 -> bn1 -> maxpool -> relu.
    Objects are independent except through ``others`` (computed by the caller over all objects),
    so chunking the object axis only bounds memory.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        net = Trunk("resnet18", in_channels=5)
        self.conv1 = net.conv1
        self.bn1 = net.bn1
        self.maxpool = net.maxpool
        self.layer1 = net.layer1
        self.layer2 = net.layer2
        self.layer3 = net.layer3
        self.fuser = GroupFeatureFusionBlock(cfg.pixel_dim, cfg.mask_encoder_dim, cfg.value_dim)
        self.sensory_update = SensoryDeepUpdater(cfg.value_dim, cfg.sensory_dim)

    def _stem_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """conv1 with bn1 folded in: (weight (64, 5, 7, 7), bias)."""
        bn = self.bn1
        scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
        return self.conv1.weight * scale.view(-1, 1, 1, 1), bn.bias - bn.running_mean * scale

    def _image_stem(self, image: torch.Tensor) -> torch.Tensor:
        """The image channels' share of the stem convolution (+ folded BN bias), computed once for all objects.

        conv1 is linear in its 5 input channels [image (3), mask, others], so it splits into an image part
        shared by the objects and a 2-channel part per object (equal up to rounding to the 5-channel conv).
        """
        weight, bias = self._stem_weights()
        return F.conv2d(image, weight[:, :3], bias, self.conv1.stride, self.conv1.padding)

    def _encode_chunk(self, image_stem: torch.Tensor, pix_feat: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        b, k = g.shape[:2]
        weight, _ = self._stem_weights()
        x = F.conv2d(g.flatten(0, 1), weight[:, 3:], None, self.conv1.stride, self.conv1.padding)
        x = x.view(b, k, *x.shape[1:]).add_(image_stem.unsqueeze(1)).flatten(0, 1)
        x = F.relu_(self.maxpool(x))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fuser(pix_feat, x.view(b, k, *x.shape[1:]))

    def forward(
        self,
        image: torch.Tensor,
        pix_feat: torch.Tensor,
        sensory: torch.Tensor,
        masks: torch.Tensor,
        others: torch.Tensor,
        *,
        deep_update: bool = True,
        chunk_size: int = -1,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """image: normalised (B,3,H,W); masks/others: (B,K,H,W); sensory: (B,K,C,h,w).

        Returns (mask values (B,K,C,h,w), new sensory (B,K,C,h,w)).
        """
        k = masks.shape[1]
        g = torch.stack([masks, others], dim=2)
        step = k if chunk_size < 1 else chunk_size
        values, sensories = [], []
        image_stem = self._image_stem(image)
        for i in range(0, k, step):
            v = self._encode_chunk(image_stem, pix_feat, g[:, i : i + step])
            values.append(v)
            if deep_update:
                sensories.append(self.sensory_update(v, sensory[:, i : i + step]))
        value = values[0] if len(values) == 1 else torch.cat(values, dim=1)
        if not deep_update:
            return value, sensory
        new_sensory = sensories[0] if len(sensories) == 1 else torch.cat(sensories, dim=1)
        return value, new_sensory
