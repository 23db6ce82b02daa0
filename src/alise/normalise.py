"""Robust per-band normalisation of Sentinel-2 L2A reflectance ([P] §IV-A, docs/reference.md §1.2).

Per band ``c``: ``x' = (clip(x, q05_c, q95_c) − median_c) / (q95_c − q05_c)`` on digital numbers
(reflectance × 10 000). The statistics belong to the model: ``pretrain`` computes them from its
training data, they are saved in the model's ``config.json`` and every command that feeds that
model applies them unchanged — they are never recomputed at inference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from alise.errors import AliseError

#: Sentinel-2 L2A band order used everywhere (docs/reference.md §1.1).
S2_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")

# Statistics of the paper's pre-training set (docs/reference.md §1.2, authors' dataset_s2.csv).
_PAPER_MED = (414, 675, 570, 1132, 2374, 2744, 2885, 3016, 2003, 1117)
_PAPER_QMIN = (130, 247, 168, 442, 907, 1044, 1069, 1160, 493, 299)
_PAPER_QMAX = (3780, 3704, 3554, 3885, 4644, 5296, 5478, 5494, 3747, 2892)


@dataclass(frozen=True)
class NormStats:
    """Per-band robust statistics, in digital numbers (reflectance × 10 000).

    Attributes:
        median, qmin, qmax: tuples of length C (band order ``bands``).
        bands: band names, in the order of the C axis.
    """

    median: tuple[float, ...]
    qmin: tuple[float, ...]
    qmax: tuple[float, ...]
    bands: tuple[str, ...] = S2_BANDS

    def __post_init__(self):
        n = len(self.bands)
        if not (len(self.median) == len(self.qmin) == len(self.qmax) == n):
            raise AliseError(f"normalisation statistics must have one value per band ({n} bands)")
        for b, lo, mid, hi in zip(self.bands, self.qmin, self.median, self.qmax):
            if not np.isfinite(lo) or not np.isfinite(hi) or hi <= lo:
                raise AliseError(f"normalisation statistics of band {b}: q95 ({hi}) must exceed q05 ({lo})")
            if not np.isfinite(mid) or not lo <= mid <= hi:
                raise AliseError(f"normalisation statistics of band {b}: the median ({mid}) must lie between "
                                 f"q05 ({lo}) and q95 ({hi})")

    @classmethod
    def paper(cls) -> "NormStats":
        """The statistics of the paper's multi-year European pre-training set (default)."""
        return cls(tuple(map(float, _PAPER_MED)), tuple(map(float, _PAPER_QMIN)), tuple(map(float, _PAPER_QMAX)))

    @classmethod
    def from_samples(cls, values: np.ndarray, bands: tuple[str, ...] = S2_BANDS, q: tuple[float, float] = (0.05, 0.95)) -> "NormStats":
        """Compute median and quantiles from ``values (N, C)`` of clear pixels (digital numbers)."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != len(bands) or values.shape[0] < 2:
            raise AliseError(f"need at least 2 clear pixels with {len(bands)} bands to compute normalisation statistics")
        lo, med, hi = np.quantile(values, [q[0], 0.5, q[1]], axis=0)
        hi = np.maximum(hi, lo + 1.0)  # a constant band would divide by zero
        return cls(tuple(map(float, med)), tuple(map(float, lo)), tuple(map(float, hi)), tuple(bands))

    def to_dict(self) -> dict:
        return {"bands": list(self.bands), "median": list(self.median), "qmin": list(self.qmin), "qmax": list(self.qmax)}

    @classmethod
    def from_dict(cls, d: dict) -> "NormStats":
        try:
            return cls(tuple(map(float, d["median"])), tuple(map(float, d["qmin"])), tuple(map(float, d["qmax"])), tuple(d["bands"]))
        except (KeyError, TypeError, ValueError) as e:
            raise AliseError(f"malformed normalisation statistics: {e}") from None

    def _vectors(self, like: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        kw = dict(dtype=torch.float32, device=like.device)
        return torch.tensor(self.median, **kw), torch.tensor(self.qmin, **kw), torch.tensor(self.qmax, **kw)

    def apply(self, dn: Tensor | np.ndarray, band_axis: int = -3, inplace: bool = False) -> Tensor:
        """Normalise digital numbers: ``(..., C, H, W)`` (or any layout with ``band_axis``) → float32.

        Non-finite inputs become 0 after normalisation (and should be masked invalid by the reader).
        ``inplace=True`` overwrites a float32 ``dn`` (no temporary copies: for large reads).
        """
        x = torch.as_tensor(dn)
        x = x if inplace and x.dtype == torch.float32 else x.to(torch.float32, copy=True)
        med, lo, hi = self._vectors(x)
        shape = [1] * x.ndim
        shape[band_axis] = -1
        med, lo, hi = med.view(shape), lo.view(shape), hi.view(shape)
        x = torch.maximum(x, lo, out=x)
        x = torch.minimum(x, hi, out=x)
        x = x.sub_(med).div_(hi - lo)
        return torch.nan_to_num_(x, nan=0.0, posinf=0.0, neginf=0.0)

    def invert(self, x: Tensor, band_axis: int = -3) -> Tensor:
        """Normalised values back to digital numbers (no un-clipping is possible)."""
        med, lo, hi = self._vectors(x)
        shape = [1] * x.ndim
        shape[band_axis] = -1
        return x * (hi - lo).view(shape) + med.view(shape)
