"""Small building blocks shared by Cutie's encoders, fuser and decoder.

Tensor convention: ``x`` is a map shared by all objects (B, C, H, W); ``g`` is a per-object ("group")
map (B, K, C, H, W). Group convolutions fold the object axis into the batch.
Module attribute names are the official checkpoint names; do not rename them.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def resize_groups(g: torch.Tensor, ratio: float, mode: str) -> torch.Tensor:
    """Rescale a (B, K, C, H, W) map by ``ratio`` ('bilinear' uses align_corners=False)."""
    b, k = g.shape[:2]
    align = False if mode == "bilinear" else None
    out = F.interpolate(g.flatten(0, 1), scale_factor=ratio, mode=mode, align_corners=align)
    return out.view(b, k, *out.shape[1:])


class GConv2d(nn.Conv2d):
    """Conv2d applied to every object of a (B, K, C, H, W) map."""

    def forward(self, g: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        b, k = g.shape[:2]
        out = super().forward(g.flatten(0, 1))
        return out.view(b, k, *out.shape[1:])


class CAResBlock(nn.Module):
    """Residual block with efficient channel attention (ECA).

    y = conv2(relu(conv1(relu(x)))); w = sigmoid(conv1d over the pooled channel vector); out = y * w + x.
    The 1-D kernel size follows the ECA rule (5 for 256 channels).
    """

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_dim, out_dim, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(out_dim, out_dim, kernel_size=3, padding=1)
        t = int((abs(math.log2(out_dim)) + 1) // 2)
        k = t if t % 2 else t + 1
        self.conv = nn.Conv1d(1, 1, kernel_size=k, padding=(k - 1) // 2, bias=False)
        self.downsample = nn.Identity() if in_dim == out_dim else nn.Conv2d(in_dim, out_dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # in-place where the input is a fresh temporary (x itself is kept for the residual)
        y = self.conv2(F.relu_(self.conv1(F.relu(x))))
        b, c = y.shape[:2]
        w = F.adaptive_avg_pool2d(y, 1).view(b, 1, c)
        w = self.conv(w).transpose(-1, -2).unsqueeze(-1).sigmoid()
        return y.mul_(w).add_(self.downsample(x))


class GroupResBlock(nn.Module):
    """Per-object residual block: conv3x3(relu) twice, 1x1 conv on the skip when dims differ."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.downsample = nn.Identity() if in_dim == out_dim else GConv2d(in_dim, out_dim, kernel_size=1)
        self.conv1 = GConv2d(in_dim, out_dim, kernel_size=3, padding=1)
        self.conv2 = GConv2d(out_dim, out_dim, kernel_size=3, padding=1)

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        out = self.conv2(F.relu_(self.conv1(F.relu(g))))
        return out.add_(self.downsample(g))


class _Distributor(nn.Module):
    """Adds a projected shared map to every object's projected map (holds the checkpoint's names)."""

    def __init__(self, x_dim: int, g_dim: int, out_dim: int):
        super().__init__()
        self.x_transform = nn.Conv2d(x_dim, out_dim, kernel_size=1)
        self.g_transform = GConv2d(g_dim, out_dim, kernel_size=1)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        x = self.x_transform(x)
        g = self.g_transform(g)
        return x.unsqueeze(1) + g


class GroupFeatureFusionBlock(nn.Module):
    """Fuses a shared image map into per-object maps: 1x1 convs summed, then two CAResBlocks."""

    def __init__(self, x_dim: int, g_dim: int, out_dim: int):
        super().__init__()
        self.distributor = _Distributor(x_dim, g_dim, out_dim)
        self.block1 = CAResBlock(out_dim, out_dim)
        self.block2 = CAResBlock(out_dim, out_dim)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        b, k = g.shape[:2]
        g = self.distributor(x, g).flatten(0, 1)
        g = self.block2(self.block1(g))
        return g.view(b, k, *g.shape[1:])


def gated_update(h: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """GRU-like sensory update; ``values`` holds forget, update and candidate gates (3 x C channels)."""
    dim = values.shape[2] // 3
    forget = torch.sigmoid(values[:, :, :dim])
    update = torch.sigmoid(values[:, :, dim : dim * 2])
    candidate = torch.tanh(values[:, :, dim * 2 :])
    return forget * h * (1 - update) + update * candidate


def _fp32_region(t: torch.Tensor):
    """Autocast off for the sensory update (kept in float32 by Cutie)."""
    return torch.autocast(device_type=t.device.type, enabled=False)


class SensoryDeepUpdater(nn.Module):
    """Mask-encoder sensory update: 3x3 conv on [value, sensory] then the gated update (float32)."""

    def __init__(self, value_dim: int, sensory_dim: int):
        super().__init__()
        self.transform = GConv2d(value_dim + sensory_dim, sensory_dim * 3, kernel_size=3, padding=1)

    def forward(self, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        with _fp32_region(g):
            g, h = g.float(), h.float()
            return gated_update(h, self.transform(torch.cat([g, h], dim=2)))


class SensoryUpdater(nn.Module):
    """Decoder sensory update from the stride 16/8/4 decoder maps (area-pooled to stride 16)."""

    def __init__(self, g_dims: tuple[int, int, int], mid_dim: int, sensory_dim: int):
        super().__init__()
        self.g16_conv = GConv2d(g_dims[0], mid_dim, kernel_size=1)
        self.g8_conv = GConv2d(g_dims[1], mid_dim, kernel_size=1)
        self.g4_conv = GConv2d(g_dims[2], mid_dim, kernel_size=1)
        self.transform = GConv2d(mid_dim + sensory_dim, sensory_dim * 3, kernel_size=3, padding=1)

    def forward(self, g16: torch.Tensor, g8: torch.Tensor, g4: torch.Tensor, h: torch.Tensor, *,
                g4_pooled: bool = False) -> torch.Tensor:
        """``g4_pooled``: g4 is already area-pooled to stride 16 (the decoder pools its parts separately)."""
        g = (
            self.g16_conv(g16)
            + self.g8_conv(resize_groups(g8, 1 / 2, "area"))
            + self.g4_conv(g4 if g4_pooled else resize_groups(g4, 1 / 4, "area"))
        )
        with _fp32_region(g):
            g, h = g.float(), h.float()
            return gated_update(h, self.transform(torch.cat([g, h], dim=2)))
