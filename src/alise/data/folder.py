"""Dated images on disk: the folder-of-dates layouts (docs/design.md §2, item 1; the shipped real data).

::

    SITE/
      s2/YYYY-MM-DD.tif     10 bands B02 B03 B04 B05 B06 B07 B08 B8A B11 B12, DN = reflectance × 10 000
      scl/YYYY-MM-DD.tif    optional Sen2Cor scene classification (clear = clear_scl, default {4, 5, 6})
      mask/YYYY-MM-DD.tif   optional instead of scl/: 1 = cloudy, 0 = clear
      labels.tif            optional class ids (0 = unlabeled), + classes.csv (id,name[,...])
      labels/YYYY.tif       optional per-year labels (``alise synth``), read with ``labels(year=...)``
      change/YYYY_YYYY.tif  optional change truth: 1 changed, 0 unchanged, 255 excluded

Variants read by the same class (``docs/data-formats.md`` "Layouts"):

* **no ``s2/``** ("flat"): the dated images lie in ``SITE/`` itself, masks in ``SITE/scl/``,
  ``SITE/mask/`` or beside the images with ``SCL`` in their names (``2018-06-01_SCL.tif``);
* **one file per band**: ``s2/2018-06-01/B02.tif … B12.tif`` (+ ``SCL.tif``), or dated band files
  side by side (``T31UFS_20180601_B02.tif``); bands on a coarser grid of the same extent (20 m)
  are resampled to the grid of B02 (bilinear; SCL nearest).

Dates come from the names (:func:`alise.dates.date_from_name`: ``YYYY-MM-DD``, ``YYYYMMDD``,
``YYYY_MM_DD``, ESA product names, or ``date_pattern``). Band order: if the files carry band
descriptions that name Sentinel-2 bands (``B02`` or ``B2`` …), bands are picked *by name* (any order,
extra bands ignored); otherwise a file must have exactly 10 bands in the order above. All dates share
one grid. Opening reads headers only (grid, bands, tags); pixels are read per window with rasterio.

:class:`SceneSource` holds the reading logic for any list of :class:`Scene` (one per date); the
``.SAFE`` products (``safe.py``) and CSV file lists (``filelist.py``) build their scenes and reuse it.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window as RioWindow

from alise.dates import date_from_name, dates_in_name, period_text
from alise.errors import AliseError
from alise.normalise import S2_BANDS
from alise.data.source import RasterGrid, SITSSource, Window, filter_dates
from alise.data.units import tag_offset
from alise.data.validity import DEFAULT_CLEAR_SCL, nodata_to_nan, valid_from_mask, valid_from_scl

_TIF = (".tif", ".tiff")
#: Image files read as dates (JPEG 2000 through GDAL's JP2OpenJPEG driver).
IMAGE_EXT = (".tif", ".tiff", ".jp2")
_BAND_RE = re.compile(r"^B0?(\d{1,2})(A?)\b", re.IGNORECASE)
#: A band named inside a file name: ``B02.tif``, ``T31UFS_20180601_B8A_20m.jp2`` (not ``S2B_…``).
_BAND_TOKEN = re.compile(r"(?<![A-Za-z0-9])(B(?:0?[1-9]|1[0-2]|8A))(?![A-Za-z0-9])", re.IGNORECASE)
_SCL_TOKEN = re.compile(r"(?<![A-Za-z0-9])SCL(?![A-Za-z0-9])", re.IGNORECASE)
#: Other Sen2Cor products that may sit beside band files; ignored.
_OTHER_TOKEN = re.compile(r"(?<![A-Za-z0-9])(AOT|WVP|TCI|CLD|SNW|PVI|DEM|MSK)(?![A-Za-z0-9])", re.IGNORECASE)
#: Sub-folders of a site that are not dates.
SITE_DIRS = ("s2", "scl", "mask", "labels", "change")
#: Names of the folders that hold a site's images or masks (never a series by themselves).
IMAGE_DIRS = ("s2", "scl", "mask")


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


def image_files(folder: Path) -> list[Path]:
    """The image files (``.tif``, ``.tiff``, ``.jp2``) directly in ``folder``, sorted, hidden ones skipped."""
    try:
        return sorted(p for p in folder.iterdir()
                      if p.is_file() and p.suffix.lower() in IMAGE_EXT and not p.name.startswith("."))
    except OSError as e:
        raise AliseError(f"cannot list {folder}: {e}") from None


def file_kind(name: str) -> tuple[str, str | None]:
    """What a file name says it holds: ``("band", "B02")``, ``("scl", None)``, ``("other", None)``
    (AOT, WVP, TCI … products, ignored) or ``("image", None)`` (a multi-band image)."""
    if _SCL_TOKEN.search(name):
        return "scl", None
    bands = {band_name(m) for m in _BAND_TOKEN.findall(name)}
    if len(bands) == 1:
        return "band", bands.pop()
    if _OTHER_TOKEN.search(name):
        return "other", None
    return "image", None


# ------------------------------------------------------------------------------------ scenes
@dataclass
class Scene:
    """One acquisition date and the files that hold it.

    Attributes:
        date: the acquisition date.
        where: the file or folder named in messages.
        images: one multi-band image, or one single-band file per band in ``S2_BANDS`` order.
        mask: the cloud mask / SCL file of the date, or None.
        tags: metadata overriding the image tags (e.g. ``BOA_ADD_OFFSET`` read from a product's XML).
    """

    date: dt.date
    where: Path
    images: tuple[Path, ...]
    mask: Path | None = None
    tags: dict = field(default_factory=dict)

    @property
    def per_band(self) -> bool:
        return len(self.images) > 1


def scene_from_files(date: dt.date, files: list[Path], where: Path) -> Scene:
    """The :class:`Scene` of ``date`` from its files (classified by :func:`file_kind`).

    One multi-band image, or one file per band (B02 … B12; B01, B09, B10 and AOT/WVP/TCI … ignored);
    at most one SCL file, used as the mask.
    """
    images, scl, bands = [], [], {}
    for f in files:
        kind, band = file_kind(f.name)
        if kind == "image":
            images.append(f)
        elif kind == "scl":
            scl.append(f)
        elif kind == "band" and band in S2_BANDS:
            bands.setdefault(band, []).append(f)
    if len(images) > 1:
        raise AliseError(f"duplicate date {date}: {images[0]} and {images[1]}; keep one file per date")
    if len(scl) > 1:
        raise AliseError(f"date {date}: two SCL files, {scl[0]} and {scl[1]}; keep one")
    if images and bands:
        b = next(iter(bands.values()))[0]
        raise AliseError(f"date {date}: a multi-band image {images[0]} and per-band files ({b.name} …); "
                         "keep one kind")
    if images:
        return Scene(date, images[0], (images[0],), scl[0] if scl else None)
    if not bands:
        what = f"only an SCL file ({scl[0]})" if scl else "no image file"
        raise AliseError(f"{where}: date {date} has {what}; expected a 10-band image or one file per band")
    dup = next((b for b, fs in bands.items() if len(fs) > 1), None)
    if dup:
        raise AliseError(f"date {date}: two {dup} files, {bands[dup][0]} and {bands[dup][1]}; keep one")
    missing = [b for b in S2_BANDS if b not in bands]
    if missing:
        raise AliseError(f"{where}: date {date} has no {' '.join(missing)} file; one file per band needs each of "
                         f"{' '.join(S2_BANDS)}")
    return Scene(date, where, tuple(bands[b][0] for b in S2_BANDS), scl[0] if scl else None)


def _undated_ok(name: str, flat: bool) -> bool:
    return flat and name.lower() in ("labels.tif", "labels.tiff")


def scan_images(folder: Path, date_pattern=None, flat: bool = False) -> list[Scene]:
    """The scenes of an image folder, sorted by date.

    Entries are dated image files (grouped by date: one multi-band image, or one file per band, plus
    an optional SCL file) and dated sub-folders holding a date's files. In ``s2/`` every entry must
    carry a date; in a flat site folder (``flat=True``) the site's own entries (``scl/``, ``labels.tif``
    …) and undated sub-folders are skipped.
    """
    groups: dict[dt.date, list[Path]] = {}
    folders: dict[dt.date, Path] = {}
    try:
        entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as e:
        raise AliseError(f"cannot list {folder}: {e}") from None
    for p in entries:
        if p.is_dir():
            if flat and (p.name.lower() in SITE_DIRS or not _has_date(p.name, date_pattern)):
                continue
            d = date_from_name(p.name, str(p), date_pattern)
            if d in folders or d in groups:
                other = folders.get(d) or groups[d][0]
                raise AliseError(f"duplicate date {d}: {other} and {p}; keep one file or folder per date")
            files = image_files(p)
            if not files:
                raise AliseError(f"{p}: a date folder without image files (expected B02.tif … B12.tif or one image)")
            folders[d] = p
            groups[d] = files
        elif p.suffix.lower() in IMAGE_EXT and not _undated_ok(p.name, flat):
            d = date_from_name(p.name, str(p), date_pattern)
            if d in folders:
                raise AliseError(f"duplicate date {d}: {folders[d]} and {p}; keep one file or folder per date")
            groups.setdefault(d, []).append(p)
    return [scene_from_files(d, groups[d], folders.get(d, folder)) for d in sorted(groups)]


def _has_date(name: str, date_pattern) -> bool:
    if date_pattern is not None:
        from alise.dates import compile_date_pattern

        return compile_date_pattern(date_pattern).search(name) is not None
    return bool(dates_in_name(name))


def has_dated_images(folder: Path, date_pattern=None) -> bool:
    """True if ``folder`` directly holds a dated image (not an SCL file) or a dated folder of images."""
    try:
        entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    except OSError:
        return False
    for p in entries:
        if p.is_file() and p.suffix.lower() in IMAGE_EXT and file_kind(p.name)[0] != "scl" \
                and _has_date(p.name, date_pattern):
            return True
    for p in entries:
        if p.is_dir() and p.name.lower() not in SITE_DIRS and _has_date(p.name, date_pattern) and image_files(p):
            return True
    return False


def select_scenes(scenes: list[Scene], start, end, where: Path) -> list[Scene]:
    """The scenes dated within ``[start, end]``; raise if none is."""
    keep = filter_dates([s.date for s in scenes], start, end)
    if keep.size == 0:
        raise AliseError(f"{where}: no date {period_text(start, end)}")
    return [scenes[i] for i in keep]


def check_unique_dates(scenes: list[Scene]) -> None:
    """Raise on two scenes of one date (naming both)."""
    seen: dict[dt.date, Scene] = {}
    for s in scenes:
        if s.date in seen:
            raise AliseError(f"duplicate date {s.date}: {seen[s.date].where} and {s.where}; keep one per date")
        seen[s.date] = s


def _bounds(g: RasterGrid) -> tuple[float, float, float, float]:
    t = g.transform
    return (t.c, t.f + t.e * g.height, t.c + t.a * g.width, t.f)


def covers_same_area(g: RasterGrid, ref: RasterGrid) -> bool:
    """Same CRS, north-up, and the same bounds to half a pixel of the coarser grid (e.g. a 20 m band
    of a 10 m tile): such a file can be resampled onto ``ref``."""
    if g.crs is None or g.crs != ref.crs or g.transform is None or ref.transform is None:
        return False
    if any((g.transform.b, g.transform.d, ref.transform.b, ref.transform.d)):
        return False
    tol = 0.5 * max(abs(g.transform.a), abs(g.transform.e), abs(ref.transform.a), abs(ref.transform.e))
    return all(abs(a - b) <= tol for a, b in zip(_bounds(g), _bounds(ref)))


@dataclass(frozen=True)
class _Part:
    """One file of a date: which of its bands fill the next channels, and how it is read."""

    path: Path
    indexes: tuple[int, ...]
    nodata: float | None
    warp: bool = False  # on another grid of the same extent: resampled onto the image grid
    resampling: Resampling = Resampling.nearest


# ------------------------------------------------------------------------------------ sources
class SceneSource(SITSSource):
    """A series given as one :class:`Scene` per date (the base of every dated-files layout).

    Args:
        path: where the series lives (messages, ``source.path``).
        scenes: the dates, sorted and unique, already filtered by date.
        name: short name of the series.
        mask_kind: ``"scl"`` (Sen2Cor classes), ``"mask"`` (1 = cloudy) or None (no mask); when given,
            every scene must have a mask file.
        site: folder holding ``labels.tif`` / ``labels/YYYY.tif`` / ``classes.csv`` / ``change/`` (None: no labels).
    """

    layout = "scenes"

    def __init__(self, path: str | Path, scenes: list[Scene], *, name: str, mask_kind: str | None,
                 site: Path | None = None, clear_scl=DEFAULT_CLEAR_SCL, offset: float | str = "auto"):
        path = Path(path)
        if not scenes:
            raise AliseError(f"{path}: no acquisition dates")
        self.scenes = list(scenes)
        self.clear_scl = frozenset(clear_scl)
        self.mask_kind = mask_kind
        self.files: list[Path] = [s.images[0] for s in scenes]
        self.parts: list[list[_Part]] = []
        self.band_order: list[str] = []
        self.nodata: list[float] = []
        self.dtypes: list[str] = []
        self.tags: list[dict] = []
        grid = None
        for sc in scenes:  # header checks: grid, bands, tags of every date (pixels are read lazily)
            parts, how, tags, dtype, g = self._open_scene(sc)
            if grid is None:
                grid = g
            elif not g.same_as(grid):
                f = sc.images[0]
                raise AliseError(f"{f}: grid {g.describe()} at {g.transform.c:g},{g.transform.f:g} differs from "
                                 f"{self.files[0].name} ({grid.describe()}); all dates must share one grid")
            self.parts.append(parts)
            self.band_order.append(how)
            self.nodata.append(parts[0].nodata)
            self.dtypes.append(dtype)
            self.tags.append({**tags, **sc.tags})
        self.mask_parts: list[_Part] = []
        if mask_kind is not None:
            for sc in scenes:
                if sc.mask is None:
                    have = next(s.mask for s in scenes if s.mask is not None) if any(s.mask for s in scenes) else None
                    also = f" (other dates have one, e.g. {have})" if have else ""
                    raise AliseError(f"{sc.where}: no {mask_kind} file for date {sc.date}{also}")
                self.mask_parts.append(self._mask_part(sc.mask, grid, mask_kind))
        self.mask_files: list[Path] = [p.path for p in self.mask_parts]

        self.site = site
        self.label_file = site / "labels.tif" if site is not None and (site / "labels.tif").is_file() else None
        self.label_years: dict[int, Path] = {}
        if site is not None and (site / "labels").is_dir():
            for p in _tif_files(site / "labels"):
                if not p.stem.isdigit():
                    raise AliseError(f"{p}: per-year labels must be named labels/YYYY.tif")
                self.label_years[int(p.stem)] = p
        for p in ([self.label_file] if self.label_file else []) + list(self.label_years.values()):
            self._check_grid(p, grid, "labels")
        classes = read_classes(site / "classes.csv") if site is not None else None
        super().__init__(name, path, [s.date for s in scenes], grid, class_names=classes, ignore_labels=(0,),
                         offset=offset)

    # ---- opening ----------------------------------------------------------------------------
    @staticmethod
    def _open_scene(sc: Scene) -> tuple[list[_Part], str, dict, str, RasterGrid]:
        """``(parts, band-order note, tags, dtype, grid)`` of one date, from the file headers."""
        if not sc.per_band:
            f = sc.images[0]
            with open_raster(f, "image") as src:
                idx, how = band_indexes(src.descriptions, src.count, str(f))
                nodata = 0.0 if src.nodata is None else float(src.nodata)
                return ([_Part(f, tuple(idx), nodata)], how, {**src.tags(), **src.tags(idx[0])}, src.dtypes[0],
                        grid_of(src))
        parts, resampled = [], []
        ref = tags = dtype = None
        for band, f in zip(S2_BANDS, sc.images):
            with open_raster(f, "image") as src:
                if src.count != 1:
                    raise AliseError(f"{f}: {src.count} bands; a per-band file ({band}) must hold one band")
                g = grid_of(src)
                nodata = 0.0 if src.nodata is None else float(src.nodata)
                if ref is None:  # B02: the grid of the date
                    ref, tags, dtype = g, {**src.tags(), **src.tags(1)}, src.dtypes[0]
                warp = not g.same_as(ref)
                if warp and not covers_same_area(g, ref):
                    raise AliseError(f"{f}: {band} grid ({g.describe()}) does not cover the area of B02 "
                                     f"({sc.images[0].name}: {ref.describe()}); the band files of a date must share "
                                     "one extent")
            if warp:
                resampled.append(band)
            parts.append(_Part(f, (1,), nodata, warp, Resampling.bilinear))
        how = "one file per band" + (f", {' '.join(resampled)} resampled (bilinear)" if resampled else "")
        return parts, how, tags, dtype, ref

    @staticmethod
    def _mask_part(f: Path, grid: RasterGrid, kind: str) -> _Part:
        with open_raster(f, kind) as src:
            g = grid_of(src)
        if g.same_as(grid):
            return _Part(f, (1,), None)
        if covers_same_area(g, grid):
            return _Part(f, (1,), None, True, Resampling.nearest)
        raise AliseError(f"{f}: {kind} grid ({g.describe()}) differs from the images' grid ({grid.describe()})")

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
        for k, i in enumerate(idx):  # one file (or one per band) per date: I/O, not per-pixel work
            ch = 0
            for part in self.parts[i]:
                n = len(part.indexes)
                dn[k, ch:ch + n] = nodata_to_nan(self._read_part(part, rw), part.nodata)
                ch += n
            if self.mask_kind:
                clear[k] = self._mask(self._read_part(self.mask_parts[i], rw)[0])
        return dn, clear

    def _read_overview(self, idx: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
        H, W = self.grid.height, self.grid.width
        step = max(1, -(-max(H, W) // side))
        shape = (-(-H // step), -(-W // step))
        b02 = np.empty((len(idx),) + shape, np.float32)
        clear = np.ones((len(idx),) + shape, bool)
        for k, i in enumerate(idx):
            p = self.parts[i][0]
            b02[k] = nodata_to_nan(self._read_part(p, None, shape, p.indexes[:1])[0], p.nodata)
            if self.mask_kind:
                clear[k] = self._mask(self._read_part(self.mask_parts[i], None, shape)[0])
        return b02, clear

    def _mask(self, m: np.ndarray) -> np.ndarray:
        return valid_from_scl(m, self.clear_scl) if self.mask_kind == "scl" else valid_from_mask(m)

    def raw_mask(self, i: int, window: Window | None = None) -> np.ndarray | None:
        """``(h, w)`` raw mask values of date ``i`` on the image grid (SCL classes or 0/1), or None."""
        if not self.mask_kind:
            return None
        r, c, h, w = self.check_window(window)
        return self._read_part(self.mask_parts[i], RioWindow(c, r, w, h))[0]

    def _read_part(self, part: _Part, window, out_shape=None, indexes=None) -> np.ndarray:
        """``(n, h, w)`` values of ``part`` on the image grid (resampled if the part is on another grid)."""
        indexes = list(indexes or part.indexes)
        if not part.warp:
            return self._read(part.path, indexes, window, out_shape)
        g = self.grid
        extra = {} if part.nodata is None else {"src_nodata": part.nodata, "nodata": part.nodata}
        with open_raster(part.path) as src:
            try:
                with WarpedVRT(src, crs=g.crs, transform=g.transform, width=g.width, height=g.height,
                               resampling=part.resampling, **extra) as vrt:
                    if out_shape is None:
                        return vrt.read(indexes, window=window)
                    return vrt.read(indexes, out_shape=(len(indexes),) + tuple(out_shape),
                                    resampling=Resampling.nearest)
            except RasterioError as e:
                detail = e.__cause__ or e
                raise AliseError(f"cannot read pixels of {part.path}: {detail} (truncated or corrupt file?)") from None

    @staticmethod
    def _read(f: Path, indexes, window, out_shape=None) -> np.ndarray:
        with open_raster(f) as src:
            try:
                if out_shape is None:
                    return src.read(indexes, window=window)
                if not isinstance(indexes, int):
                    out_shape = (len(indexes),) + tuple(out_shape)
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
        if self.site is None:
            return None
        f = self.site / "change" / f"{year_a}_{year_b}.tif"
        if not f.is_file():
            return None
        r, c, h, w = self.check_window(window)
        self._check_grid(f, self.grid, "change mask")
        return self._read(f, 1, RioWindow(c, r, w, h)).astype(np.uint8)


class FolderSource(SceneSource):
    """A site folder with ``s2/DATE.tif`` files, or dated images directly in it (see module docstring).

    ``layout`` is ``"folder"`` with ``s2/``, ``"flat"`` without.
    """

    layout = "folder"

    def __init__(self, path: str | Path, *, clear_scl=DEFAULT_CLEAR_SCL, start=None, end=None,
                 offset: float | str = "auto", date_pattern=None):
        path = Path(path)
        flat = not (path / "s2").is_dir()
        folder = path if flat else path / "s2"
        if flat and not path.is_dir():
            raise AliseError(f"{path}: not a folder (expected s2/YYYY-MM-DD.tif files)")
        scenes = scan_images(folder, date_pattern, flat=flat)
        if not scenes:
            raise AliseError(f"{folder}: no dated image files (expected {'' if flat else 's2/'}YYYY-MM-DD.tif)")
        scenes = select_scenes(scenes, start, end, path)
        inline = any(s.mask is not None for s in scenes)
        mask_dir = next((path / k for k in ("scl", "mask") if (path / k).is_dir()), None)
        mask_kind = "scl" if inline else None
        if mask_dir is not None:
            if inline:
                f = next(s.mask for s in scenes if s.mask is not None)
                raise AliseError(f"{path}: masks given twice, in {mask_dir.name}/ and beside the images ({f.name}); "
                                 "keep one")
            mask_kind = mask_dir.name
            found: dict[dt.date, Path] = {}
            for p in image_files(mask_dir):
                d = date_from_name(p.name, str(p), date_pattern)
                if d in found:
                    raise AliseError(f"duplicate date {d}: {found[d]} and {p}; keep one mask per date")
                found[d] = p
            for s in scenes:
                if s.date not in found:
                    raise AliseError(f"{mask_dir}: no file for date {s.date} (needed for {s.where.name})")
                s.mask = found[s.date]
        self.layout = "flat" if flat else "folder"
        super().__init__(path, scenes, name=path.resolve().name, mask_kind=mask_kind, site=path,
                         clear_scl=clear_scl, offset=offset)
