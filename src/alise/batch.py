"""The data model shared by every reader, the model and the losses (docs/design.md §1).

One series (:class:`SITS`) and one padded batch of them (:class:`SITSBatch`). The mask
convention is the same everywhere: ``True`` means *a real, usable observation*.

=============== ================ ======== ==================================================
field           shape            dtype    meaning
=============== ================ ======== ==================================================
``x``           (B, T, C, H, W)  float32  normalised reflectance (§3), 0 where padded
``days``        (B, T)           float32  days since 2014-03-03, 0 where padded
``valid_dates`` (B, T)           bool     True = a real acquisition; False = padding
``valid_pixels``(B, T, H, W)     bool     True = clear (not cloud/shadow/nodata/padding)
``labels``      (B, H, W)        int64    optional class map (``ignore_index`` where unlabeled)
``origin``      (row, col)       int      top-left pixel of the batch in the frame of its crop
                                          (two views of one crop may be translated, see
                                          :mod:`alise.train.views`); (0, 0) otherwise
=============== ================ ======== ==================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace

import torch
from torch import Tensor


@dataclass
class SITS:
    """One satellite image time series, unbatched.

    Attributes:
        x: (T, C, H, W) float32 normalised reflectance.
        days: (T,) float32 days since 2014-03-03, strictly increasing.
        valid_pixels: (T, H, W) bool, True = clear observation.
        labels: optional (H, W) int64 class map.
        meta: free-form provenance (source path, dates as text, grid ...), never batched.
    """

    x: Tensor
    days: Tensor
    valid_pixels: Tensor
    labels: Tensor | None = None
    meta: dict = field(default_factory=dict)

    @property
    def n_dates(self) -> int:
        return int(self.x.shape[0])

    def select_dates(self, index: Tensor | slice | Sequence[int]) -> "SITS":
        """A new SITS with only the dates ``index`` (along T)."""
        return replace(self, x=self.x[index], days=self.days[index], valid_pixels=self.valid_pixels[index])

    def keep_clear(self, min_clear: float) -> "SITS":
        """The dates whose clear fraction (of ``valid_pixels``) is ≥ ``min_clear``; ``self`` when that
        keeps every date or none (a model fed nothing cannot do better than fed everything)."""
        clear = self.valid_pixels.flatten(1).float().mean(1)
        keep = torch.nonzero(clear >= min_clear).flatten()
        return self.select_dates(keep) if 0 < keep.numel() < clear.numel() else self

    def crop(self, top: int, left: int, size_h: int, size_w: int | None = None) -> "SITS":
        """A spatial window ``[top:top+size_h, left:left+size_w]`` of every date."""
        size_w = size_h if size_w is None else size_w
        sl = (slice(top, top + size_h), slice(left, left + size_w))
        labels = None if self.labels is None else self.labels[sl]
        return replace(self, x=self.x[..., sl[0], sl[1]], valid_pixels=self.valid_pixels[..., sl[0], sl[1]], labels=labels)


@dataclass
class SITSBatch:
    """A right-padded batch of SITS; see the module docstring for shapes."""

    x: Tensor
    days: Tensor
    valid_dates: Tensor
    valid_pixels: Tensor
    labels: Tensor | None = None
    origin: tuple[int, int] = (0, 0)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "SITSBatch":
        """Move every tensor to ``device``."""
        kw = {}
        for f in fields(self):
            v = getattr(self, f.name)
            kw[f.name] = v.to(device, non_blocking=non_blocking) if isinstance(v, Tensor) else v
        return SITSBatch(**kw)

    @property
    def shape(self) -> tuple[int, int, int, int, int]:
        return tuple(self.x.shape)  # type: ignore[return-value]


def collate(samples: Sequence[SITS], pad_to: int | None = None, ignore_index: int = -100) -> SITSBatch:
    """Right-pad ``samples`` along T and stack them into a :class:`SITSBatch`.

    Args:
        samples: series with equal C, H, W and any T.
        pad_to: pad every series to this length (default: the longest in the batch).
        ignore_index: label value for samples without labels when others have them.

    Returns:
        A batch with ``x (B, T, C, H, W)``; padded dates have ``x = 0``, ``days = 0``,
        ``valid_dates = False`` and ``valid_pixels = False``.
    """
    if not samples:
        raise ValueError("collate needs at least one sample")
    t_max = max(s.n_dates for s in samples)
    t_pad = t_max if pad_to is None else max(pad_to, t_max)
    b = len(samples)
    _, c, h, w = samples[0].x.shape
    x = samples[0].x.new_zeros((b, t_pad, c, h, w))
    days = torch.zeros((b, t_pad), dtype=torch.float32)
    valid_dates = torch.zeros((b, t_pad), dtype=torch.bool)
    valid_pixels = torch.zeros((b, t_pad, h, w), dtype=torch.bool)
    for i, s in enumerate(samples):
        t = s.n_dates
        x[i, :t] = s.x
        days[i, :t] = s.days.to(torch.float32)
        valid_dates[i, :t] = True
        valid_pixels[i, :t] = s.valid_pixels
    labels = None
    if any(s.labels is not None for s in samples):
        labels = torch.full((b, h, w), ignore_index, dtype=torch.int64)
        for i, s in enumerate(samples):
            if s.labels is not None:
                labels[i] = s.labels.to(torch.int64)
    return SITSBatch(x=x, days=days, valid_dates=valid_dates, valid_pixels=valid_pixels, labels=labels)
