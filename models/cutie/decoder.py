"""Readout fusion (before the object transformer) and the mask decoder (after it)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ModelConfig
from .modules import GConv2d, GroupFeatureFusionBlock, GroupResBlock, SensoryUpdater, resize_groups


class PixelFeatureFuser(nn.Module):
    """Memory readout + compressed [sensory, last mask, last others] -> fused with the image features."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.fuser = GroupFeatureFusionBlock(cfg.pixel_dim, cfg.value_dim, cfg.embed_dim)
        self.sensory_compress = GConv2d(cfg.sensory_dim + 2, cfg.value_dim, kernel_size=1)

    def forward(
        self,
        pix_feat: torch.Tensor,
        visual_readout: torch.Tensor,
        sensory: torch.Tensor,
        last_mask: torch.Tensor,
        last_others: torch.Tensor,
        *,
        chunk_size: int = -1,
    ) -> torch.Tensor:
        """All per-object inputs are at stride 16: readout/sensory (B,K,C,h,w), mask/others (B,K,h,w)."""
        k = visual_readout.shape[1]
        masks = torch.stack([last_mask, last_others], dim=2)
        step = k if chunk_size < 1 else chunk_size
        out = []
        for i in range(0, k, step):
            compressed = self.sensory_compress(torch.cat([sensory[:, i : i + step], masks[:, i : i + step]], dim=2))
            out.append(self.fuser(pix_feat, visual_readout[:, i : i + step] + compressed))
        return out[0] if len(out) == 1 else torch.cat(out, dim=1)


class DecoderFeatureProcessor(nn.Module):
    """1x1 projections of the stride-8 and stride-4 image features used as skip connections."""

    def __init__(self, in_dims: tuple[int, int], out_dims: tuple[int, int]):
        super().__init__()
        self.transforms = nn.ModuleList(nn.Conv2d(i, o, kernel_size=1) for i, o in zip(in_dims, out_dims))

    def forward(self, f8: torch.Tensor, f4: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transforms[0](f8), self.transforms[1](f4)


class MaskUpsampleBlock(nn.Module):
    """x2 bilinear upsampling of per-object maps, plus the image skip feature, then a residual block."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.out_conv = GroupResBlock(in_dim, out_dim)

    def forward(self, g: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        g = resize_groups(g, 2, "bilinear")
        return self.out_conv(g.add_(skip.unsqueeze(1)))


class MaskDecoder(nn.Module):
    """Stride-16 object features -> stride-4 object logits (+ optional sensory update).

    Objects are independent here, so ``chunk_size`` only bounds memory.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        up = cfg.up_dims
        if cfg.embed_dim != up[0]:
            raise ValueError("embed_dim must equal up_dims[0]")
        self.sensory_update = SensoryUpdater((up[0], up[1], up[2] + 1), cfg.sensory_dim, cfg.sensory_dim)
        self.decoder_feat_proc = DecoderFeatureProcessor(cfg.ms_dims[1:], up[:-1])
        self.up_16_8 = MaskUpsampleBlock(up[0], up[1])
        self.up_8_4 = MaskUpsampleBlock(up[1], up[2])
        self.pred = nn.Conv2d(up[-1], 1, kernel_size=3, padding=1)

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        """``self.pred`` (3x3 convolution to one channel) on (N, C, H, W).

        oneDNN runs a one-channel convolution far below its usual speed. On CPU it is computed as a 1x1
        convolution to the 9 taps (one matmul) and a sum of the 9 shifted tap maps; equal up to rounding.
        """
        if x.device.type != "cpu":
            return self.pred(x)
        n, c, h, w = x.shape
        weight = self.pred.weight[0].permute(1, 2, 0).reshape(9, c)  # tap (dy, dx) -> row 3 dy + dx
        taps = F.pad((x.permute(0, 2, 3, 1) @ weight.t()), (0, 0, 1, 1, 1, 1))  # (N, H+2, W+2, 9)
        out = taps[:, 0:h, 0:w, 0] + self.pred.bias[0]
        for tap in range(1, 9):
            dy, dx = divmod(tap, 3)
            out += taps[:, dy : dy + h, dx : dx + w, tap]
        return out.unsqueeze(1)

    def forward(
        self,
        f8: torch.Tensor,
        f4: torch.Tensor,
        readout: torch.Tensor,
        sensory: torch.Tensor,
        *,
        chunk_size: int = -1,
        update_sensory: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """readout/sensory (B,K,C,h,w) -> (new sensory (B,K,C,h,w), logits (B,K,4h,4w) float32)."""
        b, k = readout.shape[:2]
        f8, f4 = self.decoder_feat_proc(f8, f4)
        step = k if chunk_size < 1 else chunk_size
        all_logits, all_sensory = [], []
        for i in range(0, k, step):
            p16 = readout[:, i : i + step]
            n = p16.shape[1]
            p8 = self.up_16_8(p16, f8)
            p4 = self.up_8_4(p8, f4)
            # the sensory update reads [p4, logits] area-pooled to stride 16; pooling is per channel, so p4 is
            # pooled now and the logits later, and p4 itself can then take the ReLU in place
            p4_16 = resize_groups(p4, 1 / 4, "area") if update_sensory else None
            with torch.autocast(device_type=p4.device.type, enabled=False):
                logits = self._predict(F.relu_(p4.flatten(0, 1).float()))
            logits = logits.view(b, n, 1, *logits.shape[-2:])
            if update_sensory:
                g4 = torch.cat([p4_16, resize_groups(logits.to(p4.dtype), 1 / 4, "area")], dim=2)
                all_sensory.append(self.sensory_update(p16, p8, g4, sensory[:, i : i + step], g4_pooled=True))
            all_logits.append(logits[:, :, 0])
        logits = all_logits[0] if len(all_logits) == 1 else torch.cat(all_logits, dim=1)
        if not update_sensory:
            return sensory, logits
        new_sensory = all_sensory[0] if len(all_sensory) == 1 else torch.cat(all_sensory, dim=1)
        return new_sensory, logits
