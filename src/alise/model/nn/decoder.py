"""Cross-reconstruction decoder g_φ ([P] §III-B-3, Eq. 8–9, Fig. 3; docs/reference.md §5).

Fully temporal, per pixel: given the aligned representation ``Y (Q, D)`` of one view and the dates
of the other view, it predicts that view's normalised reflectances. For target date δ_t::

    q_t  = M_β + PE(δ_t)                                          (Eq. 8, sum, one shared token)
    out  = softmax((q W_1)(Y W_2)ᵀ / sqrt(D)) Y                    (Eq. 9, single head, values = Y)
    x̂_t = Linear(D → C)(out)

Parameters: M_β (64) + W_1, W_2 (64×64, no bias) + Linear(64→10) = 8,906. The queries depend only
on the dates, so they are computed once per sample and shared by its pixels. The same module
gap-fills: any target dates, observed or not.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from alise.model.nn.encoding import date_encoding


class CrossReconstructionDecoder(nn.Module):
    """``forward(y (B, Q, D, H, W), days (B, T')) → (B, T', C, H, W)`` normalised reflectance."""

    def __init__(self, d_model: int = 64, out_channels: int = 10, pe_base: float = 1000.0):
        super().__init__()
        self.pe_base = pe_base
        std = math.sqrt(2.0 / d_model)
        self.mask_token = nn.Parameter(torch.randn(d_model) * std)  # M_β
        self.w_1 = nn.Linear(d_model, d_model, bias=False)
        self.w_2 = nn.Linear(d_model, d_model, bias=False)
        nn.init.normal_(self.w_1.weight, std=std)
        nn.init.normal_(self.w_2.weight, std=std)
        self.out = nn.Linear(d_model, out_channels)

    def forward(self, y: Tensor, days: Tensor) -> Tensor:
        b, _, d, h, w = y.shape
        q = self.w_1(self.mask_token + date_encoding(days, d, self.pe_base))  # (B, T', D), Eq. 8
        y_seq = rearrange(y, "b q d h w -> b (h w) q d")
        k = self.w_2(y_seq)  # (B, HW, Q, D)
        q = q[:, None].to(k.dtype).expand(b, h * w, -1, -1)  # (B, HW, T', D), a view
        out = F.scaled_dot_product_attention(q, k, y_seq.to(k.dtype))  # scale 1/sqrt(D), Eq. 9
        x_hat = self.out(out)  # (B, HW, T', C)
        return rearrange(x_hat, "b (h w) t c -> b t c h w", h=h, w=w)
