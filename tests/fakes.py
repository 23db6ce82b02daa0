"""Fake-data writers shared by the tests (one GeoTIFF writer for every test folder)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio


def write_tif(path: Path, data: np.ndarray, *, like: Path | None = None, crs=None, transform=None,
              descriptions=None, tags: dict | None = None, **profile) -> Path:
    """Write ``data`` (``(C, H, W)`` or ``(H, W)``) as a GeoTIFF at ``path`` (parents created).

    Georeferencing: ``crs`` / ``transform`` when given, else copied from the raster ``like``, else
    none. ``profile``: any other rasterio creation option (``nodata``, ``driver``, ``compress`` …).
    """
    a = np.asarray(data)
    a = a if a.ndim == 3 else a[None]
    base = {"driver": "GTiff", "count": a.shape[0], "height": a.shape[1], "width": a.shape[2], "dtype": a.dtype.name}
    if like is not None:
        with rasterio.open(like) as src:
            base.update(crs=src.crs, transform=src.transform)
    base.update({k: v for k, v in (("crs", crs), ("transform", transform)) if v is not None}, **profile)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **base) as dst:
        dst.write(a)
        if descriptions:
            dst.descriptions = tuple(descriptions)
        if tags:
            dst.update_tags(**tags)
    return path
