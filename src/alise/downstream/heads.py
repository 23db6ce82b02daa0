"""Segmentation heads on the aligned representation ([P] §IV-B-1, Fig. 5 left; docs/reference.md §7).

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


class Standardise(nn.Module):
    """Per-feature standardisation ``(f − mean) / scale`` fitted on training pixels only.

    The statistics are buffers (saved with the head, not trained), so a head applies to new
    features exactly the transform it was trained with. Identity until :meth:`fit` is called.
    """

    def __init__(self, n_features: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))

    @torch.no_grad()
    def fit(self, f: Tensor, keep: Tensor | None = None) -> "Standardise":
        """Statistics of ``f (N, F)`` (float64 sums); features with ``keep == False`` stay untouched.

        A (near-)constant feature gets scale 1, so it can neither blow up nor carry information.
        """
        f64 = f.double()
        mean, std = f64.mean(0), f64.std(0, unbiased=False)
        scale = torch.where(std > 1e-8 * (1 + mean.abs()), std, torch.ones_like(std))
        if keep is not None:
            mean, scale = torch.where(keep, mean, 0.0), torch.where(keep, scale, 1.0)
        self.mean.copy_(mean.to(self.mean.dtype))
        self.scale.copy_(scale.to(self.scale.dtype))
        return self

    def forward(self, f: Tensor) -> Tensor:
        return (f - self.mean.to(f.dtype)) / self.scale.to(f.dtype)


class LinearProbe(nn.Module):
    """``Linear(F → K)`` applied to every pixel's standardised features ([P] Fig. 5).

    For ALISE, ``F = Q·D`` (the aligned representation flattened query-major); any other frozen
    feature source (gap-filled series, Presto, monthly medians) uses ``n_q = 1, d_model = F``.
    The standardisation (:class:`Standardise`) and the set of classes seen in training
    (``active``, buffers) travel with the weights; the trainable parameters are those of the
    paper's head only (12,179 for PASTIS).

    Args:
        n_q: Q, number of queries of the temporal projector.
        d_model: D, channels per query.
        num_classes: K, classifier outputs (class ids ``0 … K-1``).
    """

    def __init__(self, n_q: int, d_model: int, num_classes: int):
        super().__init__()
        self.n_q, self.d_model, self.num_classes = int(n_q), int(d_model), int(num_classes)
        self.standardise = Standardise(self.n_q * self.d_model)
        self.linear = nn.Linear(self.n_q * self.d_model, self.num_classes)
        self.register_buffer("active", torch.ones(self.num_classes, dtype=torch.bool))

    def fit_standardisation(self, f: Tensor) -> None:
        """Fit the feature statistics on training features ``(N, F)``."""
        self.standardise.fit(f)

    def regularised(self) -> list[nn.Parameter]:
        """Parameters under the L2 penalty (the weights; biases are not penalised, as in scikit-learn)."""
        return [self.linear.weight]

    def forward_flat(self, f: Tensor) -> Tensor:
        """Logits of already flattened features: ``(..., F)`` → ``(..., K)``; classes never seen
        in training (``active == False``) get −inf."""
        return self.standardised_logits(self.standardise(f))

    def standardised_logits(self, z: Tensor) -> Tensor:
        """:meth:`forward_flat` of features already standardised with this head's statistics."""
        return self.linear(z).masked_fill(~self.active, float("-inf"))

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
        return rearrange(self.forward_flat(f), "b h w k -> b k h w")


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
