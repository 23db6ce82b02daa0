"""The folder-of-dates layout: one GeoTIFF per acquisition (DESIGN §2.1; the shipped real data).

::

    SITE/
      s2/YYYY-MM-DD.tif     10 bands B02 B03 B04 B05 B06 B07 B08 B8A B11 B12, DN = reflectance × 10 000
      scl/YYYY-MM-DD.tif    optional Sen2Cor scene classification (clear = clear_scl, default {4, 5, 6})
      mask/YYYY-MM-DD.tif   optional instead of scl/: 1 = cloudy, 0 = clear
      labels.tif            optional class ids (0 = unlabeled), + classes.csv (id,name[,...])
      labels/YYYY.tif       optional per-year labels (``alise synth``), read with ``labels(year=...)``
      change/YYYY_YYYY.tif  optional change truth: 1 changed, 0 unchanged, 255 excluded

File names may also be ``YYYYMMDD.tif``. Band order: if the files carry band descriptions that name
Sentinel-2 bands (``B02`` or ``B2`` …), bands are picked *by name* (any order, extra bands ignored);
otherwise the file must have exactly 10 bands in the order above. All files share one grid.
Opening reads headers only (grid, bands, tags); pixels are read per window with rasterio.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import re
import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window as RioWindow

from alise.dates import parse_date
from alise.errors import AliseError
from alise.normalise import S2_BANDS
from alise.data.source import RasterGrid, SITSSource, Window, filter_dates
from alise.data.units import tag_offset
from alise.data.validity import DEFAULT_CLEAR_SCL, nodata_to_nan, valid_from_mask, valid_from_scl

_TIF = (".tif", ".tiff")
_BAND_RE = re.compile(r"^B0?(\d{1,2})(A?)\b", re.IGNORECASE)


@contextlib.contextmanager
def open_raster(path: Path, what: str = "raster"):
    """``rasterio.open`` that turns any GDAL failure into a one-line :class:`AliseError` naming the file."""
    try:
        with warnings.catch_warnings():
            # A truncated file often opens "without georeferencing": the grid check reports it instead.
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                yield src
    except RasterioError as e:
        raise AliseError(f"cannot read {what} {path}: {e} (truncated or not a GeoTIFF?)") from None


def grid_of(src) -> RasterGrid:
    """The :class:`RasterGrid` of an open rasterio dataset."""
    return RasterGrid(src.crs, src.transform, src.height, src.width)


def band_name(description: str | None) -> str | None:
    """``"B2"``, ``"b02"``, ``"B8A"`` → canonical ``"B02"``/``"B8A"``; None if not a Sentinel-2 band name."""
    m = _BAND_RE.match((description or "").strip())
    if m is None:
        return None
    n, a = int(m.group(1)), m.group(2).upper()
    return f"B{n}A" if a else f"B{n:02d}"


def band_indexes(descriptions: tuple, count: int, where: str) -> tuple[list[int], str]:
    """1-based band indexes giving ``S2_BANDS`` order, and how they were found.

    Returns ``(indexes, how)`` with ``how`` one of ``"descriptions"`` (already in order),
    ``"reordered by name"`` or ``"assumed (no band names)"``. Raises if bands are missing/duplicated.
    """
    names = [band_name(d) for d in descriptions]
    if not any(n in S2_BANDS for n in names):
        if count != len(S2_BANDS):
            raise AliseError(f"{where}: {count} bands, expected 10 ({' '.join(S2_BANDS)}); or name them in the "
                             "band descriptions so alise can pick them")
        return list(range(1, count + 1)), "assumed (no band names)"
    missing = [b for b in S2_BANDS if b not in names]
    dup = sorted({n for n in names if n in S2_BANDS and names.count(n) > 1})
    if missing or dup:
        what = f"missing {' '.join(missing)}" if missing else f"duplicated {' '.join(dup)}"
        raise AliseError(f"{where}: band descriptions {list(descriptions)} are {what}; need each of {' '.join(S2_BANDS)}")
    idx = [names.index(b) + 1 for b in S2_BANDS]
    return idx, "descriptions" if idx == list(range(1, 11)) else "reordered by name"


def read_classes(path: Path) -> dict[int, str] | None:
    """``classes.csv`` with header ``id,name[,...]`` → {id: name}; None if absent."""
    if not path.is_file():
        return None
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        return {int(r["id"]): str(r["name"]) for r in rows}
    except (KeyError, TypeError, ValueError) as e:
        raise AliseError(f"{path}: expected a CSV with header 'id,name' and integer ids ({e})") from None


def _tif_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in _TIF and not p.name.startswith("."))


class FolderSource(SITSSource):
    """A site folder with ``s2/DATE.tif`` files (see module docstring)."""

    layout = "folder"

    def __init__(self, path: str | Path, *, clear_scl=DEFAULT_CLEAR_SCL, start=None, end=None,
                 offset: float | str = "auto"):
        path = Path(path)
        s2 = path / "s2"
        if not s2.is_dir():
            raise AliseError(f"{path}: no s2/ folder (expected s2/YYYY-MM-DD.tif files)")
        by_date: dict[dt.date, Path] = {}
        for f in _tif_files(s2):
            d = parse_date(f.stem, where=str(f))
            if d in by_date:
                raise AliseError(f"duplicate date {d}: {by_date[d]} and {f}; keep one file per date")
            by_date[d] = f
        if not by_date:
            raise AliseError(f"{s2}: no GeoTIFF files (expected s2/YYYY-MM-DD.tif)")
        dates = sorted(by_date)
        dates = [dates[i] for i in filter_dates(dates, start, end)]
        if not dates:
            raise AliseError(f"{path}: no date between {start} and {end}")
        self.files = [by_date[d] for d in dates]
        self.clear_scl = frozenset(clear_scl)

        # Header checks: grid, bands, tags of every date (cheap; pixels are read lazily).
        self.band_indexes: list[list[int]] = []
        self.band_order: list[str] = []
        self.nodata: list[float] = []
        self.dtypes: list[str] = []
        self.tags: list[dict] = []
        grid = None
        for f in self.files:
            with open_raster(f, "image") as src:
                g = grid_of(src)
                if grid is None:
                    grid = g
                elif not g.same_as(grid):
                    raise AliseError(f"{f}: grid {g.describe()} at {g.transform.c:g},{g.transform.f:g} differs from "
                                     f"{self.files[0].name} ({grid.describe()}); all dates must share one grid")
                idx, how = band_indexes(src.descriptions, src.count, str(f))
                self.band_indexes.append(idx)
                self.band_order.append(how)
                self.nodata.append(0.0 if src.nodata is None else float(src.nodata))
                self.dtypes.append(src.dtypes[0])
                self.tags.append({**src.tags(), **src.tags(idx[0])})

        self.mask_kind = "scl" if (path / "scl").is_dir() else "mask" if (path / "mask").is_dir() else None
        self.mask_files: list[Path] = []
        if self.mask_kind:
            found = {parse_date(p.stem, where=str(p)): p for p in _tif_files(path / self.mask_kind)}
            for d, f in zip(dates, self.files):
                if d not in found:
                    raise AliseError(f"{path / self.mask_kind}: no file for date {d} (needed for {f.name})")
                self._check_grid(found[d], grid, self.mask_kind)
                self.mask_files.append(found[d])

        self.label_file = path / "labels.tif" if (path / "labels.tif").is_file() else None
        self.label_years: dict[int, Path] = {}
        if (path / "labels").is_dir():
            for p in _tif_files(path / "labels"):
                if not p.stem.isdigit():
                    raise AliseError(f"{p}: per-year labels must be named labels/YYYY.tif")
                self.label_years[int(p.stem)] = p
        for p in ([self.label_file] if self.label_file else []) + list(self.label_years.values()):
            self._check_grid(p, grid, "labels")
        super().__init__(path.resolve().name, path, dates, grid, class_names=read_classes(path / "classes.csv"),
                         ignore_labels=(0,), offset=offset)

    @staticmethod
    def _check_grid(f: Path, grid: RasterGrid, what: str) -> None:
        with open_raster(f, what) as src:
            g = grid_of(src)
        if not g.same_as(grid):
            raise AliseError(f"{f}: {what} grid ({g.describe()}) differs from the images' grid ({grid.describe()})")

    # ---- hooks ---------------------------------------------------------------------------
    def _tag_offsets(self) -> list[float | None]:
        return [tag_offset(t) for t in self.tags]

    def _is_float(self) -> bool:
        return any(np.dtype(d).kind == "f" for d in self.dtypes)

    def _read_raw(self, window: Window, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r, c, h, w = window
        rw = RioWindow(c, r, w, h)
        dn = np.empty((len(idx), len(S2_BANDS), h, w), np.float32)  # (t, C, h, w)
        clear = np.ones((len(idx), h, w), bool)  # (t, h, w)
        for k, i in enumerate(idx):  # one file per date: I/O, not per-pixel work
            dn[k] = nodata_to_nan(self._read(self.files[i], self.band_indexes[i], rw), self.nodata[i])
            if self.mask_kind:
                clear[k] = self._mask(self._read(self.mask_files[i], 1, rw))
        return dn, clear

    def _read_overview(self, idx: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
        H, W = self.grid.height, self.grid.width
        step = max(1, -(-max(H, W) // side))
        shape = (-(-H // step), -(-W // step))
        b02 = np.empty((len(idx),) + shape, np.float32)
        clear = np.ones((len(idx),) + shape, bool)
        for k, i in enumerate(idx):
            b02[k] = nodata_to_nan(self._read(self.files[i], self.band_indexes[i][0], None, shape), self.nodata[i])
            if self.mask_kind:
                clear[k] = self._mask(self._read(self.mask_files[i], 1, None, shape))
        return b02, clear

    def _mask(self, m: np.ndarray) -> np.ndarray:
        return valid_from_scl(m, self.clear_scl) if self.mask_kind == "scl" else valid_from_mask(m)

    @staticmethod
    def _read(f: Path, indexes, window, out_shape=None) -> np.ndarray:
        with open_raster(f) as src:
            try:
                if out_shape is None:
                    return src.read(indexes, window=window)
                return src.read(indexes, out_shape=out_shape, resampling=Resampling.nearest)
            except RasterioError as e:
                detail = e.__cause__ or e  # rasterio hides GDAL's message in the cause
                raise AliseError(f"cannot read pixels of {f}: {detail} (truncated or corrupt file?)") from None

    def _read_labels(self, window: Window, year: int | None) -> np.ndarray | None:
        if year is not None:
            if year not in self.label_years:
                have = sorted(self.label_years) or "none"
                raise AliseError(f"{self.path}: no labels/{year}.tif (label years: {have})")
            f = self.label_years[year]
        elif self.label_file is not None:
            f = self.label_file
        elif len(self.label_years) == 1:
            f = next(iter(self.label_years.values()))
        else:
            return None
        r, c, h, w = window
        return self._read(f, 1, RioWindow(c, r, w, h)).astype(np.int64)

    def change_mask(self, year_a: int, year_b: int, window: Window | None = None) -> np.ndarray | None:
        f = self.path / "change" / f"{year_a}_{year_b}.tif"
        if not f.is_file():
            return None
        r, c, h, w = self.check_window(window)
        self._check_grid(f, self.grid, "change mask")
        return self._read(f, 1, RioWindow(c, r, w, h)).astype(np.uint8)
