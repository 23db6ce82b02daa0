"""``alise.xarray.encode`` on a dask-backed cube of the real patch = ``alise encode`` on the folder."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import rasterio

from alise.cli import main

N_DATES = 14


@pytest.fixture(scope="module")
def subset(flanders, tmp_path_factory):
    """The first N_DATES dates of the real patch as a site folder."""
    site = tmp_path_factory.mktemp("xr") / "site"
    names = sorted(p.name for p in (flanders / "s2").iterdir())[:N_DATES]
    for sub in ("s2", "scl"):
        (site / sub).mkdir(parents=True)
        for n in names:
            shutil.copy(flanders / sub / n, site / sub / n)
    return site


def _cube(site):
    """``(time, band, y, x)`` dask cube of the folder's DN and its SCL, CRS written with rioxarray."""
    import dask.array as da
    import pandas as pd
    import rioxarray  # noqa: F401
    import xarray as xr

    files = sorted((site / "s2").iterdir())
    dn = np.stack([rasterio.open(f).read() for f in files])
    scl = np.stack([rasterio.open(site / "scl" / f.name).read(1) for f in files])
    with rasterio.open(files[0]) as f:
        t, crs, (h, w) = f.transform, f.crs, f.shape
        bands = list(f.descriptions)
    coords = {"time": pd.to_datetime([f.stem for f in files]), "band": bands,
              "y": t.f + t.e * (np.arange(h) + 0.5), "x": t.c + t.a * (np.arange(w) + 0.5)}
    cube = xr.DataArray(da.from_array(dn, chunks=(4, 10, 32, 32)), dims=("time", "band", "y", "x"), coords=coords,
                        name="flanders").rio.write_crs(crs.to_string())
    scl_da = xr.DataArray(da.from_array(scl, chunks=(4, 32, 32)), dims=("time", "y", "x"),
                          coords={k: coords[k] for k in ("time", "y", "x")})
    return cube, scl_da


@pytest.mark.parametrize("scheduler", ["threads", "LocalCluster"])
def test_a_dask_cube_encodes_like_the_folder(scheduler, subset, tmp_path):
    """Its chunks computed by the default scheduler, or by a 2-worker dask.distributed LocalCluster."""
    import contextlib

    import alise.xarray

    assert main(["encode", str(subset), "--out", str(tmp_path / "ref.tif"), "--no-progress"]) == 0
    cube, scl = _cube(subset)
    with contextlib.ExitStack() as stack:
        if scheduler == "LocalCluster":
            from distributed import Client, LocalCluster

            cluster = stack.enter_context(LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                                       dashboard_address=None))
            stack.enter_context(Client(cluster))
        emb = alise.xarray.encode(cube, scl=scl, out=tmp_path / "emb.zarr")
    assert emb.dims == ("query", "feature", "y", "x") and emb.chunks is not None  # lazy
    assert emb.rio.crs.to_epsg() == 32631 and "n_clear" in emb.coords and emb.attrs["ALISE_MODEL"]
    with rasterio.open(tmp_path / "ref.tif") as f:
        ref = f.read().reshape(emb.shape)
    got = emb.values
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    ok = ~np.isnan(ref)
    assert np.abs(got[ok] - ref[ok]).max() <= 1e-5 * np.abs(ref[ok]).mean()


def test_wrong_inputs_are_one_line_errors(subset, tmp_path):
    import alise.xarray
    from alise.errors import AliseError

    cube, _ = _cube(subset)
    with pytest.raises(AliseError, match="expected an xarray DataArray or Dataset"):
        alise.xarray.encode(np.zeros((2, 10, 8, 8)))
    with pytest.raises(AliseError, match="name it emb.zarr"):
        alise.xarray.encode(cube, out=tmp_path / "emb.tif")
    with pytest.raises(AliseError, match="dims"):
        alise.xarray.encode(cube.isel(band=0))
