"""Segmentation heads on the aligned representation ([P] §IV-B-1, Fig. 5 left; REFERENCE §7).

The paper classifies every pixel with one linear layer on its aligned latent vector
``y_(b,h,w) ∈ R^(n_q·d_model)``: ``c = y A + b`` with ``A ∈ R^(n_q·d_model, K)``. The vector is the
pixel's ``(Q, D)`` block flattened *query-major* (all ``D`` channels of query 0, then query 1, …),
the order of the authors' ``LastBlock(inplanes = d_model·n_q)``. For PASTIS (``Q = 10``, ``D = 64``,
``K = 19``) the head has 640·19 + 19 = **12,179** parameters ("12.2K" in Table II).

Three configurations share this head (Table II):

* ``lp`` (ALISE^LP): frozen pre-trained encoder, only the head trains (on cached embeddings, see
  :mod:`alise.downstream.features`);
* ``ft`` (ALISE^FT): encoder initialised from pre-training and trained end to end with the head;
* ``fs`` (ALISE^FS): same architecture, random initialisation.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

#: The three downstream configurations of [P] Table II.
MODES: tuple[str, ...] = ("lp", "ft", "fs")


def flatten_queries(y: Tensor) -> Tensor:
    """Per-pixel query-major flattening: ``(B, Q, D, H, W)`` → ``(B, Q·D, H, W)``.

    Channel ``q·D + d`` of the output is channel ``d`` of query ``q``.
    """
    return rearrange(y, "b q d h w -> b (q d) h w")


class LinearProbe(nn.Module):
    """``Linear(Q·D → K)`` applied to every pixel of an aligned representation ([P] Fig. 5).

    Args:
        n_q: Q, number of queries of the temporal projector.
        d_model: D, channels per query.
        num_classes: K, classifier outputs (class ids ``0 … K-1``).
    """

    def __init__(self, n_q: int, d_model: int, num_classes: int):
        super().__init__()
        self.n_q, self.d_model, self.num_classes = int(n_q), int(d_model), int(num_classes)
        self.linear = nn.Linear(self.n_q * self.d_model, self.num_classes)

    @property
    def in_features(self) -> int:
        return self.n_q * self.d_model

    def forward_flat(self, f: Tensor) -> Tensor:
        """Logits of already flattened features: ``(..., Q·D)`` → ``(..., K)``."""
        return self.linear(f)

    def forward(self, y: Tensor) -> Tensor:
        """Aligned representation → per-pixel logits.

        Args:
            y: ``(B, Q, D, H, W)`` embeddings, or ``(B, Q·D, H, W)`` already flattened query-major.

        Returns:
            ``(B, K, H, W)`` unnormalised logits.
        """
        if y.ndim == 5:
            y = flatten_queries(y)
        f = rearrange(y, "b f h w -> b h w f")
        return rearrange(self.linear(f), "b h w k -> b k h w")


class SegmentationModel(nn.Module):
    """An ALISE encoder followed by a :class:`LinearProbe` (ALISE^FT / ALISE^FS, [P] Table II).

    Args:
        encoder: an object with ``encode(x, days, valid_dates) -> (B, Q, D, H, W)`` (the ALISE
            model; only its encoder path is used, the decoder/projector get no gradient).
        head: the linear probe.
    """

    def __init__(self, encoder: nn.Module, head: LinearProbe):
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, x: Tensor, days: Tensor, valid_dates: Tensor) -> Tensor:
        """``x (B, T, C, H, W)`` normalised, ``days (B, T)`` days since 2014-03-03, ``valid_dates (B, T)``
        bool → ``(B, K, H, W)`` logits."""
        return self.head(self.encoder.encode(x, days, valid_dates))

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters that take part in the segmentation forward pass (encoder path + head)."""
        used = _encoder_parameters(self.encoder)
        return used + list(self.head.parameters())


def _encoder_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters of the encoder path ``encode`` uses (UNet, Transformer, temporal projector)."""
    if hasattr(model, "encoder_modules"):
        return [p for m in model.encoder_modules().values() for p in m.parameters()]
    return list(model.parameters())


def count_parameters(module: nn.Module | list[nn.Parameter]) -> int:
    """Number of scalar parameters (e.g. 12,179 for the PASTIS linear probe)."""
    params = module.parameters() if isinstance(module, nn.Module) else module
    return int(sum(p.numel() for p in params))


@torch.no_grad()
def predict_logits(head: LinearProbe, features: Tensor, chunk: int = 1 << 16) -> Tensor:
    """Apply ``head`` to cached features ``(N, Q·D)`` in chunks → ``(N, K)`` float32 logits."""
    parts = [head.forward_flat(features[s:s + chunk].float()) for s in range(0, features.shape[0], chunk)]
    return torch.cat(parts) if parts else features.new_zeros((0, head.num_classes))
