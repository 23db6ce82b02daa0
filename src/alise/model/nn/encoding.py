"""Sinusoidal encoding of acquisition dates ([P] §III-A, Eq. 8 footnote; docs/reference.md §1.5).

A date enters the model as ``δ_t``, its number of days since 2014-03-03 (a float, not scaled).
For channel ``j`` of ``D``::

    angle_j = δ_t / base ** (2 * (j // 2) / D)
    PE_j    = sin(angle_j) if j is even else cos(angle_j)

i.e. interleaved sin/cos pairs sharing one frequency. ``base`` is 1000 in the ALISE pre-training
configuration (the paper's model) and 10000 in the MALICE export. The same function encodes the
encoder's input dates and the decoder's target dates (Eq. 8).
"""

from __future__ import annotations

import torch
from torch import Tensor


def date_encoding(days: Tensor, d_model: int, base: float = 1000.0) -> Tensor:
    """Encode dates as ``(..., D)`` float32 vectors.

    Args:
        days: ``(...)`` (typically ``(B, T)``) days since 2014-03-03, any float/int dtype.
        d_model: D, even.
        base: the constant of the geometric frequency progression.

    Returns:
        ``(..., D)`` float32 encoding, values in [-1, 1]. Computed in float32 even under autocast
        (angles reach ~4000 rad; bf16 would destroy them).
    """
    days = days.to(torch.float32)
    # (D,) denominators base ** (2i / D), shared by the pairs (2i, 2i+1), computed in double
    # precision on the host (a list over the D channels, not over dates or pixels).
    denom = torch.tensor([float(base) ** (2 * (k // 2) / d_model) for k in range(d_model)],
                         dtype=torch.float32, device=days.device)
    j = torch.arange(d_model, device=days.device)
    angle = days[..., None] / denom  # (..., D)
    return torch.where(j % 2 == 0, torch.sin(angle), torch.cos(angle))
