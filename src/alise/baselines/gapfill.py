"""The gap-filling (GF) baseline: linear interpolation of clear observations on a regular grid.

[P] §IV-C-2: "we re-interpolate the SITS valid acquisitions on a regular temporal grid with a
period of 5 days. The distance map is computed between the re-interpolated raw SITS" (Table IV:
AUC 0.88 vs ALISE 0.91). docs/reference.md §8 and docs/design.md §9 fix the details the paper leaves open:

* per pixel, only its *valid* observations (clear, not padded; docs/reference.md §1.3) are used;
* between two valid observations: linear in time; before the first / after the last one: the
  nearest valid value (no extrapolation); a pixel with no valid observation: NaN;
* change distance: both years on the same day-of-year grid (1 Jan + 0, 5, …, 360 days: 73
  dates), mean squared difference over bands and grid dates — the GF analogue of Eq. 12.
  Feed normalised reflectances (§1.2) so that every band weighs alike.

Everything is batched: per grid date, the previous / next valid observation of each pixel is
found with a running max / min of "index if valid" along T, then gathered.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import torch
from einops import rearrange
from torch import Tensor

from alise.dates import DATE_ORIGIN, date_from_days
from alise.errors import AliseError

#: Pixels interpolated at once by default (bounds the B·G·C·P intermediates).
DEFAULT_CHUNK_PIXELS = 1 << 14


def regular_grid(start_day: float, end_day: float, step: float = 5.0) -> np.ndarray:
    """Regular grid ``start_day, start_day + step, … ≤ end_day`` (days since 2014-03-03).

    Returns:
        (G,) float64 array.
    """
    if not (np.isfinite(start_day) and np.isfinite(end_day)) or end_day < start_day:
        raise AliseError(f"grid end ({end_day}) must not precede grid start ({start_day})")
    if not step > 0:
        raise AliseError(f"grid step must be positive, got {step} days")
    n = int(np.floor((end_day - start_day) / step + 1e-9)) + 1
    return start_day + step * np.arange(n, dtype=np.float64)


def year_grid(year: int, step: float = 5.0) -> np.ndarray:
    """Day-of-year grid of one calendar year: 1 Jan + 0, step, … (< 365 days), in days since 2014-03-03.

    With ``step = 5`` this is 73 dates, the same day-of-year offsets for every year.
    """
    start = (dt.date(int(year), 1, 1) - DATE_ORIGIN).days
    return regular_grid(float(start), float(start + 364), step)


def _interp_chunk(x: Tensor, days: Tensor, valid: Tensor, grid: Tensor) -> Tensor:
    """Core: x (B, T, C, P), days (B, T) sorted ascending, valid (B, T, P), grid (B, G) → (B, G, C, P)."""
    b, t, c, p = x.shape
    g = grid.shape[1]
    idx = torch.arange(t, device=x.device).view(1, t, 1)
    # Index of the last valid observation at or before each t (−1 if none) and of the first at or
    # after each t (T if none): running max / min along T.
    prev_valid = torch.where(valid, idx, -1).cummax(dim=1).values  # (B, T, P)
    next_valid = torch.where(valid, idx, t).flip(1).cummin(dim=1).values.flip(1)  # (B, T, P)
    # pos = number of observation days ≤ grid day; dates [0, pos) are at or before it.
    pos = torch.searchsorted(days.contiguous(), grid.contiguous(), right=True)  # (B, G)
    pos_l = (pos - 1).clamp(min=0).view(b, g, 1).expand(b, g, p)
    pos_r = pos.clamp(max=t - 1).view(b, g, 1).expand(b, g, p)
    left = torch.gather(prev_valid, 1, pos_l)  # (B, G, P)
    left = torch.where((pos == 0).view(b, g, 1), -1, left)
    right = torch.gather(next_valid, 1, pos_r)
    right = torch.where((pos == t).view(b, g, 1), t, right)
    has_l, has_r = left >= 0, right < t
    # One side missing → use the other side's index for both: edges take the nearest valid value
    # and no invalid (possibly NaN) observation is ever read.
    li = torch.where(has_l, left, right).clamp(0, t - 1)
    ri = torch.where(has_r, right, left).clamp(0, t - 1)

    days_p = days.to(torch.float64).view(b, t, 1).expand(b, t, p)
    d_l, d_r = torch.gather(days_p, 1, li), torch.gather(days_p, 1, ri)  # (B, G, P)
    span = torch.where(d_r > d_l, d_r - d_l, 1.0)  # both sides: d_l ≤ grid < d_r; one side: d_l = d_r
    w = ((grid.to(torch.float64).view(b, g, 1) - d_l) / span).clamp(0.0, 1.0).to(x.dtype)

    x_l = torch.gather(x, 1, li.view(b, g, 1, p).expand(b, g, c, p))  # (B, G, C, P)
    x_r = torch.gather(x, 1, ri.view(b, g, 1, p).expand(b, g, c, p))
    out = torch.lerp(x_l, x_r, w.view(b, g, 1, p))  # x_l + w (x_r − x_l)
    none = ~(has_l | has_r)  # pixel without any valid observation
    return out.masked_fill_(none.view(b, g, 1, p), float("nan"))


def gapfill_linear(x, days, valid, grid_days, chunk_pixels: int = DEFAULT_CHUNK_PIXELS) -> Tensor:
    """Linear gap-filling of each pixel's valid observations onto a date grid ([P] §IV-C-2).

    Args:
        x: (B, T, C, H, W) float, any units (normalised reflectance for the GF baseline).
        days: (B, T) or (T,) acquisition dates, days since 2014-03-03 (any order; padded dates
            may carry any day, they must be invalid).
        valid: (B, T, H, W) bool, True = clear AND not padded.
        grid_days: (G,) target dates, days since 2014-03-03.
        chunk_pixels: pixels interpolated at once (memory ≈ 4·B·G·C·chunk floats).

    Returns:
        (B, G, C, H, W) in the dtype of ``x``: linear interpolation in time between the two
        valid observations around each grid date; nearest valid value before the first / after
        the last valid observation; NaN for a pixel with no valid observation.
    """
    x = torch.as_tensor(x)
    if not x.is_floating_point():
        x = x.to(torch.float32)
    if x.ndim != 5:
        raise AliseError(f"gap-filling expects x of shape (B, T, C, H, W), got {tuple(x.shape)}")
    b, t, c, h, w = x.shape
    days = torch.as_tensor(days, device=x.device)
    if days.ndim == 1:
        days = days.view(1, t).expand(b, t)
    valid = torch.as_tensor(valid, device=x.device).to(torch.bool)
    if days.shape != (b, t) or valid.shape != (b, t, h, w):
        raise AliseError(f"gap-filling: days {tuple(days.shape)} / valid {tuple(valid.shape)} do not match "
                         f"x (B, T, C, H, W) = {tuple(x.shape)}; expected days (B, T) or (T,) and valid (B, T, H, W)")
    grid = torch.as_tensor(np.asarray(grid_days, dtype=np.float64), device=x.device).view(1, -1).expand(b, -1)
    if t == 0:
        return x.new_full((b, grid.shape[1], c, h, w), float("nan"))
    days = days.to(torch.float64)
    if (days[:, 1:] < days[:, :-1]).any():  # sort dates per sample (padding may sit anywhere)
        order = torch.argsort(days, dim=1, stable=True)
        days = torch.gather(days, 1, order)
        x = torch.gather(x, 1, order.view(b, t, 1, 1, 1).expand_as(x))
        valid = torch.gather(valid, 1, order.view(b, t, 1, 1).expand_as(valid))

    xp = rearrange(x, "b t c h w -> b t c (h w)")
    vp = rearrange(valid, "b t h w -> b t (h w)")
    out = x.new_empty((b, grid.shape[1], c, h * w))  # (B, G, C, P), filled chunk by chunk
    step = max(int(chunk_pixels), 1)
    for s in range(0, h * w, step):  # chunks of pixels bound memory; each chunk is batched
        out[..., s:s + step] = _interp_chunk(xp[..., s:s + step], days, vp[..., s:s + step], grid)
    return rearrange(out, "b g c (h w) -> b g c h w", h=h, w=w)


def gf_features(x, days, valid, grid_days, fill_value: float | None = 0.0) -> Tensor:
    """Gap-filled series flattened per pixel, for a linear probe on the GF baseline.

    Args: as :func:`gapfill_linear`; ``fill_value`` replaces the NaN of pixels without any
        valid observation (0 = the median in normalised units; None keeps NaN).

    Returns:
        (B, G·C, H, W), date-major (all bands of grid date 0, then date 1, …).
    """
    out = rearrange(gapfill_linear(x, days, valid, grid_days), "b g c h w -> b (g c) h w")
    return out if fill_value is None else torch.nan_to_num(out, nan=float(fill_value))


def _series_year(days: Tensor, valid: Tensor) -> int:
    """Calendar year of the median date that has at least one valid pixel."""
    observed = valid.flatten(2).any(-1) if valid.ndim > 2 else valid  # (B, T)
    d = days.to(torch.float64).expand_as(observed)[observed]
    if d.numel() == 0:
        raise AliseError("gap-filling change distance: a series has no valid observation at all; check its cloud mask")
    return date_from_days(float(d.median())).year


def gf_change_distance(x1, days1, valid1, x2, days2, valid2, step: float = 5.0,
                       year1: int | None = None, year2: int | None = None,
                       chunk_pixels: int = DEFAULT_CHUNK_PIXELS) -> Tensor:
    """GF change score between two annual SITS of the same place ([P] §IV-C-2, Table IV).

    Each series is gap-filled onto the day-of-year grid of its own year (:func:`year_grid`;
    the year is that of the median observed date unless ``year1``/``year2`` are given), then
    ``d(i, j) = mean over bands c and grid dates g of (X¹_{g,c,i,j} − X²_{g,c,i,j})²`` —
    the analogue of Eq. 12 on gap-filled reflectances.

    Args:
        x1, x2: (T, C, H, W) or (B, T, C, H, W) float, normalised reflectance (T may differ).
        days1, days2: (T,) or (B, T), days since 2014-03-03.
        valid1, valid2: (T, H, W) or (B, T, H, W) bool, True = clear and not padded.

    Returns:
        (H, W) float distance (or (B, H, W) for batched input); NaN where a pixel has no valid
        observation in one of the years.
    """
    x1, x2 = torch.as_tensor(x1), torch.as_tensor(x2)
    single = x1.ndim == 4
    if single:
        x1, x2 = x1.unsqueeze(0), x2.unsqueeze(0)
        days1, days2 = torch.as_tensor(days1).reshape(1, -1), torch.as_tensor(days2).reshape(1, -1)
        valid1, valid2 = torch.as_tensor(valid1).unsqueeze(0), torch.as_tensor(valid2).unsqueeze(0)
    days1, days2 = torch.as_tensor(days1), torch.as_tensor(days2)
    valid1, valid2 = torch.as_tensor(valid1).bool(), torch.as_tensor(valid2).bool()
    if x1.shape[0] != x2.shape[0] or x1.shape[2:] != x2.shape[2:]:
        raise AliseError(f"the two series must share bands and grid: {tuple(x1.shape)} vs {tuple(x2.shape)} (T may differ)")
    y1 = _series_year(days1, valid1) if year1 is None else int(year1)
    y2 = _series_year(days2, valid2) if year2 is None else int(year2)
    grid1, grid2 = year_grid(y1, step), year_grid(y2, step)
    h, w = x1.shape[-2:]
    d = torch.empty((x1.shape[0], h, w), dtype=torch.float64, device=x1.device)
    rows = max(1, int(chunk_pixels) // max(w, 1))
    for r in range(0, h, rows):  # blocks of rows: never hold both full gap-filled cubes
        sl = slice(r, r + rows)
        g1 = gapfill_linear(x1[..., sl, :], days1, valid1[..., sl, :], grid1, chunk_pixels)  # (B, G, C, h, W)
        g2 = gapfill_linear(x2[..., sl, :], days2, valid2[..., sl, :], grid2, chunk_pixels)
        d[:, sl] = (g1.to(torch.float64) - g2.to(torch.float64)).pow(2).mean(dim=(1, 2))
    d = d.to(x1.dtype if x1.is_floating_point() else torch.float32)
    return d[0] if single else d
