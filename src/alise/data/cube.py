"""xarray / zarr / netCDF cubes with dims ``(time, band, y, x)`` (docs/design.md §2, item 4).

For users who already hold their series as a cube. Expected content (one dataset):

=============== ===================== ==========================================================
variable        dims                  meaning
=============== ===================== ==========================================================
``s2`` (or the  (time, band, y, x)    L2A DN = reflectance × 10 000; ``band`` coordinate with
only 4-D var)                         Sentinel-2 names (picked by name) or exactly 10 bands in
                                      the order B02 … B12; NaN / 0 = nodata
``valid``       (time, y, x)          optional, True = clear;   or
``mask``        (time, y, x)          optional, 1 = cloudy;     or
``scl``         (time, y, x)          optional Sen2Cor SCL (clear = ``clear_scl``)
``labels``      (y, x)                optional class ids (0 = unlabeled)
=============== ===================== ==========================================================

CRS and transform come from rioxarray (``spatial_ref`` / ``grid_mapping``); a ``BOA_ADD_OFFSET``
attribute on the variable or the dataset is honoured like a GeoTIFF tag. The store is opened lazily
without dask; a window read loads only the chunks it touches.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from alise.dates import period_text
from alise.errors import AliseError
from alise.data.folder import band_indexes
from alise.data.source import RasterGrid, SITSSource, Window, filter_dates
from alise.data.units import tag_offset
from alise.data.validity import DEFAULT_CLEAR_SCL, nodata_to_nan, valid_from_mask, valid_from_scl

_DIMS = ("time", "band", "y", "x")


def is_cube(path: Path) -> bool:
    """A ``.zarr`` store (or any zarr directory) or a ``.nc`` file."""
    if path.is_file():
        return path.suffix.lower() in (".nc", ".nc4")
    return path.is_dir() and (path.suffix.lower() == ".zarr" or (path / ".zgroup").is_file()
                              or (path / "zarr.json").is_file())


def _open(path: Path):
    import xarray as xr

    engine = "zarr" if path.is_dir() else None
    try:
        return xr.open_dataset(path, engine=engine, chunks=None, decode_coords="all")
    except Exception as e:  # xarray/zarr raise many types for a broken store
        raise AliseError(f"cannot open cube {path}: {type(e).__name__}: {e}") from None


class CubeSource(SITSSource):
    """A ``(time, band, y, x)`` cube (see the module docstring)."""

    layout = "cube"

    def __init__(self, path: str | Path, *, clear_scl=DEFAULT_CLEAR_SCL, start=None, end=None,
                 offset: float | str = "auto", dataset=None):
        path = Path(path)
        ds = _open(path) if dataset is None else dataset  # an xarray.Dataset built elsewhere (STAC)
        cands = [v for v in ("s2", "reflectance", "dn") if v in ds.data_vars]
        cands = cands or [v for v, da in ds.data_vars.items() if set(da.dims) == set(_DIMS)]
        if len(cands) != 1:
            raise AliseError(f"{path}: need one variable with dims {_DIMS} (named s2), found "
                             f"{ {v: da.dims for v, da in ds.data_vars.items()} }")
        self.var = cands[0]
        da = ds[self.var]
        if set(da.dims) != set(_DIMS):
            raise AliseError(f"{path}: variable {self.var} has dims {da.dims}, expected {_DIMS}")
        names = [str(b) for b in da["band"].values] if "band" in da.coords else [""] * da.sizes["band"]
        index, how = band_indexes(tuple(names), da.sizes["band"], f"{path} ({self.var})")
        self.band_index, self.band_order = [i - 1 for i in index], [how]
        times = np.asarray(da["time"].values).astype("datetime64[D]")
        listed = [t.item() for t in times]
        if len(set(listed)) != len(listed):
            dup = sorted({d for d in listed if listed.count(d) > 1})[0]
            raise AliseError(f"{path}: duplicate time {dup}; keep one acquisition per date")
        order = np.argsort(times, kind="stable")
        dates = [listed[i] for i in order]
        sel = filter_dates(dates, start, end)
        if sel.size == 0:
            raise AliseError(f"{path}: no date {period_text(start, end)}")
        self._order = order[sel]
        self.mask_var = next((v for v in ("valid", "mask", "scl") if v in ds.data_vars), None)
        self.clear_scl = frozenset(clear_scl)
        self._float = np.dtype(da.dtype).kind == "f"
        self._offset_tag = tag_offset({**ds.attrs, **da.attrs})
        import rioxarray  # noqa: F401  (registers the .rio accessor used below)

        crs = da.rio.crs or ds.rio.crs
        try:
            transform = da.rio.transform() if da.sizes["x"] > 1 and da.sizes["y"] > 1 else None
        except Exception:  # no usable x/y coordinates
            transform = None
        grid = RasterGrid(crs, transform, da.sizes["y"], da.sizes["x"])
        for v in filter(None, (self.mask_var, "labels" if "labels" in ds.data_vars else None)):
            want = {"time", "y", "x"} if v != "labels" else {"y", "x"}
            if set(ds[v].dims) != want or any(ds[v].sizes[d] != da.sizes[d] for d in want):
                raise AliseError(f"{path}: variable {v} has dims {dict(ds[v].sizes)}, expected {sorted(want)} "
                                 f"matching {self.var}")
        self.has_labels = "labels" in ds.data_vars
        self._ds = ds
        super().__init__(path.name, path, [dates[i] for i in sel], grid, ignore_labels=(0,), offset=offset)

    def __getstate__(self):  # DataLoader workers re-open the store lazily
        state = dict(self.__dict__)
        state["_ds"] = None
        return state

    def _dataset(self):
        if self._ds is None:
            self._ds = _open(self.path)
        return self._ds

    def _tag_offsets(self) -> list[float | None]:
        return [self._offset_tag] * self.n_dates

    def _is_float(self) -> bool:
        return self._float

    def _mask(self, idx, ys: slice, xs: slice) -> np.ndarray:
        if self.mask_var is None:
            return None
        m = self._dataset()[self.mask_var].transpose("time", "y", "x")
        m = np.asarray(m.isel(time=self._order[idx], y=ys, x=xs).values)
        if self.mask_var == "valid":
            return m.astype(bool)
        return valid_from_scl(m, self.clear_scl) if self.mask_var == "scl" else valid_from_mask(m)

    def _read_raw(self, window: Window, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r, c, h, w = window
        da = self._dataset()[self.var].transpose(*_DIMS)
        ys, xs = slice(r, r + h), slice(c, c + w)
        raw = da.isel(time=self._order[idx], band=self.band_index, y=ys, x=xs).values  # (t, C, h, w)
        clear = self._mask(idx, ys, xs)
        return nodata_to_nan(raw, 0.0), np.ones((len(idx), h, w), bool) if clear is None else clear

    def _read_overview(self, idx: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
        step = max(1, -(-max(self.grid.height, self.grid.width) // side))
        ys = xs = slice(None, None, step)
        da = self._dataset()[self.var].transpose(*_DIMS)
        b02 = nodata_to_nan(da.isel(time=self._order[idx], band=self.band_index[0], y=ys, x=xs).values, 0.0)
        clear = self._mask(idx, ys, xs)
        return b02, np.ones(b02.shape, bool) if clear is None else clear

    def _read_labels(self, window: Window, year: int | None) -> np.ndarray | None:
        if not self.has_labels:
            return None
        r, c, h, w = window
        lab = self._dataset()["labels"].transpose("y", "x").isel(y=slice(r, r + h), x=slice(c, c + w)).values
        return np.asarray(lab).astype(np.int64)

