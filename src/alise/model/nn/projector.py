"""Temporal projector: learned queries attend over each pixel's dates ([P] Eq. 1, App. E-2; docs/reference.md §4).

This is what aligns irregular series: whatever the number and dates of the T acquisitions, every
pixel comes out as Q = n_q vectors of D channels. Per pixel sequence ``X (T, D)`` and head ``h``::

    K_h = (X W_K)_h            W_K: Linear(D → heads·d_k, no bias)
    V_h = X[:, h-th chunk of D/heads channels]          (no value projection)
    A_h = softmax(Q_h K_hᵀ / sqrt(d_k))                 padded dates masked out
    Y   = concat_h(A_h V_h)    → (Q, D)

Learned queries ``Q (heads, n_q, d_k)`` are shared by all pixels; there is no query or output
projection. Paper: 2 heads, d_k 16, n_q 10 → 320 + 2,048 = 2,368 parameters (scale 1/4, the SDPA
default; Eq. 1 writes 1/sqrt(d_model), which is what the MALICE export's d_k = 64 gives).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


class TemporalProjector(nn.Module):
    """``forward(x (N, T, D), valid_dates (N, T) bool) → (N, Q, D)``; N = B·H·W pixel sequences."""

    def __init__(self, d_model: int = 64, n_q: int = 10, n_heads: int = 2, d_k: int = 16):
        super().__init__()
        self.n_heads = n_heads
        self.queries = nn.Parameter(torch.randn(n_heads, n_q, d_k) * math.sqrt(2.0 / d_k))
        self.key = nn.Linear(d_model, n_heads * d_k, bias=False)
        nn.init.normal_(self.key.weight, std=math.sqrt(2.0 / d_k))

    def forward(self, x: Tensor, valid_dates: Tensor) -> Tensor:
        n = x.shape[0]
        k = rearrange(self.key(x), "n t (h e) -> n h t e", h=self.n_heads)
        v = rearrange(x, "n t (h e) -> n h t e", h=self.n_heads).to(k.dtype)
        q = self.queries.to(k.dtype).expand(n, -1, -1, -1)  # (N, heads, Q, d_k), a view
        # SDPA's boolean attn_mask is True = attend: valid dates as is. A pixel with no valid date
        # would give an undefined result; the model refuses such samples before getting here.
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=valid_dates[:, None, None, :])
        return rearrange(out, "n h q e -> n q (h e)")
