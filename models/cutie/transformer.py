"""Object-level reasoning: the object summarizer and the object (query) transformer.

Attention uses ``nn.MultiheadAttention`` (packed in_proj, batch_first) exactly as the checkpoint expects.
The self-attention keeps torch's default ``need_weights=True`` path and the cross-attentions use
``need_weights=False``, like the reference; the two paths round differently in the last bits.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ModelConfig
from .modules import CAResBlock, GConv2d
from .recipe import soft_aggregate


class PositionalEncoding(nn.Module):
    """2-D sine encoding: channels [0, C/2) encode x, [C/2, C) encode y, each as interleaved (sin, cos).

    Positions are 0..n-1 normalised to [0, scale]. The result only depends on (h, w), so it is cached.
    """

    def __init__(self, dim: int, scale: float, temperature: float):
        super().__init__()
        half = dim // 2
        inv_freq = 1.0 / (temperature ** (torch.arange(0, half, 2).float() / half))
        self.register_buffer("inv_freq", inv_freq)
        self.scale = scale
        self.eps = 1e-6
        self._cache: tuple[tuple, torch.Tensor] | None = None

    @staticmethod
    def _axis(pos: torch.Tensor, inv_freq: torch.Tensor) -> torch.Tensor:
        angles = torch.einsum("i,j->ij", pos, inv_freq)
        return torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2, -1)

    def forward(self, h: int, w: int, dtype: torch.dtype) -> torch.Tensor:
        """(h, w, dim) encoding."""
        inv_freq = self.inv_freq
        if self._cache is not None:
            (ch, cw, cdtype, cfreq), emb = self._cache
            # Compare the buffer's values, not its version counter: tensors made under inference_mode
            # (a network built there, as the official evaluation does) have no version counter, and a
            # checkpoint copied in changes the values. An inference tensor may not be used outside
            # inference_mode, so such a cached result is only reused inside it.
            if ((ch, cw, cdtype) == (h, w, dtype) and cfreq.device == inv_freq.device
                    and torch.equal(cfreq, inv_freq)
                    and (not emb.is_inference() or torch.is_inference_mode_enabled())):
                return emb
        device = inv_freq.device
        pos_y = torch.arange(h, device=device, dtype=inv_freq.dtype)
        pos_x = torch.arange(w, device=device, dtype=inv_freq.dtype)
        pos_y = pos_y / (pos_y[-1] + self.eps) * self.scale
        pos_x = pos_x / (pos_x[-1] + self.eps) * self.scale
        half = inv_freq.numel() * 2
        emb = torch.zeros((h, w, half * 2), device=device, dtype=dtype)
        emb[:, :, :half] = self._axis(pos_x, inv_freq)
        emb[:, :, half:] = self._axis(pos_y, inv_freq).unsqueeze(1)
        self._cache = ((h, w, dtype, inv_freq.detach().clone()), emb)
        return emb


class ObjectSummarizer(nn.Module):
    """Per-object summaries: 16 weighted sums of value features (8 inside the mask, 8 outside) + areas."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.num_summaries = cfg.num_queries
        self.pos_enc = PositionalEncoding(cfg.embed_dim, cfg.pe_scale, cfg.pe_temperature)
        self.input_proj = nn.Linear(cfg.value_dim, cfg.embed_dim)
        self.feature_pred = nn.Sequential(
            nn.Linear(cfg.embed_dim, cfg.embed_dim), nn.ReLU(inplace=True), nn.Linear(cfg.embed_dim, cfg.embed_dim)
        )
        self.weights_pred = nn.Sequential(
            nn.Linear(cfg.embed_dim, cfg.embed_dim), nn.ReLU(inplace=True), nn.Linear(cfg.embed_dim, cfg.num_queries)
        )

    def forward(self, masks: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """masks (B,K,H,W) soft, value (B,K,C,h,w) -> summaries (B,K,Q,C+1): [weighted sums, total weight]."""
        h, w = value.shape[-2:]
        half = self.num_summaries // 2
        masks = F.interpolate(masks, size=(h, w), mode="area").unsqueeze(-1)
        allowed = torch.cat([masks.expand(-1, -1, -1, -1, half), (1 - masks).expand(-1, -1, -1, -1, half)], dim=-1)
        value = self.input_proj(value.permute(0, 1, 3, 4, 2))
        value = value + self.pos_enc(h, w, value.dtype)
        with torch.autocast(device_type=value.device.type, enabled=False):
            value = value.float()
            feature = self.feature_pred(value)
            weights = self.weights_pred(value).sigmoid() * allowed
            sums = torch.einsum("bkhwq,bkhwc->bkqc", weights, feature)
            area = weights.flatten(start_dim=2, end_dim=3).sum(2).unsqueeze(-1)
        return torch.cat([sums, area], dim=-1)


def cross_attend(mha: nn.MultiheadAttention, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                 attn_mask: torch.Tensor | None = None) -> torch.Tensor:
    """``mha(query, key, value, attn_mask=attn_mask, need_weights=False)[0]`` for batch-first inputs.

    The same projections and scaled-dot-product attention, minus nn.MultiheadAttention's detour through
    (L, N, E): it transposes and copies the 3240-token pixel side several times per call.
    attn_mask: bool (N * heads, Lq, Lk), True = blocked.
    """
    n, lq, e = query.shape
    heads = mha.num_heads
    w_q, w_k, w_v = mha.in_proj_weight.chunk(3)
    b_q, b_k, b_v = mha.in_proj_bias.chunk(3)
    q = F.linear(query, w_q, b_q).view(n, lq, heads, -1).transpose(1, 2)
    k = F.linear(key, w_k, b_k).view(n, key.shape[1], heads, -1).transpose(1, 2)
    v = F.linear(value, w_v, b_v).view(n, value.shape[1], heads, -1).transpose(1, 2)
    mask = None
    if attn_mask is not None:
        mask = torch.zeros(attn_mask.shape, dtype=q.dtype, device=q.device).masked_fill_(attn_mask, float("-inf"))
        mask = mask.view(n, heads, lq, -1)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return mha.out_proj(out.transpose(1, 2).reshape(n, lq, e))


class CrossAttention(nn.Module):
    """x attends to mem; PE added to query and key (not value); residual on the (normalised) input."""

    def __init__(self, dim: int, num_heads: int, norm: bool = True):
        super().__init__()
        self.cross_attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.norm = nn.LayerNorm(dim) if norm else nn.Identity()

    def forward(self, x, mem, x_pe, mem_pe, attn_mask=None):
        x = self.norm(x)
        out = cross_attend(self.cross_attn, x + x_pe, mem + mem_pe, mem, attn_mask=attn_mask)
        return x + out


class SelfAttention(nn.Module):
    """Pre-LN self-attention over the object queries; residual on the normalised input."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x, pe):
        x = self.norm(x)
        qk = x + pe
        return x + self.self_attn(qk, qk, x)[0]


class FFN(nn.Module):
    """Pre-LN feed-forward; residual on the un-normalised input."""

    def __init__(self, dim: int, ff_dim: int):
        super().__init__()
        self.linear1 = nn.Linear(dim, ff_dim)
        self.linear2 = nn.Linear(ff_dim, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        return x + self.linear2(F.relu(self.linear1(self.norm(x))))


class PixelFFN(nn.Module):
    """CAResBlock on the pixel map (given flattened as (B*K, HW, C))."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv = CAResBlock(dim, dim)

    def forward(self, pixel_flat: torch.Tensor, b: int, k: int, h: int, w: int) -> torch.Tensor:
        c = pixel_flat.shape[-1]
        # (BK, hw, C) row-major is already a channels-last (BK, C, h, w) map: no copy needed
        x = pixel_flat.view(b * k, h, w, c).permute(0, 3, 1, 2)
        return self.conv(x).view(b, k, c, h, w)


class QueryTransformerBlock(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.read_from_pixel = CrossAttention(cfg.embed_dim, cfg.num_heads)
        self.self_attn = SelfAttention(cfg.embed_dim, cfg.num_heads)
        self.ffn = FFN(cfg.embed_dim, cfg.ff_dim)
        self.read_from_query = CrossAttention(cfg.embed_dim, cfg.num_heads, norm=False)
        self.pixel_ffn = PixelFFN(cfg.embed_dim)

    def forward(self, query, pixel, query_pe, pixel_pe, attn_mask):
        """query (BK,Q,C); pixel (B,K,C,h,w); pixel_pe (BK,hw,C); attn_mask (BK*heads,Q,hw) True=blocked."""
        b, k, _, h, w = pixel.shape
        pixel_flat = pixel.flatten(3, 4).flatten(0, 1).transpose(1, 2).contiguous()  # a view for channels-last
        query = self.read_from_pixel(query, pixel_flat, query_pe, pixel_pe, attn_mask=attn_mask)
        query = self.self_attn(query, query_pe)
        query = self.ffn(query)
        pixel_flat = self.read_from_query(pixel_flat, query, pixel_pe, query_pe)
        return query, self.pixel_ffn(pixel_flat, b, k, h, w)


class QueryTransformer(nn.Module):
    """Object transformer: object queries and pixel features read from each other with masked attention.

    The masks come from auxiliary per-object logits (``mask_pred``): queries 0..Q/2-1 only see their
    object's foreground, the others only the rest. Foreground is decided jointly over all objects given
    in one call (soft aggregation), so all objects of a memory bucket must be passed together.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.embed_dim = cfg.embed_dim
        self.num_heads = cfg.num_heads
        self.num_queries = cfg.num_queries
        self.query_init = nn.Embedding(cfg.num_queries, cfg.embed_dim)
        self.query_emb = nn.Embedding(cfg.num_queries, cfg.embed_dim)
        self.summary_to_query_init = nn.Linear(cfg.embed_dim, cfg.embed_dim)
        self.summary_to_query_emb = nn.Linear(cfg.embed_dim, cfg.embed_dim)
        self.pixel_init_proj = GConv2d(cfg.embed_dim, cfg.embed_dim, kernel_size=1)
        self.pixel_emb_proj = GConv2d(cfg.embed_dim, cfg.embed_dim, kernel_size=1)
        self.spatial_pe = PositionalEncoding(cfg.embed_dim, cfg.pe_scale, cfg.pe_temperature)
        self.blocks = nn.ModuleList(QueryTransformerBlock(cfg) for _ in range(cfg.num_blocks))
        # one auxiliary predictor before the blocks and one after each; the last one only matters in training
        self.mask_pred = nn.ModuleList(
            nn.Sequential(nn.ReLU(), GConv2d(cfg.embed_dim, 1, kernel_size=1)) for _ in range(cfg.num_blocks + 1)
        )

    def _attention_mask(self, aux_logits: torch.Tensor) -> torch.Tensor:
        """(B,K,h,w) aux logits -> (B*K*heads, Q, h*w) bool mask, True = blocked."""
        b, k = aux_logits.shape[:2]
        agg = soft_aggregate(aux_logits.sigmoid(), dim=1)
        foreground = (agg[:, 1:] >= agg.max(dim=1, keepdim=True)[0]).flatten(start_dim=2)  # (B,K,hw)
        half = self.num_queries // 2
        shape = (b, k, self.num_heads, half, foreground.shape[-1])
        fg_rows = (~foreground)[:, :, None, None].expand(shape)  # object queries: block background
        bg_rows = foreground[:, :, None, None].expand(shape)  # background queries: block foreground
        mask = torch.cat([fg_rows, bg_rows], dim=3).reshape(b * k * self.num_heads, self.num_queries, -1)
        mask[mask.all(dim=-1)] = False  # a query that would see nothing sees everything
        return mask

    def forward(self, pixel: torch.Tensor, obj_memory: torch.Tensor) -> torch.Tensor:
        """pixel (B,K,C,h,w) fused readout; obj_memory (B,K,Q,C+1) running summary sums -> (B,K,C,h,w)."""
        b, k, _, h, w = pixel.shape
        obj_memory = obj_memory.reshape(b * k, self.num_queries, self.embed_dim + 1)
        obj_values = obj_memory[..., :-1] / (obj_memory[..., -1:] + 1e-4)
        query = self.query_init.weight.unsqueeze(0) + self.summary_to_query_init(obj_values)
        query_pe = self.query_emb.weight.unsqueeze(0) + self.summary_to_query_emb(obj_values)

        pixel_emb = self.pixel_emb_proj(pixel).flatten(3, 4).flatten(0, 1).transpose(1, 2)
        pixel_pe = self.spatial_pe(h, w, pixel.dtype).flatten(0, 1).unsqueeze(0) + pixel_emb
        pixel = self.pixel_init_proj(pixel)

        attn_mask = self._attention_mask(self.mask_pred[0](pixel).squeeze(2))
        for i, block in enumerate(self.blocks):
            query, pixel = block(query, pixel, query_pe, pixel_pe, attn_mask)
            if i + 1 < len(self.blocks):
                attn_mask = self._attention_mask(self.mask_pred[i + 1](pixel).squeeze(2))
        return pixel
