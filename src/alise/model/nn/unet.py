"""Spatial-spectral encoder: the per-date U-Net of U-BARN ([P] §III-A, Table VIII; docs/reference.md §2).

Every acquisition is encoded independently, ``(N, C, H, W) → (N, D, H, W)`` with ``N = B·T``
frames. Paper configuration (1,007,552 parameters, docs/reference.md §11):

* a *conv layer* (CL) is Conv2d(bias) → Norm → ReLU;
* ``in_conv``: CL(C→64, 3×3) → CL(64→64, 3×3);
* ``down_blocks[i]`` (c_in→c_out): ``down`` = CL(c_in→c_in, k×k, stride 2), ``h = conv1(·)`` =
  CL(c_in→c_out, 3×3), output ``h + conv2(h)`` (residual around the second conv only);
* ``up_blocks[i]`` (deepest first; d_in→d_out with a skip of d_s channels): ``up`` =
  ConvTranspose2d(k×k, stride 2) → BatchNorm → ReLU; ``skip_conv`` = CL(d_s→d_s, 1×1, BatchNorm);
  ``h = conv1(concat[up, skip])``, output ``h + conv2(h)`` (BatchNorm);
* ``out_conv``: CL(32→D, 3×3, BatchNorm) — it ends with a ReLU, so features are ≥ 0 (P5).

Encoder norms are GroupNorm(4) and decoder/skip norms BatchNorm in the paper; convolutions use
reflect padding. ``down_kernel=4`` uses padding 1 (paper), ``down_kernel=2`` padding 0 (MALICE).
``fold_bn=True`` drops every CL's norm (the MALICE exporter folded it into the convolution); the
ConvTranspose+BatchNorm pairs always keep their norm.
"""

from __future__ import annotations

import threading

import torch
from torch import Tensor, nn

from alise.model.config import ALISEConfig


#: State of the forward call running in this thread: the statistics handed to each GroupNorm layer.
_CALL = threading.local()


class FrameGroupNorm(nn.GroupNorm):
    """GroupNorm over each frame ``(N, C, H, W)`` — or with statistics given from outside.

    Same parameters and ``state_dict`` as :class:`torch.nn.GroupNorm`. By default it is exactly
    GroupNorm: every frame is normalised by the mean and variance of its own pixels, so the result
    depends on the extent of the image (a tile sees other statistics than the whole raster).
    :meth:`SpatialSpectralEncoder.forward` can instead hand it per-frame statistics estimated once
    over a whole raster (``frozen``), which makes the layer a fixed per-pixel affine map, and it can
    hand the raw input to an ``observer`` (how those statistics are estimated; see
    :mod:`alise.encode.groupstats`).
    """

    observer = None  # callable(layer, x) or None

    @property
    def frozen(self) -> tuple[Tensor, Tensor] | None:
        """``(mean, rstd)``, each ``(N, G)``, for the frames of the current call, or None. Kept per
        thread (:data:`_CALL`), so that threads encoding with one model do not see each other's."""
        return getattr(_CALL, "frozen", {}).get(id(self))

    @frozen.setter
    def frozen(self, stats: tuple[Tensor, Tensor] | None) -> None:
        table = _CALL.__dict__.setdefault("frozen", {})
        if stats is None:
            table.pop(id(self), None)
        else:
            table[id(self)] = stats

    def forward(self, x: Tensor) -> Tensor:
        if self.observer is not None:
            self.observer(self, x)
        if self.frozen is None:
            return super().forward(x)
        mean, rstd = self.frozen  # (N, G)
        per = x.shape[1] // self.num_groups
        scale = rstd.float().repeat_interleave(per, dim=1)  # (N, C)
        shift = -mean.float().repeat_interleave(per, dim=1) * scale
        if self.affine:
            scale, shift = scale * self.weight.float(), shift * self.weight.float() + self.bias.float()
        # In float32 like GroupNorm under autocast (bf16 inputs come out as float32).
        return torch.addcmul(shift[:, :, None, None], x.float(), scale[:, :, None, None])


def conv_layer(c_in: int, c_out: int, kernel: int, norm: str | None, *, stride: int = 1,
               padding: int | None = None, padding_mode: str = "reflect", n_groups: int = 4) -> nn.Sequential:
    """CL = Conv2d(bias) → norm → ReLU as ``Sequential(conv, norm|Identity, ReLU)``.

    ``norm`` is ``"group"``, ``"batch"`` or ``None`` (folded: Identity, no parameters).
    Shapes ``(N, c_in, H, W) → (N, c_out, H/stride, W/stride)``.
    """
    pad = (kernel - 1) // 2 if padding is None else padding
    conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=pad, padding_mode=padding_mode, bias=True)
    if norm == "group":
        n = FrameGroupNorm(n_groups, c_out)
    elif norm == "batch":
        n = nn.BatchNorm2d(c_out)
    else:
        n = nn.Identity()
    return nn.Sequential(conv, n, nn.ReLU(inplace=True))


