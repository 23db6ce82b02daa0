"""Latent projector π_w ([P] §III-B-2, App. E-1, Fig. 12; docs/reference.md §6.1).

Operates on channels only: every (pixel, query) vector of ``Y`` is mapped independently,
``Linear(D → hidden, bias) → BatchNorm1d(hidden) → ReLU → Linear(hidden → d_emb, no bias)``.
BatchNorm statistics are taken over the B·Q·H·W vectors of one view. Paper: 64 → 64 → 128,
12,480 parameters. Used only by the invariance / covariance losses (Eq. 5–7).
"""

from __future__ import annotations

from einops import rearrange
from torch import Tensor, nn


class LatentProjector(nn.Module):
    """``forward(y (B, Q, D, H, W)) → z (B, Q, d_emb, H, W)``."""

    def __init__(self, d_model: int = 64, d_hidden: int = 64, d_emb: int = 128):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_model, d_hidden),
            nn.BatchNorm1d(d_hidden),
            nn.ReLU(inplace=True),
            nn.Linear(d_hidden, d_emb, bias=False),
        )

    def forward(self, y: Tensor) -> Tensor:
        b, q, _, h, w = y.shape
        z = self.net(rearrange(y, "b q d h w -> (b q h w) d"))
        return rearrange(z, "(b q h w) e -> b q e h w", b=b, q=q, h=h, w=w)
