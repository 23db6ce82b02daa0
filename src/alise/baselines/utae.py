"""U-TAE: U-Net with Temporal Attention Encoder (Garnot & Landrieu, ICCV 2021).

"Panoptic segmentation of satellite image time series with convolutional temporal attention
networks"; fully supervised baseline of ALISE ([P] §IV-C-1, Table II: ≈1.1M parameters, PASTIS
F1 80.9). Architecture facts learned from the reference code VSainteuf/utae-paps
(`src/backbones/utae.py`, `ltae.py`, `positional_encoding.py`); names follow that code and the
paper's Fig. 2:

1. a shared spatial encoder (``in_conv`` then ``down_blocks``, widths [64, 64, 64, 128], strided
   convolutions k4 s2 p1, GroupNorm with 4 groups, reflect padding) applied to every date;
2. an L-TAE (``temporal_encoder``) that collapses the dates of the lowest-resolution map with one
   learned query per head (16 heads, d_k 4, d_model 256, MLP [256, 128], dropout 0.2);
3. the L-TAE attention masks, upsampled, average each skip connection over time
   (``temporal_aggregation``, "att_group": channel group g uses the weights of head g);
4. a U-Net decoder (``up_blocks``, widths [32, 32, 64, 128], BatchNorm) and ``out_conv`` [32, K].

Differences from the reference code (all deliberate, see docs/baselines.md):

* positions are our ``days`` (days since 2014-03-03, as every alise model) instead of the day
  offset within the PASTIS year; the sinusoid still uses T = 1000;
* padded dates are given by ``valid_dates`` (True = real date) instead of being detected as
  all-zero frames, and they are excluded from the statistics of the L-TAE input GroupNorm (the
  reference normalises over padded frames too, so its output changes with padding);
* padded frames never enter the convolutions: the valid frames are gathered, encoded and
  scattered back into zeros.

With K = 20 (PASTIS, as in the U-TAE paper) the model has 1,087,260 parameters.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from alise.errors import AliseError


def _norm(kind: str, channels: int, n_groups: int = 4) -> nn.Module:
    """The normalisation layer of a conv stage: ``"group"`` (4 groups) or ``"batch"``."""
    if kind == "group":
        return nn.GroupNorm(num_groups=n_groups, num_channels=channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    raise AliseError(f"U-TAE norm must be 'group' or 'batch', got {kind!r}")


class ConvLayer(nn.Sequential):
    """Conv → norm → ReLU for each consecutive pair of ``widths``; (N, w0, H, W) → (N, w-1, H', W')."""

    def __init__(self, widths: list[int], norm: str = "batch", k: int = 3, s: int = 1, p: int = 1,
                 padding_mode: str = "reflect"):
        layers: list[nn.Module] = []
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(c_in, c_out, k, stride=s, padding=p, padding_mode=padding_mode),
                       _norm(norm, c_out), nn.ReLU()]
        super().__init__(*layers)


class DownConvBlock(nn.Module):
    """Encoder stage: strided conv (÷2 in H, W), conv, residual conv. (N, d_in, H, W) → (N, d_out, H/2, W/2)."""

    def __init__(self, d_in: int, d_out: int, k: int, s: int, p: int, norm: str, padding_mode: str):
        super().__init__()
        self.down = ConvLayer([d_in, d_in], norm, k, s, p, padding_mode)
        self.conv1 = ConvLayer([d_in, d_out], norm, padding_mode=padding_mode)
        self.conv2 = ConvLayer([d_out, d_out], norm, padding_mode=padding_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.down(x))
        return out + self.conv2(out)


class UpConvBlock(nn.Module):
    """Decoder stage: transposed conv (×2), concat 1×1-convolved skip, conv, residual conv.

    ``forward(x (B, d_in, h, w), skip (B, d_skip, 2h, 2w)) -> (B, d_out, 2h, 2w)``.
    """

    def __init__(self, d_in: int, d_out: int, d_skip: int, k: int, s: int, p: int, norm: str,
                 padding_mode: str):
        super().__init__()
        self.skip_conv = nn.Sequential(nn.Conv2d(d_skip, d_skip, 1), nn.BatchNorm2d(d_skip), nn.ReLU())
        self.up = nn.Sequential(nn.ConvTranspose2d(d_in, d_out, k, stride=s, padding=p),
                                nn.BatchNorm2d(d_out), nn.ReLU())
        self.conv1 = ConvLayer([d_out + d_skip, d_out], norm, padding_mode=padding_mode)
        self.conv2 = ConvLayer([d_out, d_out], norm, padding_mode=padding_mode)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        out = self.conv1(torch.cat([self.up(x), self.skip_conv(skip)], dim=1))
        return out + self.conv2(out)


def positional_encoding(days: torch.Tensor, d: int, period: float = 1000.0, repeat: int = 1) -> torch.Tensor:
    """Sinusoid of the dates, (B, T) days → (B, T, d·repeat).

    Channel j: angle = days / period^(2⌊j/2⌋/d); sin for even j, cos for odd j; the d-vector is
    tiled ``repeat`` times (one copy per L-TAE head, as in the U-TAE code).
    """
    j = torch.arange(d, device=days.device, dtype=torch.float32)
    denom = period ** (2 * torch.div(j, 2, rounding_mode="floor") / d)          # (d,)
    angle = days.to(torch.float32)[..., None] / denom                            # (B, T, d)
    table = torch.where(j % 2 == 0, torch.sin(angle), torch.cos(angle))
    return table.repeat(1, 1, repeat)                                            # (B, T, d·repeat)


def masked_group_norm(x: torch.Tensor, valid: torch.Tensor, norm: nn.GroupNorm) -> torch.Tensor:
    """GroupNorm over (channels of a group × valid dates), the L-TAE ``in_norm`` without padding.

    x (N, T, C) per-pixel sequences, valid (N, T) True = real date → (N, T, C), using ``norm``'s
    groups, eps and affine parameters. Padded dates are left out of the mean and variance.
    """
    g = norm.num_groups
    xg = rearrange(x, "n t (g c) -> n t g c", g=g)
    w = valid.to(x.dtype)[:, :, None, None]                                      # (N, T, 1, 1)
    count = w.sum(dim=1, keepdim=True) * xg.shape[-1]                            # (N, 1, 1, 1)
    mean = (xg * w).sum(dim=(1, 3), keepdim=True) / count
    var = (((xg - mean) ** 2) * w).sum(dim=(1, 3), keepdim=True) / count
    out = rearrange((xg - mean) / torch.sqrt(var + norm.eps), "n t g c -> n t (g c)")
    return out * norm.weight + norm.bias


class LTAE2d(nn.Module):
    """Lightweight Temporal Attention Encoder applied to every pixel of a feature-map sequence.

    ``forward(x (B, T, C, h, w), days (B, T), valid_dates (B, T)) -> (out (B, mlp[-1], h, w),
    attn (n_head, B, T, h, w))``; ``attn`` sums to 1 over the valid dates and is 0 on padding.
    """

    def __init__(self, in_channels: int = 128, n_head: int = 16, d_k: int = 4,
                 mlp: tuple[int, ...] = (256, 128), dropout: float = 0.2, d_model: int = 256,
                 T: float = 1000.0):
        super().__init__()
        if mlp[0] != d_model:
            raise AliseError(f"L-TAE mlp must start at d_model={d_model}, got {list(mlp)}")
        self.n_head, self.d_k, self.d_model, self.T = n_head, d_k, d_model, T
        self.in_norm = nn.GroupNorm(n_head, in_channels)
        self.inconv = nn.Linear(in_channels, d_model)        # a 1×1 Conv1d in the reference code
        self.Q = nn.Parameter(torch.randn(n_head, d_k) * math.sqrt(2.0 / d_k))   # master queries
        self.fc1_k = nn.Linear(d_model, n_head * d_k)
        nn.init.normal_(self.fc1_k.weight, mean=0.0, std=math.sqrt(2.0 / d_k))
        self.attn_dropout = nn.Dropout(0.1)
        layers: list[nn.Module] = []
        for c_in, c_out in zip(mlp[:-1], mlp[1:]):
            layers += [nn.Linear(c_in, c_out), nn.BatchNorm1d(c_out), nn.ReLU()]
        self.mlp = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.out_norm = nn.GroupNorm(n_head, mlp[-1])

    def forward(self, x: torch.Tensor, days: torch.Tensor, valid_dates: torch.Tensor):
        b, t, _, h, w = x.shape
        seq = rearrange(x, "b t c h w -> (b h w) t c")
        valid = valid_dates.repeat_interleave(h * w, dim=0)                      # (B·h·w, T)
        seq = self.inconv(masked_group_norm(seq, valid, self.in_norm))           # (N, T, d_model)
        pe = positional_encoding(days, self.d_model // self.n_head, self.T, self.n_head)
        seq = seq + pe.repeat_interleave(h * w, dim=0)
        keys = rearrange(self.fc1_k(seq), "n t (g k) -> n t g k", g=self.n_head)
        # The attention weights are needed again by the skip aggregation, so softmax is explicit
        # here instead of F.scaled_dot_product_attention. Padded dates get -inf (weight exactly 0).
        scores = torch.einsum("gk,ntgk->ngt", self.Q, keys) / math.sqrt(self.d_k)
        scores = scores.masked_fill(~valid[:, None, :], float("-inf"))
        attn = self.attn_dropout(torch.softmax(scores, dim=-1))                  # (N, G, T)
        values = rearrange(seq, "n t (g c) -> n t g c", g=self.n_head)
        out = rearrange(torch.einsum("ngt,ntgc->ngc", attn, values), "n g c -> n (g c)")
        out = self.out_norm(self.dropout(self.mlp(out)))                         # (N, mlp[-1])
        out = rearrange(out, "(b h w) c -> b c h w", b=b, h=h, w=w)
        attn = rearrange(attn, "(b h w) g t -> g b t h w", b=b, h=h, w=w)
        return out, attn


def temporal_aggregation(x: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
    """Skip aggregation "att_group": (B, T, C, H, W) with attn (G, B, T, h, w) → (B, C, H, W).

    The attention masks are bilinearly resized to (H, W); channel group g (C/G channels) is
    averaged over time with head g's weights. Padded dates have weight 0 in ``attn``.
    """
    g, b, t, h, w = attn.shape
    if (h, w) != tuple(x.shape[-2:]):
        flat = rearrange(attn, "g b t h w -> (g b) t h w")
        flat = F.interpolate(flat, size=x.shape[-2:], mode="bilinear", align_corners=False)
        attn = rearrange(flat, "(g b) t h w -> g b t h w", g=g)
    groups = rearrange(x, "b t (g c) h w -> g b t c h w", g=g)
    out = torch.einsum("gbthw,gbtchw->bgchw", attn, groups)
    return rearrange(out, "b g c h w -> b (g c) h w")


class UTAE(nn.Module):
    """U-TAE semantic segmentation network with the U-TAE paper's default hyper-parameters.

    ``forward(x (B, T, C, H, W) normalised reflectance, days (B, T) days since 2014-03-03,
    valid_dates (B, T) True = real date) -> logits (B, K, H, W)``. H and W must be divisible by
    2^(len(encoder_widths) − 1) = 8. As in the reference code, ``out_conv`` ends with BatchNorm
    and ReLU, so the logits are ≥ 0.
    """

    def __init__(self, in_channels: int = 10, num_classes: int = 20,
                 encoder_widths: tuple[int, ...] = (64, 64, 64, 128),
                 decoder_widths: tuple[int, ...] = (32, 32, 64, 128),
                 out_conv: tuple[int, ...] = (32,), str_conv_k: int = 4, str_conv_s: int = 2,
                 str_conv_p: int = 1, n_head: int = 16, d_model: int = 256, d_k: int = 4,
                 mlp: tuple[int, ...] = (256, 128), dropout: float = 0.2, T: float = 1000.0,
                 encoder_norm: str = "group", padding_mode: str = "reflect"):
        super().__init__()
        if len(encoder_widths) != len(decoder_widths) or encoder_widths[-1] != decoder_widths[-1]:
            raise AliseError("U-TAE encoder_widths and decoder_widths must have the same length "
                             f"and the same last width, got {encoder_widths} and {decoder_widths}")
        n = len(encoder_widths)
        self.n_stages = n
        self.in_conv = ConvLayer([in_channels, encoder_widths[0], encoder_widths[0]], encoder_norm,
                                 padding_mode=padding_mode)
        self.down_blocks = nn.ModuleList(
            DownConvBlock(encoder_widths[i], encoder_widths[i + 1], str_conv_k, str_conv_s,
                          str_conv_p, encoder_norm, padding_mode) for i in range(n - 1))
        self.temporal_encoder = LTAE2d(encoder_widths[-1], n_head, d_k, (d_model, *mlp[1:]),
                                       dropout, d_model, T)
        self.up_blocks = nn.ModuleList(
            UpConvBlock(decoder_widths[i], decoder_widths[i - 1], encoder_widths[i - 1],
                        str_conv_k, str_conv_s, str_conv_p, "batch", padding_mode)
            for i in range(n - 1, 0, -1))
        self.out_conv = ConvLayer([decoder_widths[0], *out_conv, num_classes], "batch",
                                  padding_mode=padding_mode)

    def encode_frames(self, x: torch.Tensor, valid_dates: torch.Tensor) -> list[torch.Tensor]:
        """Shared spatial encoder on the valid frames only.

        x (B, T, C, H, W) → one map per stage, (B, T, w_s, H/2^s, W/2^s); padded dates hold 0.
        """
        frames = x[valid_dates]                                                  # (N_valid, C, H, W)
        maps = [self.in_conv(frames)]
        for block in self.down_blocks:
            maps.append(block(maps[-1]))
        out = []
        for m in maps:                                                           # loop over 4 stages
            full = m.new_zeros(*valid_dates.shape, *m.shape[1:])
            full[valid_dates] = m
            out.append(full)
        return out

    def forward(self, x: torch.Tensor, days: torch.Tensor, valid_dates: torch.Tensor) -> torch.Tensor:
        b, t, _, h, w = x.shape
        factor = 2 ** (self.n_stages - 1)
        if h % factor or w % factor:
            raise AliseError(f"U-TAE needs H and W divisible by {factor}, got {h}×{w}: crop or pad the patch")
        valid_dates = valid_dates.bool()
        if not bool(valid_dates.any(dim=1).all()):
            raise AliseError("U-TAE got a series with no valid date (valid_dates all False): drop it from the batch")
        maps = self.encode_frames(x, valid_dates)
        out, attn = self.temporal_encoder(maps[-1], days, valid_dates)           # (B, w_last, h, w)
        for i, block in enumerate(self.up_blocks):
            skip = temporal_aggregation(maps[-(i + 2)], attn)
            out = block(out, skip)
        return self.out_conv(out)                                                # (B, K, H, W)
