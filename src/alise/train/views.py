"""Two temporally interleaved views of one SITS ([P] §III-B-1, Eq. 3–4, §III-C; docs/reference.md §6.2).

1. Keep N = ``n_dates`` (60) *consecutive* acquisitions starting at a uniformly random index
   (all of them if the series is shorter). Redrawn at every call, so at every epoch.
2. Cut them into n_w = ⌈N / t_w⌉ consecutive windows of ``t_w`` dates (Eq. 3).
3. View A = windows 0, 2, 4, … (Eq. 4a); view B = windows 1, 3, 5, … (Eq. 4b).
   A ∪ B = the kept dates, A ∩ B = ∅; both views cover nearly the same period.

With ``shift = 0`` (the paper) both views cover the pixels of the input. With ``shift > 0`` the
input is ``shift`` pixels larger than the crop and each view is cut at its own random offset in
``[0, shift]²`` (one pair of offsets per batch), so the two views of a place are translated by up
to ``shift`` pixels: a pattern tied to the pixel grid (e.g. the period-2 checkerboard of strided
convolutions) is then no longer common to both views, and the invariance loss stops rewarding it.
The losses compare the views on their overlap (:meth:`alise.model.ALISE.pretrain_step`, using
``SITSBatch.origin``). Randomness comes only from the ``torch.Generator`` passed in: same seed,
same views.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from alise.batch import SITS, SITSBatch, collate
from alise.errors import AliseError


def view_indices(n_total: int, n_dates: int, t_w: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Date indices of the two views (Eq. 3–4).

    Args:
        n_total: T, number of dates of the (date-sorted) series.
        n_dates: N, consecutive dates to keep.
        t_w: window length in dates.
        generator: source of the random start.

    Returns:
        ``(idx_a, idx_b)``: int64 ``(T_A,)`` and ``(T_B,)`` increasing indices into ``[0, T)``.

    Raises:
        AliseError: if the kept dates are too few to give both views a date (min(N, T) ≤ t_w).
    """
    keep = min(n_dates, n_total)
    if keep <= t_w or t_w < 1:
        raise AliseError(f"{keep} dates (series of {n_total}, n_dates={n_dates}) cannot be split into two views "
                         f"of windows of t_w={t_w} dates: need at least {t_w + 1} (drop the series or lower t_w)")
    start = int(torch.randint(0, n_total - keep + 1, (1,), generator=generator)) if n_total > keep else 0
    idx = torch.arange(start, start + keep)
    in_a = (torch.arange(keep) // t_w) % 2 == 0  # window parity
    return idx[in_a], idx[~in_a]


def make_views(sits: SITS, generator: torch.Generator | None = None, n_dates: int = 60, t_w: int = 2) -> tuple[SITS, SITS]:
    """Split one SITS ``(T, C, H, W)`` into views ``(SITS_a (T_A, C, H, W), SITS_b (T_B, C, H, W))``.

    ``sits.days`` must be increasing (the readers sort by date).
    """
    days = sits.days
    if days.numel() > 1 and not bool((days[1:] > days[:-1]).all()):
        src = sits.meta.get("source", "input series")
        raise AliseError(f"{src}: acquisition dates must be strictly increasing to build views")
    idx_a, idx_b = view_indices(sits.n_dates, n_dates, t_w, generator)
    return sits.select_dates(idx_a), sits.select_dates(idx_b)


def collate_views(samples: Sequence[SITS], generator: torch.Generator | None = None, n_dates: int = 60,
                  t_w: int = 2, shift: int = 0) -> tuple[SITSBatch, SITSBatch]:
    """Draw views for every SITS and collate them: ``(batch_a, batch_b)``, each ``x (B, T_v, C, H, W)``.

    Each view batch is right-padded to its own longest view (≤ ⌈N/2⌉ dates), labels are kept.
    ``shift > 0``: the samples are ``(H + shift, W + shift)`` and each view is an ``(H, W)`` window
    at its own random offset (see the module docstring), recorded in ``SITSBatch.origin``.
    """
    pairs = [make_views(s, generator, n_dates, t_w) for s in samples]
    a, b = collate([a for a, _ in pairs]), collate([b for _, b in pairs])
    if shift <= 0:
        return a, b
    off = torch.randint(0, shift + 1, (4,), generator=generator).tolist()  # (row A, col A, row B, col B)
    return window(a, off[0], off[1], shift), window(b, off[2], off[3], shift)


def window(batch: SITSBatch, row: int, col: int, shift: int) -> SITSBatch:
    """The ``(H − shift, W − shift)`` window of ``batch`` at ``(row, col)``; ``origin`` = (row, col)."""
    h, w = batch.x.shape[-2] - shift, batch.x.shape[-1] - shift
    sl = (slice(row, row + h), slice(col, col + w))
    return SITSBatch(x=batch.x[..., sl[0], sl[1]].contiguous(), days=batch.days, valid_dates=batch.valid_dates,
                     valid_pixels=batch.valid_pixels[..., sl[0], sl[1]].contiguous(),
                     labels=None if batch.labels is None else batch.labels[..., sl[0], sl[1]], origin=(row, col))
