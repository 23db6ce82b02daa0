"""Two temporally interleaved views of one SITS ([P] §III-B-1, Eq. 3–4, §III-C; REFERENCE §6.2).

1. Keep N = ``n_dates`` (60) *consecutive* acquisitions starting at a uniformly random index
   (all of them if the series is shorter). Redrawn at every call, so at every epoch.
2. Cut them into n_w = ⌈N / t_w⌉ consecutive windows of ``t_w`` dates (Eq. 3).
3. View A = windows 0, 2, 4, … (Eq. 4a); view B = windows 1, 3, 5, … (Eq. 4b).
   A ∪ B = the kept dates, A ∩ B = ∅; both views cover nearly the same period.

Both views share the spatial extent of the input (cropping is the data loader's job). Randomness
comes only from the ``torch.Generator`` passed in: same seed, same views.
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
                  t_w: int = 2) -> tuple[SITSBatch, SITSBatch]:
    """Draw views for every SITS and collate them: ``(batch_a, batch_b)``, each ``x (B, T_v, C, H, W)``.

    Each view batch is right-padded to its own longest view (≤ ⌈N/2⌉ dates), labels are kept.
    """
    pairs = [make_views(s, generator, n_dates, t_w) for s in samples]
    return collate([a for a, _ in pairs]), collate([b for _, b in pairs])
