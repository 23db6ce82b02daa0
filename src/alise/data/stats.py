"""Clear-pixel samples for the normalisation statistics ([P] §IV-A; docs/reference.md §1.2).

``pretrain`` computes median and 5 %/95 % quantiles per band over random clear pixels of its
training data (:meth:`alise.normalise.NormStats.from_samples`). This module draws those pixels:
one random window per source (all its dates), clear pixels only, an equal quota per source.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from einops import rearrange

from alise.errors import AliseError
from alise.data.source import SITSSource

#: Most floats read per source (T · C · h · w) when sampling, to bound memory on big rasters.
_READ_BUDGET = 2**25
#: Most sources visited (a random subset when there are more).
_MAX_SOURCES = 64


def sample_clear_pixels(sources: Sequence[SITSSource], n: int = 100_000, seed: int = 0) -> np.ndarray:
    """``(N, C)`` float32 offset-corrected DN of clear pixels, ``N ≤ n``, drawn reproducibly.

    Raises :class:`AliseError` if no source has a single clear pixel in its sampled window.
    """
    if not sources:
        raise AliseError("no series to sample pixels from")
    rng = np.random.default_rng(seed)
    picked = list(sources)
    if len(picked) > _MAX_SOURCES:
        picked = [picked[i] for i in sorted(rng.choice(len(picked), _MAX_SOURCES, replace=False))]
    quota = -(-n // len(picked))
    chunks = []
    for src in picked:
        T, C, H, W = src.shape
        side = int(np.clip(np.sqrt(_READ_BUDGET / (T * C)), 16, 512))
        h, w = min(H, side), min(W, side)
        window = (int(rng.integers(H - h + 1)), int(rng.integers(W - w + 1)), h, w)
        raw = src.read(window)
        px = rearrange(raw.dn, "t c h w -> (t h w) c")[rearrange(raw.valid, "t h w -> (t h w)")]
        if len(px) > quota:
            px = px[np.sort(rng.choice(len(px), quota, replace=False))]
        chunks.append(px)
    out = np.concatenate(chunks).astype(np.float32)
    if len(out) == 0:
        names = ", ".join(s.name for s in picked[:3])
        raise AliseError(f"no clear pixel found in {names}{' …' if len(picked) > 3 else ''}: check the cloud "
                         "mask (--clear-scl) or give normalisation statistics")
    if len(out) > n:
        out = out[np.sort(rng.choice(len(out), n, replace=False))]
    return out
