"""Temporal Transformer of U-BARN, applied to every pixel's date sequence ([P] Table IX; docs/reference.md §3).

Paper configuration: 3 layers, d_model 64, 4 heads, feed-forward 128, ReLU, dropout 0.1 on the
attention weights and on both residual branches, LayerNorm eps 1e-5, no final norm, no causal
mask; 33,472 parameters per layer, 100,416 in all. Padded dates are excluded as attention keys;
outputs at padded positions are meaningless and never used downstream.

Two blocks share one parameter layout (compatible with ``nn.MultiheadAttention`` /
``nn.TransformerEncoderLayer``: ``in_proj_weight (3D, D)`` with q, k, v row blocks,
``in_proj_bias (3D)``, ``out_proj``, ``linear1``, ``linear2``, ``norm1``, ``norm2``):

* ``"postnorm"`` (paper, PyTorch ``norm_first=False``)::

      x = norm1(x + drop(SA(x)));  x = norm2(x + drop(FF(x)))

* ``"double_ln"`` (the block of the MALICE export, docs/reference.md D4; ``norm1`` is used twice)::

      a = x + drop(SA(norm1(x)));  b = norm1(a);  x = norm2(b + drop(FF(b)))

Attention is computed with :func:`torch.nn.functional.scaled_dot_product_attention`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from alise.model.config import ALISEConfig
import alise.model.nn.dropout as _dropout
from alise.model.nn.dropout import dropout


class TransformerLayer(nn.Module):
    """One self-attention + feed-forward layer over ``(N, T, D)`` sequences."""

    def __init__(self, d_model: int, n_heads: int, d_ffn: int, dropout: float, block: str = "postnorm"):
        super().__init__()
        self.n_heads, self.dropout, self.block = n_heads, dropout, block
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d_model))
        self.out_proj = nn.Linear(d_model, d_model)
        self.linear1 = nn.Linear(d_model, d_ffn)
        self.linear2 = nn.Linear(d_ffn, d_model)
        self.norm1 = nn.LayerNorm(d_model, eps=1e-5)
        self.norm2 = nn.LayerNorm(d_model, eps=1e-5)
        # Same initialisation as nn.MultiheadAttention.
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def _drop(self, x: Tensor) -> Tensor:
        return dropout(x, self.dropout, self.training)

    def self_attention(self, x: Tensor, attend: Tensor) -> Tensor:
        """Multi-head self-attention: ``x (N, T, D)``, ``attend (N, 1, 1, T)`` bool (True = real key)
        or None (every key is real) → ``(N, T, D)``."""
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)  # (N, T, 3D)
        q, k, v = rearrange(qkv, "n t (three h e) -> three n h t e", three=3, h=self.n_heads)
        if self.training and self.dropout > 0 and x.device.type == "cpu" and _dropout.FAST:
            # Dropout on the attention weights (Table IX) rules out SDPA's fused CPU kernel; written
            # out, with the cheaper dropout of alise.model.nn.dropout (same operation).
            scores = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5  # (N, heads, T, T)
            if attend is not None:
                scores = scores.masked_fill(~attend, float("-inf"))
            out = dropout(scores.softmax(-1), self.dropout, True) @ v
        else:
            # SDPA's boolean attn_mask is True = attend, i.e. our valid_dates convention as is.
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attend,
                                                 dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(rearrange(out, "n h t e -> n t (h e)"))

    def feed_forward(self, x: Tensor) -> Tensor:
        return self.linear2(self._drop(F.relu(self.linear1(x))))

    def forward(self, x: Tensor, attend: Tensor) -> Tensor:
        """``x (N, T, D)``, ``attend (N, 1, 1, T)`` bool or None → ``(N, T, D)``."""
        if self.block == "postnorm":
            x = self.norm1(x + self._drop(self.self_attention(x, attend)))
            return self.norm2(x + self._drop(self.feed_forward(x)))
        # "double_ln": the same LayerNorm before attention and after the attention residual.
        a = x + self._drop(self.self_attention(self.norm1(x), attend))
        b = self.norm1(a)
        return self.norm2(b + self._drop(self.feed_forward(b)))


class TemporalTransformer(nn.Module):
    """A stack of ``n_layers`` :class:`TransformerLayer` (no final norm).

    ``forward(x (N, T, D), valid_dates (N, T) bool) → (N, T, D)``; N = B·H·W pixel sequences.
    """

    def __init__(self, config: ALISEConfig):
        super().__init__()
        c = config
        self.layers = nn.ModuleList(
            TransformerLayer(c.d_model, c.n_heads, c.d_ffn, c.dropout, c.block) for _ in range(c.n_layers)
        )

    def forward(self, x: Tensor, valid_dates: Tensor) -> Tensor:
        # (N, 1, 1, T), True = attend (SDPA convention); None when every date is real (the usual
        # case when encoding a raster), which lets SDPA skip the mask (~15 % of attention time).
        attend = None if bool(valid_dates.all()) else valid_dates[:, None, None, :]
        for layer in self.layers:
            x = layer(x, attend)
        return x

