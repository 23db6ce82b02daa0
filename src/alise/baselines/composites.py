"""Monthly median composites of clear pixels: the input ALISE builds for Presto ([P] §IV-C-1).

Presto expects one value per band and calendar month. The paper replaces Presto's "least cloudy
scene of each month" by a per-pixel, per-band median over the cloud-free acquisitions of each
month, because the least cloudy scene does not guarantee a clear observation at every pixel.
Months where a pixel has no clear acquisition are marked invalid and masked for Presto.

The median is the usual one (mean of the two middle values for an even count, as
``np.nanmedian``), computed without loops over dates or pixels: observations are scattered into
a (month, rank-in-month) grid padded with NaN, sorted (NaN last) and the middle ranks gathered.
"""

from __future__ import annotations

import numpy as np
import torch

from alise.dates import DATE_ORIGIN
from alise.errors import AliseError


def calendar_months(days: torch.Tensor) -> torch.Tensor:
    """Days since 2014-03-03 (T,) → months since January 2014 (T,) int64 (calendar month = value % 12)."""
    origin = np.datetime64(DATE_ORIGIN.isoformat(), "D")
    dates = origin + np.rint(days.detach().cpu().numpy()).astype("int64").astype("timedelta64[D]")
    months = dates.astype("datetime64[M]").astype("int64") - np.datetime64("2014-01", "M").astype("int64")
    return torch.from_numpy(months.astype("int64")).to(days.device)


def monthly_median_composites(dn, days, valid) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-pixel median of the clear observations of each calendar month.

    Args:
        dn: (T, C, H, W) reflectances (any unit, e.g. S2 digital numbers); array or tensor.
        days: (T,) acquisition dates in days since 2014-03-03, any order.
        valid: (T, H, W) bool, True = clear observation (not cloud, shadow, nodata or padding).

    Returns:
        comp: (M, C, H, W) float32 medians; 0 where ``comp_valid`` is False.
        month: (M,) int64 calendar month of each composite, 0 = January … 11 = December.
        comp_valid: (M, H, W) bool, True where the pixel had ≥ 1 clear observation that month.

    M covers every calendar month from the first to the last date (consecutive, so a month
    without any acquisition gives an all-invalid composite).
    """
    dn = torch.as_tensor(dn).to(torch.float32)
    days = torch.as_tensor(days)
    valid = torch.as_tensor(valid).bool()
    if dn.ndim != 4 or days.shape != dn.shape[:1] or valid.shape != (dn.shape[0], *dn.shape[2:]):
        raise AliseError(f"monthly_median_composites: expected dn (T, C, H, W), days (T,), valid (T, H, W); "
                         f"got {tuple(dn.shape)}, {tuple(days.shape)}, {tuple(valid.shape)}")
    if dn.shape[0] == 0:
        raise AliseError("monthly_median_composites: the series has no date")
    t, c, h, w = dn.shape
    abs_month = calendar_months(days)                                            # (T,)
    first = int(abs_month.min())
    slot = abs_month - first                                                     # (T,) 0 … M−1
    m = int(slot.max()) + 1
    onehot = torch.nn.functional.one_hot(slot, m)                                # (T, M)
    rank = (onehot.cumsum(0) * onehot).sum(1) - 1                                # (T,) rank within its month
    r = int(rank.max()) + 1

    grid = dn.new_full((m, r, c, h, w), float("nan"))
    grid[slot, rank] = torch.where(valid[:, None], dn, float("nan"))             # (M, R, C, H, W)
    grid = grid.sort(dim=1).values                                               # NaN sort last
    count = (~grid.isnan()).sum(dim=1)                                           # (M, C, H, W) non-NaN obs
    lo = ((count - 1).clamp(min=0) // 2)[:, None]                                # (M, 1, C, H, W)
    hi = (count // 2).clamp(max=r - 1)[:, None]
    median = 0.5 * (grid.gather(1, lo) + grid.gather(1, hi))[:, 0]              # (M, C, H, W)
    comp_valid = (count > 0).all(dim=1)                                          # (M, H, W)
    comp = torch.where(comp_valid[:, None], median, 0.0)
    month = (torch.arange(first, first + m, device=dn.device)) % 12
    return comp, month, comp_valid
