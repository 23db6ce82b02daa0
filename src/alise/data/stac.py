"""STAC ItemCollections of Sentinel-2 L2A items (a GeoJSON ``FeatureCollection`` file).

The items are loaded lazily through odc-stac (``odc.stac.load``, dask-backed: a window read only
fetches the pixels it needs) onto one grid, and read as a ``(time, band, y, x)`` cube
(:class:`alise.data.cube.CubeSource`):

* **asset keys** of the common public catalogues, detected from the first item: ``B02`` … ``B12``
  + ``SCL`` (Element 84 / Planetary Computer style), or ``blue``, ``green``, ``red``,
  ``rededge1-3``, ``nir``, ``nir08``, ``swir16``, ``swir22`` + ``scl`` (Earth Search v1);
* **grid**: the CRS of the items (``proj:epsg`` / ``proj:code``) and 10 m pixels unless
  ``crs=`` / ``resolution=`` say otherwise; 20 m bands are resampled bilinear, SCL nearest;
  items of the same solar day are mosaicked (``groupby="solar_day"``);
* **processing baseline offset** ([P] data are L2A DN = reflectance × 10 000): per item,
  ``earthsearch:boa_offset_applied: true`` → already removed (0); else ``s2:processing_baseline``
  ≥ ``04.00`` → the +1000 DN offset is subtracted; older baselines: none. Items without either
  property go through the values rule of :mod:`alise.data.units` like untagged GeoTIFFs.
"""

from __future__ import annotations

import json
from pathlib import Path

from alise.data.cube import CubeSource
from alise.data.validity import DEFAULT_CLEAR_SCL
from alise.errors import AliseError

#: (band keys in B02 … B12 order, SCL key) per catalogue convention.
CONVENTIONS = {
    "B02": (("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"), "SCL"),
    "blue": (("blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08", "swir16", "swir22"), "scl"),
}
BANDS = CONVENTIONS["B02"][0]


def is_stac(path: Path) -> bool:
    """A ``.json`` / ``.geojson`` file holding a FeatureCollection of STAC items."""
    if not (path.is_file() and path.suffix.lower() in (".json", ".geojson")):
        return False
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    feats = doc.get("features") if isinstance(doc, dict) else None
    return doc.get("type") == "FeatureCollection" and bool(feats) and "stac_version" in feats[0]


def item_offset(item) -> float | None:
    """DN to subtract from an item's pixels (see the module docstring); None: undecided by its metadata."""
    props = item.properties
    if props.get("earthsearch:boa_offset_applied") is True:
        return 0.0
    baseline = props.get("s2:processing_baseline")
    if baseline is None:
        return None
    try:
        return 1000.0 if float(baseline) >= 4.0 else 0.0
    except ValueError:
        raise AliseError(f"item {item.id}: s2:processing_baseline {baseline!r} is not a number like 05.09") from None


class StacSource(CubeSource):
    """A STAC ItemCollection of one place, read as a cube (module docstring)."""

    layout = "stac"

    def __init__(self, path: str | Path, *, clear_scl=DEFAULT_CLEAR_SCL, start=None, end=None,
                 offset: float | str = "auto", crs=None, resolution: float | None = None):
        path = Path(path)
        self._load_args = (crs, resolution)
        ds, self._item_offsets = load_items(path, crs=crs, resolution=resolution)
        super().__init__(path, clear_scl=clear_scl, start=start, end=end, offset=offset, dataset=ds)

    def _dataset(self):
        if self._ds is None:  # a DataLoader worker: rebuild the lazy cube
            self._ds, _ = load_items(self.path, crs=self._load_args[0], resolution=self._load_args[1])
        return self._ds

    def _tag_offsets(self) -> list[float | None]:
        return [self._item_offsets[i] for i in self._order]


def load_items(path: Path, *, crs=None, resolution: float | None = None):
    """``(Dataset with s2 (time, band, y, x) [+ scl (time, y, x)], offsets per time step)``, lazy."""
    import numpy as np
    import pystac
    import xarray as xr

    try:
        items = list(pystac.ItemCollection.from_file(str(path)))
    except Exception as e:  # pystac raises several types for malformed files
        raise AliseError(f"{path}: not a readable STAC ItemCollection ({type(e).__name__}: {e})") from None
    keys = set(items[0].assets)
    conv = next((c for k, c in CONVENTIONS.items() if k in keys), None)
    if conv is None:
        raise AliseError(f"{path}: item {items[0].id} has assets {sorted(keys)[:8]}…; expected Sentinel-2 bands "
                         "B02…B12 (+ SCL) or blue…swir22 (+ scl)")
    bands, scl = conv
    missing = [b for b in bands if any(b not in it.assets for it in items)]
    if missing:
        raise AliseError(f"{path}: asset {missing[0]!r} missing from some items; every item needs {', '.join(bands)}")
    with_scl = all(scl in it.assets for it in items)
    from odc.stac import load

    if crs is None:
        code = items[0].properties.get("proj:code") or items[0].properties.get("proj:epsg")
        crs = code if isinstance(code, str) else f"EPSG:{code}" if code else None
    try:
        ds = load(items, bands=[*bands, *([scl] if with_scl else [])], crs=crs, resolution=resolution or 10.0,
                  groupby="solar_day", chunks={}, resampling={"*": "bilinear", scl: "nearest"}, fail_on_error=True)
    except Exception as e:
        raise AliseError(f"{path}: odc-stac could not load the items ({type(e).__name__}: {e})") from None
    # one offset per loaded time step (solar day): the items of that day must agree
    days = np.asarray(ds["time"].values).astype("datetime64[D]")
    by_day: dict = {}
    for it in items:
        d = np.datetime64(it.datetime.date(), "D")
        by_day.setdefault(d, set()).add(item_offset(it))
    offsets = []
    for d in days:
        vals = by_day.get(d, {None})
        if len(vals) > 1:
            raise AliseError(f"{path}: items of {d} have different processing-baseline offsets {sorted(map(str, vals))}")
        offsets.append(next(iter(vals)))
    s2 = xr.concat([ds[b] for b in bands], dim="band").assign_coords(band=list(BANDS)).transpose("time", "band", "y", "x")
    out = xr.Dataset({"s2": s2, **({"scl": ds[scl]} if with_scl else {})})
    if "spatial_ref" in ds.coords:
        out = out.assign_coords(spatial_ref=ds["spatial_ref"])
    return out, offsets
