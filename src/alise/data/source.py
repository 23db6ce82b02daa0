"""One satellite image time series on one grid, whatever its layout on disk (docs/design.md §2).

A :class:`SITSSource` is opened cheaply (headers only) and read lazily: :meth:`SITSSource.read`
reads one spatial window of some dates and returns a :class:`RawSITS` of offset-corrected digital
numbers plus the validity mask; :meth:`RawSITS.to_sits` normalises it into the model's
:class:`alise.batch.SITS`. Each layout (``folder.py``, ``pastis.py``, ``cube.py``) only implements
the four small ``_read_*`` hooks; validity and units rules live in ``validity.py`` and ``units.py``.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from alise.batch import SITS
from alise.dates import days_since_origin
from alise.errors import AliseError
from alise.normalise import S2_BANDS, NormStats
from alise.data.units import OFFSET_START, OffsetDecision, check_not_unit_reflectance, resolve_offsets
from alise.data.validity import valid_from_values

#: ``(row_off, col_off, height, width)`` in pixels of the source grid.
Window = tuple[int, int, int, int]

#: Longest side of the decimated overview used for units/offset tests and clear fractions.
OVERVIEW_SIDE = 128


@dataclass(frozen=True)
class RasterGrid:
    """Georeferencing of a source: CRS, affine pixel→map transform, size in pixels (H, W)."""

    crs: object | None  # rasterio.crs.CRS
    transform: object | None  # affine.Affine
    height: int
    width: int

    @property
    def resolution(self) -> tuple[float, float] | None:
        """Pixel size (x, y) in CRS units (metres for UTM), or None without a transform."""
        if self.transform is None:
            return None
        return (abs(self.transform.a), abs(self.transform.e))

    def same_as(self, other: "RasterGrid") -> bool:
        """Same size, CRS and transform (to 1e-6 pixel)."""
        if (self.height, self.width) != (other.height, other.width) or self.crs != other.crs:
            return False
        if self.transform is None or other.transform is None:
            return self.transform is other.transform
        return self.transform.almost_equals(other.transform, precision=1e-6 * max(abs(self.transform.a), 1e-9))

    def overlays(self, other: "RasterGrid") -> bool:
        """Whether two series can be compared pixel by pixel: :meth:`same_as` when both are
        georeferenced, the same size when one is not (e.g. RotCrop tensors)."""
        if self.transform is None or other.transform is None:
            return (self.height, self.width) == (other.height, other.width)
        return self.same_as(other)

    def to_georef(self) -> dict:
        """``{"crs_wkt", "transform"}`` (JSON: WKT, may be empty; the affine's 6 coefficients), how
        encoding plans record the grid beside its size."""
        return {"crs_wkt": self.crs.to_wkt() if self.crs is not None else "",
                "transform": list(tuple(self.transform)[:6]) if self.transform is not None else [0.0, 1.0, 0.0, 0.0, 0.0, 1.0]}

    @classmethod
    def from_georef(cls, georef: dict, height: int, width: int) -> "RasterGrid":
        """Inverse of :meth:`to_georef`."""
        from affine import Affine
        from rasterio.crs import CRS

        wkt = georef.get("crs_wkt") or ""
        return cls(CRS.from_wkt(wkt) if wkt else None, Affine(*georef["transform"]), int(height), int(width))

    def describe(self) -> str:
        crs = "none" if self.crs is None else (self.crs.to_string() if hasattr(self.crs, "to_string") else str(self.crs))
        res = self.resolution
        unit = "m" if getattr(self.crs, "is_projected", False) else "°" if getattr(self.crs, "is_geographic", False) \
            else "CRS units"
        res_s = "" if res is None else f", pixels {res[0]:g} × {res[1]:g} {unit}"
        return f"{self.height} × {self.width} px, CRS {crs}{res_s}"


@dataclass
class RawSITS:
    """A window of a source in physical units, before normalisation.

    Attributes:
        dn: (T, C, h, w) float32 digital numbers (reflectance × 10 000), offset-corrected, NaN = nodata.
        valid: (T, h, w) bool, True = clear observation (mask says clear and every band finite).
        days: (T,) float32 days since 2014-03-03.
        labels: optional (h, w) int64 raw class ids of the source.
        ignore_labels: label values meaning "unlabeled" (mapped to ``ignore_index`` by :meth:`to_sits`).
        meta: provenance (source name, window, dates as ISO text).
    """

    dn: np.ndarray
    valid: np.ndarray
    days: np.ndarray
    labels: np.ndarray | None = None
    ignore_labels: tuple[int, ...] = ()
    meta: dict = field(default_factory=dict)

    def to_sits(self, norm: NormStats, ignore_index: int = -100) -> SITS:
        """Normalise (§IV-A robust normalisation, docs/reference.md §1.2) into a :class:`SITS`.

        ``x (T, C, h, w)`` is finite everywhere (NaN → 0 after normalisation) and those pixels are
        ``valid_pixels = False``. Cloudy pixels keep their values: the network sees them, only the
        loss ignores them ([P] §III-B-3). Labels in ``ignore_labels`` become ``ignore_index``.
        """
        if tuple(norm.bands) != tuple(S2_BANDS):
            raise AliseError(f"normalisation statistics are for bands {list(norm.bands)}, data has {list(S2_BANDS)}")
        x = norm.apply(self.dn)  # (T, C, h, w) finite
        valid = torch.from_numpy(self.valid & valid_from_values(self.dn))
        labels = None
        if self.labels is not None:
            lab = self.labels.astype(np.int64, copy=True)
            if self.ignore_labels:
                lab[np.isin(lab, list(self.ignore_labels))] = ignore_index
            labels = torch.from_numpy(lab)
        return SITS(x=x, days=torch.from_numpy(self.days.astype(np.float32)), valid_pixels=valid, labels=labels,
                    meta=dict(self.meta))


class SITSSource(ABC):
    """A lazily read time series on one grid. Subclasses: one per layout on disk.

    Attributes:
        name: short name (folder name, ``S2_10000`` …); path: where it lives.
        dates: sorted unique acquisition dates; days: (T,) float32 days since 2014-03-03.
        bands: band names of the C axis (== ``S2_BANDS``); grid: :class:`RasterGrid`.
        class_names: label id → name, or None; ignore_labels: ids meaning "unlabeled".
        fold: PASTIS fold (1–5) or None.
    """

    layout: str = "?"

    def __init__(self, name: str, path: Path, dates: list[dt.date], grid: RasterGrid, *,
                 class_names: dict[int, str] | None = None, ignore_labels: tuple[int, ...] = (0,),
                 fold: int | None = None, offset: float | str = "auto"):
        if not dates:
            raise AliseError(f"{path}: no acquisition dates")
        if any(b <= a for a, b in zip(dates, dates[1:])):
            raise AliseError(f"{path}: dates must be sorted and unique (reader bug or duplicate dates)")
        self.name, self.path, self.dates, self.grid = name, Path(path), list(dates), grid
        self.days = days_since_origin(self.dates)
        self.bands: tuple[str, ...] = S2_BANDS
        self.class_names, self.ignore_labels, self.fold = class_names, tuple(ignore_labels), fold
        if offset != "auto":
            try:
                offset = float(offset)
            except (TypeError, ValueError):
                raise AliseError(f"offset {offset!r}: expected 'auto' or a number of DN (e.g. 1000)") from None
        self._offset_override = None if offset == "auto" else offset
        self._offsets: np.ndarray | None = None
        self._decisions: list[OffsetDecision] | None = None
        self._clear: np.ndarray | None = None

    # ---- hooks implemented by each layout -------------------------------------------------
    @abstractmethod
    def _read_raw(self, window: Window, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(t, C, h, w)`` float32 DN *before* offset correction (NaN = nodata) and ``(t, h, w)`` bool
        mask validity (True = the cloud mask / SCL says clear; all True without a mask)."""

    @abstractmethod
    def _read_overview(self, idx: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
        """Decimated B02 ``(t, h', w')`` float32 (NaN = nodata) and mask validity ``(t, h', w')``,
        ``max(h', w') <= side``: enough for the offset test and clear fractions."""

    @abstractmethod
    def _read_labels(self, window: Window, year: int | None) -> np.ndarray | None:
        """``(h, w)`` int64 labels of the window (``year`` for multi-year sources) or None."""

    def _tag_offsets(self) -> list[float | None]:
        """Per-date offset from metadata (``BOA_ADD_OFFSET``), None where untagged."""
        return [None] * self.n_dates

    def _is_float(self) -> bool:
        """True if the stored values are floating point (then 0–1 reflectance is tested)."""
        return False

    # ---- public API --------------------------------------------------------------------------
    @property
    def n_dates(self) -> int:
        return len(self.dates)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(T, C, H, W)."""
        return (self.n_dates, len(self.bands), self.grid.height, self.grid.width)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, T={self.n_dates}, {self.grid.height}×{self.grid.width})"

    def read(self, window: Window | None = None, dates: slice | Sequence[int] | None = None) -> RawSITS:
        """Read ONLY ``window`` (``(row_off, col_off, height, width)``, default all) of ``dates``.

        Returns a :class:`RawSITS` with ``dn (T, C, h, w)`` offset-corrected DN and ``valid (T, h, w)``.
        """
        win = self.check_window(window)
        idx = self.date_index(dates)
        offsets = self.offsets()[idx]
        dn, clear = self._read_raw(win, idx)
        dn -= offsets[:, None, None, None]  # baseline ≥ 04.00 (units.py)
        valid = clear & valid_from_values(dn)
        meta = {"source": self.name, "path": str(self.path), "window": win,
                "dates": [self.dates[i].isoformat() for i in idx]}
        return RawSITS(dn, valid, self.days[idx].copy(), self._read_labels(win, None), self.ignore_labels, meta)

    def labels(self, window: Window | None = None, year: int | None = None) -> np.ndarray | None:
        """``(h, w)`` int64 class ids of ``window`` (raw ids; see ``ignore_labels``), or None."""
        return self._read_labels(self.check_window(window), year)

    def change_mask(self, year_a: int, year_b: int, window: Window | None = None) -> np.ndarray | None:
        """``(h, w)`` uint8 change truth between two years (1 changed, 0 unchanged, 255 excluded), or None."""
        return None

    def offsets(self) -> np.ndarray:
        """(T,) float32 DN subtracted from each date (see ``units.py``); computed once, lazily."""
        if self._offsets is None and self._offset_override is not None:
            return np.full(self.n_dates, self._offset_override, np.float32)  # user-given: no survey needed
        if self._offsets is None:
            self._survey()
        return self._offsets

    def offset_decisions(self) -> list[OffsetDecision]:
        """One :class:`OffsetDecision` per date regime (before / from 2022-01-25)."""
        if self._decisions is None:
            self._survey()
        return self._decisions

    def clear_fractions(self) -> np.ndarray:
        """(T,) float32 share of clear pixels per date, from a decimated overview (≤ 128 px side)."""
        if self._clear is None:
            self._survey()
        return self._clear

    def check_window(self, window: Window | None) -> Window:
        """Validate a window against the grid; None → the whole grid."""
        H, W = self.grid.height, self.grid.width
        if window is None:
            return (0, 0, H, W)
        r, c, h, w = (int(v) for v in window)
        if h <= 0 or w <= 0 or r < 0 or c < 0 or r + h > H or c + w > W:
            raise AliseError(f"window (row {r}, col {c}, {h} × {w}) lies outside {self.name} ({H} × {W} px)")
        return (r, c, h, w)

    def date_index(self, dates: slice | Sequence[int] | None) -> np.ndarray:
        """A date selection → sorted-as-given int array of indices into ``dates``."""
        all_idx = np.arange(self.n_dates)
        if dates is None:
            return all_idx
        try:
            idx = all_idx[dates] if isinstance(dates, slice) else all_idx[np.asarray(dates, dtype=np.int64)]
        except IndexError:
            raise AliseError(f"date indices {dates} out of range for {self.name} ({self.n_dates} dates)") from None
        return np.atleast_1d(idx)

    # ---- one pass over a decimated overview: units, offset, clear fractions -------------------
    def _survey(self) -> None:
        idx = np.arange(self.n_dates)
        b02, clear = self._read_overview(idx, OVERVIEW_SIDE)  # (T, h', w')
        if self._is_float():
            check_not_unit_reflectance(b02, str(self.path))
        ok = clear & np.isfinite(b02)
        self._clear = ok.reshape(self.n_dates, -1).mean(axis=1).astype(np.float32)
        after = np.array([d >= OFFSET_START for d in self.dates])
        dark = {regime: b02[after == regime][ok[after == regime]] for regime in (False, True)}
        self._offsets, self._decisions = resolve_offsets(
            self.dates, self._tag_offsets(), dark, str(self.path), self._offset_override)


def filter_dates(dates: list[dt.date], start: dt.date | str | None, end: dt.date | str | None) -> np.ndarray:
    """Indices of ``dates`` within ``[start, end]`` (inclusive; None = open)."""
    from alise.dates import parse_date

    lo = parse_date(start, "start") if isinstance(start, str) else start
    hi = parse_date(end, "end") if isinstance(end, str) else end
    keep = [i for i, d in enumerate(dates) if (lo is None or d >= lo) and (hi is None or d <= hi)]
    return np.asarray(keep, dtype=np.int64)
