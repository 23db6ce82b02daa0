"""Pre-training samples: random crops × random windows of consecutive dates ([P] §III-C, §IV-A).

The paper draws, for every SITS and at every epoch, ``n_dates = 60`` *consecutive* acquisitions at
a random position ("60 consecutive dates were randomly selected among the 4 years of data … the
selection … changes at each epoch", §III-C), and a random 64 × 64 crop for training (centre crop for
validation, §IV-A). View splitting into A/B windows (Eq. 3–4) happens later, on the batch.

Decoded series are kept in memory (up to ``cache_bytes``, 2 GiB by default): a sample is then a
slice of an array instead of a window read and decompressed from every date's file, so the data
never stalls the step on small and medium datasets (the shipped real patch is 19 MB decoded).
Series beyond the budget are read window by window as before.

Every draw is a pure function of ``(seed, epoch, index)`` so a resumed run sees the same samples.
With DataLoader workers, call :meth:`PretrainDataset.set_epoch` before each epoch and use
non-persistent workers (or set the epoch inside the workers) so they see the new epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from torch.utils.data import Dataset

from alise.batch import SITS
from alise.errors import AliseError
from alise.normalise import NormStats
from alise.data.source import SITSSource, Window


class PretrainDataset(Dataset):
    """Random (or centre) crops of random windows of consecutive dates from several sources.

    Args:
        sources: the series to draw from (each at least ``crop`` × ``crop`` pixels).
        norm: normalisation statistics applied to the DN (docs/reference.md §1.2).
        crop: side of the square crop in pixels (paper: 64).
        n_dates: consecutive dates per sample (paper: 60); all dates if a series has fewer.
        samples_per_epoch: dataset length; None = one sample per ``crop``-sized tile of every source.
            When given, each sample picks its source at random, weighted by area.
        seed: base seed; draws depend only on ``(seed, epoch, index)``.
        center: centre crop and the middle date window, identical every epoch (validation).
        min_clear: drop dates whose clear fraction over the whole source is below this before
            windowing (docs/reference.md §1.3 drops dates > 50 % cloudy: ``min_clear=0.5``); 0 keeps all.
        cache_bytes: decoded series kept in memory up to this many bytes (0: none).

    Items are :class:`SITS` with ``x (T, C, crop, crop)``, ``T = min(n_dates, dates kept)``.
    """

    def __init__(self, sources: Sequence[SITSSource], norm: NormStats, crop: int = 64, n_dates: int = 60,
                 samples_per_epoch: int | None = None, seed: int = 0, center: bool = False, min_clear: float = 0.0,
                 cache_bytes: int = 2 << 30):
        if not sources:
            raise AliseError("no training series given")
        if crop < 1 or n_dates < 1:
            raise AliseError(f"crop ({crop}) and n_dates ({n_dates}) must be positive")
        small = [s for s in sources if min(s.grid.height, s.grid.width) < crop]
        if small:
            s = small[0]
            raise AliseError(f"{s.path}: {s.grid.height} × {s.grid.width} px is smaller than the crop ({crop}); "
                             f"use a crop of at most {min(s.grid.height, s.grid.width)}")
        self.sources, self.norm, self.crop, self.n_dates = list(sources), norm, int(crop), int(n_dates)
        self.seed, self.center, self.epoch = int(seed), bool(center), 0
        if min_clear > 0:
            self.kept = [np.flatnonzero(s.clear_fractions() >= min_clear) for s in self.sources]
        else:
            self.kept = [np.arange(s.n_dates) for s in self.sources]
        if not any(len(k) for k in self.kept):
            raise AliseError(f"no date has a clear fraction ≥ {min_clear} in any training series")
        tiles = np.array([-(-s.grid.height // crop) * -(-s.grid.width // crop) if len(k) else 0
                          for s, k in zip(self.sources, self.kept)])
        self._cum = np.cumsum(tiles)
        self.samples_per_epoch = samples_per_epoch
        self.cache_bytes = int(cache_bytes)
        self._cache: dict[int, object] = {}  # source index → RawSITS of its kept dates (all pixels)
        self._cached_bytes = 0

    def __len__(self) -> int:
        return int(self.samples_per_epoch if self.samples_per_epoch is not None else self._cum[-1])

    def set_epoch(self, epoch: int) -> None:
        """Re-draw crops and date windows for ``epoch`` (deterministic given the seed)."""
        self.epoch = int(epoch)

    def draw(self, i: int) -> tuple[int, Window, np.ndarray]:
        """``(source index, window (row, col, h, w), date indices)`` of sample ``i`` this epoch."""
        if not 0 <= i < len(self):
            raise IndexError(i)
        rng = np.random.default_rng([self.seed, 0 if self.center else self.epoch, i])
        total = int(self._cum[-1])
        slot = i % total if self.samples_per_epoch is None else int(rng.integers(total))
        k = int(np.searchsorted(self._cum, slot, side="right"))
        src, kept = self.sources[k], self.kept[k]
        H, W, c = src.grid.height, src.grid.width, self.crop
        n = min(self.n_dates, len(kept))
        if self.center:
            top, left, first = (H - c) // 2, (W - c) // 2, (len(kept) - n) // 2
        else:
            top, left = int(rng.integers(H - c + 1)), int(rng.integers(W - c + 1))
            first = int(rng.integers(len(kept) - n + 1))
        return k, (top, left, c, c), kept[first:first + n]

    def _read(self, k: int, window: Window, dates: np.ndarray):
        """``RawSITS`` of ``window`` × ``dates`` of source ``k``: a slice of the decoded series when
        it is (or now fits) in the cache, else a read of just that window."""
        if k not in self._cache:
            src, kept = self.sources[k], self.kept[k]
            size = len(kept) * len(src.bands) * src.grid.height * src.grid.width * 4
            if self._cached_bytes + size > self.cache_bytes:
                return self.sources[k].read(window, dates=dates)
            self._cache[k] = src.read(None, dates=kept)
            self._cached_bytes += size
        full, pos = self._cache[k], np.searchsorted(self.kept[k], dates)
        r, c, h, w = window
        sl = (pos, slice(None), slice(r, r + h), slice(c, c + w))
        return replace(full, dn=full.dn[sl], valid=full.valid[pos, r:r + h, c:c + w], days=full.days[pos],
                       labels=None if full.labels is None else full.labels[r:r + h, c:c + w],
                       meta={**full.meta, "window": tuple(window),
                             "dates": [full.meta["dates"][j] for j in pos]})

    def __getitem__(self, i: int) -> SITS:
        k, window, dates = self.draw(i)
        sits = self._read(k, window, dates).to_sits(self.norm)
        sits.meta.update(epoch=self.epoch, index=i)
        return sits