class DownBlock(nn.Module):
    """Strided down-sampling then a residual pair of 3×3 convs: ``(N, c_in, H, W) → (N, c_out, H/2, W/2)``."""

    def __init__(self, c_in: int, c_out: int, kernel: int, norm: str | None, padding_mode: str, n_groups: int):
        super().__init__()
        kw = dict(padding_mode=padding_mode, n_groups=n_groups)
        self.down = conv_layer(c_in, c_in, kernel, norm, stride=2, padding=(kernel - 2) // 2, **kw)
        self.conv1 = conv_layer(c_in, c_out, 3, norm, **kw)
        self.conv2 = conv_layer(c_out, c_out, 3, norm, **kw)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(self.down(x))
        return h + self.conv2(h)


class UpBlock(nn.Module):
    """Transposed-conv up-sampling, 1×1 skip conv, concat, residual pair of 3×3 convs.

    ``(N, d_in, H, W), skip (N, d_s, 2H, 2W) → (N, d_out, 2H, 2W)``.
    """

    def __init__(self, d_in: int, d_out: int, d_skip: int, kernel: int, norm: str | None, padding_mode: str):
        super().__init__()
        self.up = nn.Sequential(
            nn.ConvTranspose2d(d_in, d_out, kernel, stride=2, padding=(kernel - 2) // 2, bias=True),
            nn.BatchNorm2d(d_out),
            nn.ReLU(inplace=True),
        )
        self.skip_conv = conv_layer(d_skip, d_skip, 1, norm, padding=0)
        self.conv1 = conv_layer(d_out + d_skip, d_out, 3, norm, padding_mode=padding_mode)
        self.conv2 = conv_layer(d_out, d_out, 3, norm, padding_mode=padding_mode)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        h = self.conv1(torch.cat([self.up(x), self.skip_conv(skip)], dim=1))
        return h + self.conv2(h)


class SpatialSpectralEncoder(nn.Module):
    """The per-date U-Net (SSE): ``(N, C, H, W) → (N, D, H, W)``, N = B·T frames.

    H and W must be multiples of ``2**n_down`` (8 in the paper) and at least ``2**(n_down+1)``
    (reflect padding needs ≥ 2 pixels at the coarsest level).
    """

    def __init__(self, config: ALISEConfig):
        super().__init__()
        cfg = config
        enc, dec = cfg.encoder_widths, cfg.decoder_widths
        enc_norm = None if cfg.fold_bn else cfg.encoder_norm
        dec_norm = None if cfg.fold_bn else "batch"
        kw = dict(padding_mode=cfg.padding_mode, n_groups=cfg.n_groups)
        self.n_down = len(enc) - 1
        self.in_conv = nn.Sequential(
            conv_layer(cfg.in_channels, enc[0], 3, enc_norm, **kw),
            conv_layer(enc[0], enc[0], 3, enc_norm, **kw),
        )
        self.down_blocks = nn.ModuleList(
            DownBlock(enc[i], enc[i + 1], cfg.down_kernel, enc_norm, cfg.padding_mode, cfg.n_groups)
            for i in range(self.n_down)
        )
        # Deepest first: up_blocks[0] takes the bottleneck (dec[-1] = enc[-1]) and the skip of
        # the second-deepest encoder level.
        self.up_blocks = nn.ModuleList(
            UpBlock(dec[i + 1], dec[i], enc[i], cfg.down_kernel, dec_norm, cfg.padding_mode)
            for i in reversed(range(self.n_down))
        )
        self.out_conv = conv_layer(dec[0], cfg.d_model, 3, dec_norm, padding_mode=cfg.padding_mode)
        self.channels_last = False

    def set_channels_last(self, enabled: bool = True) -> "SpatialSpectralEncoder":
        """Keep weights, and convert inputs, to ``channels_last`` (often faster on CPU); returns self."""
        self.to(memory_format=torch.channels_last if enabled else torch.contiguous_format)
        self.channels_last = enabled
        return self

    @torch.no_grad()
    def fold_batchnorm(self) -> "SpatialSpectralEncoder":
        """Fold every eval-mode BatchNorm into the (transposed) convolution before it; returns self.

        Inference only: the folded module computes the same function as the eval-mode one (to
        float rounding, ~1e-6) with one pass less over each activation, but it has no BatchNorm
        left to train and its ``state_dict`` keys differ — fold a copy (``ALISE.for_inference``).
        GroupNorm depends on each frame's statistics and cannot be folded.
        """
        from torch.nn.utils.fusion import fuse_conv_bn_eval

        for seq in self.modules():
            if isinstance(seq, nn.Sequential) and len(seq) >= 2 and isinstance(seq[1], nn.BatchNorm2d):
                conv = seq[0]
                if not isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)):
                    continue
                seq[0] = fuse_conv_bn_eval(conv.eval(), seq[1].eval(), transpose=isinstance(conv, nn.ConvTranspose2d))
                seq[1] = nn.Identity()
        return self

    def group_norms(self) -> list[FrameGroupNorm]:
        """The GroupNorm layers in the order the forward pass meets them (empty for BatchNorm models)."""
        return [m for m in self.modules() if isinstance(m, FrameGroupNorm)]

    def forward(self, x: Tensor, group_stats: list[tuple[Tensor, Tensor]] | None = None) -> Tensor:
        """``x (N, C, H, W)`` normalised reflectance → ``(N, D, H, W)`` features (≥ 0).

        ``group_stats``: optional ``(mean, rstd)`` pair, each ``(N, G)``, for every layer of
        :meth:`group_norms`, used instead of each frame's own statistics (seamless tiling).
        """
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if group_stats is None:
            return self._forward(x)
        layers = self.group_norms()
        if len(group_stats) != len(layers):
            raise ValueError(f"group_stats has {len(group_stats)} entries for {len(layers)} GroupNorm layers")
        for layer, st in zip(layers, group_stats):
            layer.frozen = st
        try:
            return self._forward(x)
        finally:
            for layer in layers:
                layer.frozen = None

    def _forward(self, x: Tensor) -> Tensor:
        feats = [self.in_conv(x)]  # full resolution, then H/2, H/4, ...
        for block in self.down_blocks:
            feats.append(block(feats[-1]))
        h = feats[-1]
        for block, skip in zip(self.up_blocks, reversed(feats[:-1])):
            h = block(h, skip)
        return self.out_conv(h)
