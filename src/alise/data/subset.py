"""A source restricted to some of its dates — e.g. the dates clear enough for a model.

A model pre-trained on dates at least half clear (``alise pretrain --min-clear 0.5``, the
authors' data recipe) has never seen a mostly cloudy acquisition as input; encoding a series with
its mostly cloudy dates left out feeds it what it was trained on. :func:`clear_dates` is that
filter: the clear fraction of each date is measured over the whole input (not per tile, so a
tiled encoding stays seamless) from the source's decimated overview.
"""

from __future__ import annotations

import numpy as np

from alise.data.source import SITSSource
from alise.errors import AliseError


class DateSubset(SITSSource):
    """The dates ``idx`` (sorted indices into ``parent.dates``) of ``parent``; everything else delegated."""

    def __init__(self, parent: SITSSource, idx):
        self.parent, self.idx = parent, np.asarray(idx, dtype=np.int64)
        self.layout = parent.layout
        super().__init__(parent.name, parent.path, [parent.dates[i] for i in self.idx], parent.grid,
                         class_names=parent.class_names, ignore_labels=parent.ignore_labels, fold=parent.fold)
        self._offset_override = parent._offset_override

    def _read_raw(self, window, idx):
        return self.parent._read_raw(window, self.idx[idx])

    def _read_overview(self, idx, side):
        return self.parent._read_overview(self.idx[idx], side)

    def _read_labels(self, window, year):
        return self.parent._read_labels(window, year)

    def _tag_offsets(self):
        tags = self.parent._tag_offsets()
        return [tags[i] for i in self.idx]

    def _is_float(self) -> bool:
        return self.parent._is_float()

    def offsets(self) -> np.ndarray:
        return self.parent.offsets()[self.idx]

    def offset_decisions(self):
        return self.parent.offset_decisions()

    def clear_fractions(self) -> np.ndarray:
        return self.parent.clear_fractions()[self.idx]

    def change_mask(self, year_a: int, year_b: int, window=None):
        return self.parent.change_mask(year_a, year_b, window)


def clear_date_index(source: SITSSource, min_clear: float) -> np.ndarray:
    """Indices of the dates of ``source`` whose clear fraction is ≥ ``min_clear`` (all for 0)."""
    if min_clear <= 0:
        return np.arange(source.n_dates)
    idx = np.flatnonzero(source.clear_fractions() >= min_clear)
    if idx.size == 0:
        best = float(source.clear_fractions().max())
        raise AliseError(f"{source.path}: no date is at least {min_clear:.0%} clear (the clearest is {best:.0%}); "
                         "lower --min-clear (0 keeps every date)")
    return idx


def clear_dates(source: SITSSource, min_clear: float) -> SITSSource:
    """``source`` without its dates less than ``min_clear`` clear (``source`` itself when none is dropped)."""
    idx = clear_date_index(source, min_clear)
    return source if idx.size == source.n_dates else DateSubset(source, idx)
