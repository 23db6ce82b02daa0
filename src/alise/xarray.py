"""Embeddings of xarray cubes: ``alise.xarray.encode(cube) → DataArray (query, feature, y, x)``.

For series already held as an xarray cube (numpy- or dask-backed, e.g. from ``odc.stac.load`` /
``stackstac`` / ``rioxarray.open_rasterio``): the cube is read as a
:class:`~alise.data.cube.CubeSource` (window by window: a dask cube is computed one tile at a
time) and encoded by the same tiled, resumable pipeline as ``alise encode``
(:mod:`alise.encode.runner`: raster-wide GroupNorm statistics, blended overlapping tiles) into a
zarr store, returned lazily. The result is therefore identical to ``alise encode`` on the same
data, and memory is bounded by the tile, whatever the cube's size.

::

    import alise.xarray, rioxarray, xarray as xr
    cube = xr.open_zarr("s2_cube.zarr")["s2"]             # (time, band, y, x) DN, CRS via rioxarray
    emb = alise.xarray.encode(cube, out="emb.zarr")       # built-in model → lazy (query, feature, y, x)
    emb.sel(query=0).mean("feature").plot()
"""

from __future__ import annotations

import tempfile
from pathlib import Path


def encode(cube, model=None, *, out: str | Path | None = None, valid=None, scl=None, min_clear: float | None = None,
           start=None, end=None, tile: int | None = None, overlap: int = 32, dtype: str = "float32",
           device: str = "auto", progress: bool = False, overwrite: bool = False):
    """Encode a ``(time, band, y, x)`` cube of L2A digital numbers into aligned embeddings.

    Args:
        cube: ``xarray.DataArray (time, band, y, x)`` (a ``band`` coordinate with Sentinel-2 names
            picks bands by name; ``time`` datetimes; CRS and transform via rioxarray), or a
            ``Dataset`` laid out as docs/data-formats.md §7 (``s2`` + optional ``valid`` / ``mask``
            / ``scl`` / ``labels``).
        model: a loaded ALISE model, a model directory or built-in name; None: the built-in model.
        out: the zarr store to write (default: a new temporary folder); an interrupted call with
            the same ``out`` resumes.
        valid, scl: optional ``(time, y, x)`` clear mask (True = clear) or Sen2Cor SCL for a DataArray cube.
        min_clear: dates kept (clear fraction over the cube); default the model's ``input_min_clear``.
        start, end: date range kept (``"YYYY-MM-DD"``).
        tile, overlap, dtype, device, progress, overwrite: as ``alise encode``.

    Returns:
        ``xarray.DataArray (query, feature, y, x)`` float32, lazy (dask) on the zarr store, with
        the input's CRS, ``n_clear (y, x)`` as a coordinate and the output metadata as attributes.
    """
    import xarray as xr

    from alise.data.cube import CubeSource
    from alise.data.subset import clear_dates
    from alise.encode import EncodeOptions
    from alise.encode import encode as encode_raster
    from alise.errors import AliseError
    from alise.model.io import load_model

    if isinstance(cube, xr.DataArray):
        extra = {k: v for k, v in (("valid", valid), ("scl", scl)) if v is not None}
        ds = xr.Dataset({"s2": cube, **extra})
    elif isinstance(cube, xr.Dataset):
        if valid is not None or scl is not None:
            raise AliseError("give valid= / scl= with a DataArray cube; a Dataset carries its own mask variable")
        ds = cube
    else:
        raise AliseError(f"expected an xarray DataArray or Dataset (time, band, y, x), got {type(cube).__name__}")
    if isinstance(model, (str, Path)) or model is None:
        model, info = load_model(model)
        name = info["name"]
    else:
        name = getattr(model, "name", "") or "in-memory model"
    source = CubeSource(Path(str(cube.name or "cube")), dataset=ds, start=start, end=end)
    source = clear_dates(source, model.input_min_clear if min_clear is None else min_clear)
    out = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="alise-")) / "embedding.zarr"
    if out.suffix.lower() != ".zarr":
        raise AliseError(f"out={out}: the embedding of a cube is a zarr store; name it {out.stem}.zarr")
    opts = EncodeOptions(tile=tile, overlap=overlap, dtype=dtype, device=device, progress=progress,
                         overwrite=overwrite, model_name=name).validate()
    encode_raster(model, source, out, opts)
    stored = xr.open_zarr(out, decode_coords="all")
    emb = stored["embedding"].assign_coords(n_clear=stored["n_clear"])
    emb.attrs = {**stored.attrs, **emb.attrs}
    return emb
