"""Dropout with a cheaper random source: the same operation as :func:`torch.nn.functional.dropout`.

Each element is kept with probability ``1 − p`` and scaled by ``1 / (1 − p)``, zeroed otherwise.
The keep/drop draws come from 16 random bits per element (``torch.randint`` on int64 words viewed
as int16), so ``p`` is honoured to 1/65536; torch's CPU dropout draws a float Bernoulli per
element, about three times slower on the 2-core CPU for a cache-sized chunk (8k tokens × 128:
5.7 ms vs 1.8 ms) — dropout was the largest single cost of a pre-training step of the paper's
configuration (docs/performance.md). On accelerators torch's fused kernel is used as it is.
Randomness comes from the global generator, so seeding and activation checkpointing (which
replays the generator state) behave exactly as with torch's dropout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

#: False: use torch's own dropout everywhere (``benchmarks/pretrain_step.py`` times both).
FAST = True


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """``x`` (any shape) with dropout ``p`` in training, unchanged otherwise."""
    if not training or p <= 0.0:
        return x
    if not FAST or x.device.type != "cpu" or p >= 1.0:
        return F.dropout(x, p, True)
    n = x.numel()
    bits = torch.randint(-(2 ** 63), 2 ** 63 - 1, ((n + 3) // 4,), dtype=torch.int64, device=x.device)
    keep = bits.view(torch.int16)[:n].view(x.shape) >= round(p * 65536) - 32768  # P(keep) = 1 − p
    return torch.where(keep, x * (1.0 / (1.0 - p)), x.new_zeros(()))
