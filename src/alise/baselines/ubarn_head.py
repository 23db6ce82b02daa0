"""U-BARN's shallow classifier (SC): one master-query attention over dates, then a linear layer.

U-BARN (Dumeur, Valero, Inglada, JSTARS 2024) outputs one feature map per acquisition date, so
a frozen U-BARN cannot feed a linear probe directly. Its shallow classifier compresses time with
a single attention whose query is shared by all dates, then classifies each pixel. ALISE uses it
for the U-BARN^FR baseline ([P] §IV-C-1 item 2, Table II: 13.8K trainable parameters on PASTIS).

Two variants of the query, same attention and classifier otherwise:

* ``query="learned"`` (default, docs/reference.md §7): a learned D-vector is the query; key, value and
  output are Linear(D → D, bias). Parameters: D + 3·(D² + D) + D·K + K = 13,779 for D = 64, K = 19.
* ``query="mean"``: the "mean query" of U-BARN's published shallow classifier: the query is
  Linear(BatchNorm(masked temporal mean of Linear(x))), keys Linear(x), values are the features
  themselves and there is no output projection. Parameters: 3·(D² + D) + 2·D (BatchNorm affine)
  + D·K + K = 13,843 for D = 64, K = 19 (BatchNorm running statistics are buffers). Unlike the code it was
  learned from, the mean is taken over valid dates only, so padding cannot change it.

Both round to the paper's 13.8K. Padded dates are never attended to (True = valid date).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from alise.errors import AliseError


class UBarnShallowClassifier(nn.Module):
    """Master-query temporal attention + Linear(D → K), per pixel.

    ``forward(feats (B, T, D, H, W) per-date U-BARN features, valid_dates (B, T) True = real
    date) -> logits (B, K, H, W)``. ``compress`` gives the (B, D, H, W) map before the classifier.
    """

    def __init__(self, d_model: int = 64, num_classes: int = 19, n_head: int = 1,
                 query: str = "learned"):
        super().__init__()
        if d_model % n_head:
            raise AliseError(f"U-BARN SC: d_model={d_model} is not divisible by n_head={n_head}")
        if query not in ("learned", "mean"):
            raise AliseError(f"U-BARN SC: query must be 'learned' or 'mean', got {query!r}")
        self.d_model, self.n_head, self.query = d_model, n_head, query
        d = d_model
        if query == "learned":
            self.master_query = nn.Parameter(torch.randn(d) / math.sqrt(d))
            self.key = nn.Linear(d, d)
            self.value = nn.Linear(d, d)
            self.out = nn.Linear(d, d)
        else:
            self.query_proj = nn.Linear(d, d)
            self.query_norm = nn.BatchNorm1d(d)
            self.query_out = nn.Linear(d, d)
            self.key = nn.Linear(d, d)
        self.classifier = nn.Linear(d, num_classes)

    def _queries(self, seq: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Per-pixel query, seq (N, T, D), valid (N, T) → (N, D)."""
        if self.query == "learned":
            return self.master_query.expand(seq.shape[0], -1)
        w = valid.to(seq.dtype)[..., None]                                       # (N, T, 1)
        mean = (self.query_proj(seq) * w).sum(dim=1) / w.sum(dim=1)              # (N, D)
        return self.query_out(self.query_norm(mean))

    def compress(self, feats: torch.Tensor, valid_dates: torch.Tensor) -> torch.Tensor:
        """Attention over dates, (B, T, D, H, W) → (B, D, H, W)."""
        b, t, d, h, w = feats.shape
        if d != self.d_model:
            raise AliseError(f"U-BARN SC expects {self.d_model} feature channels, got {d} (feats is (B, T, D, H, W))")
        valid_dates = valid_dates.bool()
        if not bool(valid_dates.any(dim=1).all()):
            raise AliseError("U-BARN SC got a series with no valid date (valid_dates all False): drop it from the batch")
        seq = rearrange(feats, "b t d h w -> (b h w) t d")
        valid = valid_dates.repeat_interleave(h * w, dim=0)                      # (N, T)
        q = rearrange(self._queries(seq, valid), "n (g k) -> n g 1 k", g=self.n_head)
        k = rearrange(self.key(seq), "n t (g k) -> n g t k", g=self.n_head)
        v = self.value(seq) if self.query == "learned" else seq
        v = rearrange(v, "n t (g k) -> n g t k", g=self.n_head)
        # SDPA's boolean attn_mask means True = attend, the same polarity as valid_dates.
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=valid[:, None, None, :])
        attended = rearrange(attended, "n g 1 k -> n (g k)")
        if self.query == "learned":
            attended = self.out(attended)
        return rearrange(attended, "(b h w) d -> b d h w", b=b, h=h, w=w)

    def forward(self, feats: torch.Tensor, valid_dates: torch.Tensor) -> torch.Tensor:
        z = self.compress(feats, valid_dates)                                    # (B, D, H, W)
        logits = self.classifier(rearrange(z, "b d h w -> b h w d"))
        return rearrange(logits, "b h w k -> b k h w")


class UBarnFeatureHead(nn.Module):
    """U-BARN^FR: the shallow classifier on cached, frozen per-date U-BARN features.

    A pixel's feature vector is ``T_max`` blocks of ``1 + D`` values: a validity flag (1 = real
    date, 0 = padding) followed by the D features of that date, so series of different lengths
    share one table and padded dates are masked in the attention. The D features are
    standardised per channel with statistics of the real dates of the training pixels (the flags
    are left as they are); the statistics are buffers saved with the head.
    """

    def __init__(self, d_model: int, num_classes: int):
        super().__init__()
        self.d_model = d_model
        self.sc = UBarnShallowClassifier(d_model, num_classes)
        self.register_buffer("mean", torch.zeros(d_model))
        self.register_buffer("scale", torch.ones(d_model))

    def _split(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        seq = rearrange(f, "n (t e) -> n t e", e=self.d_model + 1)
        return seq[..., 1:], seq[..., 0] > 0.5  # (N, T, D) features, (N, T) valid

    @torch.no_grad()
    def fit_standardisation(self, f: torch.Tensor) -> None:
        """Per-channel mean / std over the real dates of training features ``(N, T·(1+D))``."""
        feats, valid = self._split(f)
        real = feats[valid].double()  # (n_real, D)
        if real.shape[0] == 0:
            return
        std = real.std(0, unbiased=False)
        self.mean.copy_(real.mean(0).to(self.mean.dtype))
        self.scale.copy_(torch.where(std > 1e-8, std, torch.ones_like(std)).to(self.scale.dtype))

    def regularised(self) -> list[nn.Parameter]:
        """Weights under an L2 penalty (every weight matrix and the master query, no bias)."""
        return [p for n, p in self.sc.named_parameters() if not n.endswith("bias")]

    def forward_flat(self, f: torch.Tensor) -> torch.Tensor:
        """``(N, T·(1+D))`` → ``(N, K)`` logits."""
        feats, valid = self._split(f)
        feats = (feats - self.mean.to(feats.dtype)) / self.scale.to(feats.dtype)
        return self.sc(feats[..., None, None], valid)[..., 0, 0]  # pixels as a batch of 1×1 images

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """``(B, T·(1+D), H, W)`` → ``(B, K, H, W)``."""
        b, _, h, w = y.shape
        out = self.forward_flat(rearrange(y, "b f h w -> (b h w) f"))
        return rearrange(out, "(b h w) k -> b k h w", b=b, h=h, w=w)
