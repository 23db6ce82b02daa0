"""An embedding output of ``alise encode`` read back as one lazy ``xarray.DataArray``.

The inverse of :mod:`alise.encode.writers` for both formats and every dtype::

    from alise.encode.readers import open_embedding     # also alise.xarray.open_embedding
    emb = open_embedding("emb.tif")                      # or "emb.zarr"
    emb.dims                                             # ('query', 'feature', 'y', 'x')
    emb.sel(query=3).isel(y=slice(0, 256)).values        # float32, NaN = no clear observation

The values are float32 whatever was stored (an ``int8`` output decoded with its per-band scale and
offset, ``float16`` widened), dask-backed in the output's own 256 × 256 blocks, with the CRS and
transform (``emb.rio.crs``, ``emb.rio.transform()``), the ``n_clear (y, x)`` coordinate (the COG's
``<stem>.n_clear.tif`` sidecar, the zarr's ``n_clear``) and the output's metadata as attributes
(GeoTIFF tags as text, zarr attributes as stored).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from alise.encode.writers import BLOCK, INT8_NODATA, SUFFIXES, dequantise_embedding, n_clear_path
from alise.errors import AliseError


def _not_embedding(path: Path, why: str) -> AliseError:
    return AliseError(f"{path}: not an embedding written by alise encode ({why})")


def _open_zarr(path: Path):
    import xarray as xr

    try:
        stored = xr.open_zarr(path, decode_coords="all")
    except Exception as e:  # noqa: BLE001  (zarr raises several types for a folder that is not a store)
        raise _not_embedding(path, f"not a zarr store: {type(e).__name__}") from None
    if "embedding" not in stored or stored["embedding"].dims != ("query", "feature", "y", "x"):
        raise _not_embedding(path, "no embedding (query, feature, y, x) array")
    emb = dequantise_embedding(stored)  # int8: decoded values
    if "n_clear" in stored:
        emb = emb.assign_coords(n_clear=stored["n_clear"])
    emb.attrs = {**stored.attrs, **emb.attrs}
    return emb.rename("embedding")


def _open_cog(path: Path):
    import dask.array as da
    import rasterio
    import rioxarray
    import xarray as xr

    try:
        with rasterio.open(path) as f:
            tags, count, dtype = f.tags(), f.count, f.dtypes[0]
            scales, offsets = np.asarray(f.scales, np.float32), np.asarray(f.offsets, np.float32)
    except rasterio.errors.RasterioIOError as e:
        raise AliseError(f"{path}: cannot be read as a GeoTIFF ({str(e).splitlines()[0]})") from None
    try:
        n_q, n_d = int(tags["ALISE_N_QUERIES"]), int(tags["ALISE_N_FEATURES"])
    except (KeyError, ValueError):
        raise _not_embedding(path, "no ALISE_N_QUERIES / ALISE_N_FEATURES tags") from None
    if n_q * n_d != count:
        raise _not_embedding(path, f"{count} bands, not {n_q} queries × {n_d} features")
    with warnings.catch_warnings():  # per-band int8 scales: decoded below, not as one CF scale_factor
        warnings.filterwarnings("ignore", message="(Scales|Offsets) differ across bands")
        raw = rioxarray.open_rasterio(path, chunks={"band": -1, "y": BLOCK, "x": BLOCK}, mask_and_scale=False)
    data = raw.data
    if dtype == "int8":
        data = da.where(data == INT8_NODATA, np.float32(np.nan),
                        data.astype(np.float32) * scales[:, None, None] + offsets[:, None, None])
    data = data.astype(np.float32).reshape(n_q, n_d, *data.shape[1:])
    coords = {"query": np.arange(n_q, dtype=np.int32), "feature": np.arange(n_d, dtype=np.int32),
              "y": raw.y, "x": raw.x, "spatial_ref": raw.spatial_ref}
    side = n_clear_path(path)
    if side.is_file():
        coords["n_clear"] = rioxarray.open_rasterio(side, chunks={"y": BLOCK, "x": BLOCK}).isel(band=0, drop=True)
    emb = xr.DataArray(data, dims=("query", "feature", "y", "x"), coords=coords, name="embedding",
                       attrs={**tags, "grid_mapping": "spatial_ref", "long_name": "ALISE aligned embedding"})
    return emb


def open_embedding(path: str | os.PathLike):
    """Open an output of ``alise encode`` (COG ``.tif`` or zarr ``.zarr``; float32, float16 or int8).

    Args:
        path: the output written by ``alise encode`` / ``alise.xarray.encode(..., out=)``.

    Returns:
        a lazy float32 ``xarray.DataArray (query, feature, y, x)`` named ``embedding``: NaN where a
        pixel had no clear observation, ``n_clear (y, x)`` coordinate when the output has it, CRS and
        transform through rioxarray, the output's metadata in ``attrs``.

    Raises:
        AliseError: one line, when ``path`` is missing or is not such an output.
    """
    p = Path(path)
    if not p.exists():
        raise AliseError(f"{p}: no such file or folder")
    kind = SUFFIXES.get(p.suffix.lower())
    if kind is None:
        if p.is_dir():
            raise _not_embedding(p, f"a folder, not a .zarr store; for a series, run alise encode {p} --out emb.tif "
                                    "first")
        raise _not_embedding(p, "a file without a .tif, .tiff or .zarr suffix")
    return _open_zarr(p) if kind == "zarr" else _open_cog(p)


def embedding_grid(emb):
    """The :class:`~alise.data.source.RasterGrid` of an embedding ``DataArray (…, y, x)``: its
    CRS and transform through rioxarray (None when it has none)."""
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    from alise.data.source import RasterGrid

    try:
        crs, transform = emb.rio.crs, emb.rio.transform()
    except Exception:  # noqa: BLE001  (rioxarray raises when there are no spatial coordinates)
        crs, transform = None, None
    return RasterGrid(crs, transform, emb.shape[-2], emb.shape[-1])
