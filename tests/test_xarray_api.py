"""``alise.xarray`` on dask-backed cubes of the real patch = the CLI (encode, reconstruct, change) on the folder.

Small tiles (``--tile 32 --overlap 8``: 3 × 3 tiles on the 64 × 64 patch) and output chunks of 20 px
that do not line up with them, so that the lazy graph blends tiles across chunk borders (the default
chunks, the tile stride of 24 px, line up with the tile starts).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import rasterio
import xarray as xr

from alise.cli import main

N_DATES = 14
TILING = dict(tile=32, overlap=8)
CLI_TILING = ["--tile", "32", "--overlap", "8", "--no-progress"]
CHUNKS = 20  # 4 × 4 output chunks, across the tiles' borders
TARGETS = ["2017-09-01", "2017-10-01"]  # reconstruction dates, inside the first N_DATES dates


def _site(flanders, root, first: int, n: int):
    """Dates ``first … first + n − 1`` of the real patch as a site folder."""
    names = sorted(p.name for p in (flanders / "s2").iterdir())[first:first + n]
    for sub in ("s2", "scl"):
        (root / sub).mkdir(parents=True)
        for name in names:
            shutil.copy(flanders / sub / name, root / sub / name)
    return root


@pytest.fixture(scope="module")
def subset(flanders, tmp_path_factory):
    """The first N_DATES dates of the real patch as a site folder."""
    return _site(flanders, tmp_path_factory.mktemp("xr") / "site", 0, N_DATES)


@pytest.fixture(scope="module")
def later(flanders, tmp_path_factory):
    """The next 12 dates of the real patch: the second series of a change map."""
    return _site(flanders, tmp_path_factory.mktemp("xr") / "later", N_DATES, 12)


@pytest.fixture(scope="module")
def reference(subset, tmp_path_factory):
    """``alise encode`` of the folder with the test tiling: ``(embedding (Q·D, H, W), n_clear (H, W), tags)``."""
    out = tmp_path_factory.mktemp("ref") / "ref.tif"
    assert main(["encode", str(subset), "--out", str(out), *CLI_TILING]) == 0
    with rasterio.open(out) as f, rasterio.open(out.with_name("ref.n_clear.tif")) as n:
        return f.read(), n.read(1), f.tags()


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


def _close(got, ref, tol=1e-5):
    """Same NaN pixels, and values within ``tol`` of the mean |reference|."""
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    ok = ~np.isnan(ref)
    assert np.abs(got[ok] - ref[ok]).max() <= tol * np.abs(ref[ok]).mean()


@pytest.mark.parametrize("scheduler", ["threads", "LocalCluster"])
def test_a_dask_cube_encodes_like_the_folder(scheduler, subset, reference):
    """The lazy result, computed by the default scheduler or by a 2-worker dask.distributed LocalCluster."""
    import contextlib

    import alise.xarray

    cube, scl = _cube(subset)
    ref, ref_count, tags = reference
    with contextlib.ExitStack() as stack:
        if scheduler == "LocalCluster":
            from distributed import Client, LocalCluster

            cluster = stack.enter_context(LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                                       dashboard_address=None))
            stack.enter_context(Client(cluster))
        emb = alise.xarray.encode(cube, scl=scl, chunks=CHUNKS, **TILING)
        assert emb.dims == ("query", "feature", "y", "x") and emb.chunks is not None  # lazy
        assert emb.chunks[2:] == ((20, 20, 20, 4), (20, 20, 20, 4)) and emb.dtype == np.float32
        done = emb.compute()
    assert done.rio.crs.to_epsg() == 32631 and "n_clear" in emb.coords and emb.attrs["ALISE_MODEL"]
    assert done.rio.transform().almost_equals(cube.rio.transform())
    assert np.array_equal(done.x, cube.x) and np.array_equal(done.y, cube.y)
    for k in ("ALISE_MODEL_SHA256", "ALISE_DATES", "ALISE_VERSION"):
        assert str(emb.attrs[k]) == tags[k]
    assert np.array_equal(done["n_clear"].values, ref_count)
    _close(done.values, ref.reshape(emb.shape))


def test_out_writes_the_store_of_alise_encode(subset, reference, tmp_path):
    """``out=``: the file pipeline into a zarr store, returned lazily on it."""
    import alise.xarray

    cube, scl = _cube(subset)
    emb = alise.xarray.encode(cube, scl=scl, out=tmp_path / "emb.zarr", **TILING)
    assert (tmp_path / "emb.zarr").is_dir() and emb.chunks is not None
    assert emb.rio.crs.to_epsg() == 32631 and emb.attrs["ALISE_MODEL_SHA256"] == reference[2]["ALISE_MODEL_SHA256"]
    assert np.array_equal(emb["n_clear"].values, reference[1])
    _close(emb.values, reference[0].reshape(emb.shape))
    q = alise.xarray.encode(cube, scl=scl, out=tmp_path / "q.zarr", dtype="int8", **TILING)  # decoded, not codes
    step = float(xr.open_zarr(tmp_path / "q.zarr")["embedding_scale"].max())
    ok = ~np.isnan(emb.values)
    assert q.dtype == np.float32 and np.array_equal(ok, ~np.isnan(q.values))
    assert np.abs(q.values[ok] - emb.values[ok]).max() <= step / 2 + 1e-6


def test_nothing_is_encoded_until_computed_and_a_chunk_needs_only_its_tiles(subset, monkeypatch):
    import alise.encode.runner as runner
    import alise.xarray

    calls = []
    real = runner.run_model
    monkeypatch.setattr(runner, "run_model", lambda *a, **k: calls.append(1) or real(*a, **k))
    cube, scl = _cube(subset)
    emb = alise.xarray.encode(cube, scl=scl, **TILING)
    assert emb.chunks[2:] == ((24, 24, 16), (24, 24, 16))  # the tile stride: chunk edges on tile starts
    assert not calls  # building the graph encodes nothing
    graph = emb.data.__dask_graph__()
    names = [k[0] if isinstance(k, tuple) else k for k in graph]
    assert sum(str(n).startswith("alise-model") for n in names) == 1  # the model: one key
    assert sum(str(n).startswith("alise-tile") for n in names) == 9
    emb.isel(y=slice(0, 24), x=slice(0, 24)).compute()  # rows/cols 0–23: only the tile at (0, 0)
    assert len(calls) == 1
    emb.compute()  # 9 chunks of 1–4 tiles each: every tile once
    assert len(calls) == 1 + 9
    emb.isel(x=slice(0, 20)).compute()  # the first column of chunks: the 3 tiles of the first column
    assert len(calls) == 1 + 9 + 3


def test_tile_parts_past_waiting_memory_wait_on_disk_and_give_the_same_embedding(subset):
    """``waiting_memory`` of 3 parts: the parts that wait for their neighbours' chunks beyond it
    go to the temporary folder and come back unchanged; once computed nothing stays in RAM or on
    disk, and the folder goes with the graph."""
    import gc
    import os

    from dask.callbacks import Callback

    import alise.xarray

    cube, scl = _cube(subset)
    free = alise.xarray.encode(cube, scl=scl, chunks=CHUNKS, waiting_memory=0, **TILING).values
    limit = 3 * CHUNKS * CHUNKS * (free.shape[0] * free.shape[1] + 1) * 4  # ≥ 3 parts of a 20² chunk
    emb = alise.xarray.encode(cube, scl=scl, chunks=CHUNKS, waiting_memory=limit, **TILING)
    store = next(v.value for k, v in emb.data.__dask_graph__().items() if str(k).startswith("alise-waiting"))
    in_ram = []

    class Watch(Callback):
        def _posttask(self, *args):
            in_ram.append(store.in_ram())

    with Watch():
        done = emb.compute(scheduler="threads")
    np.testing.assert_array_equal(done.values, free)  # bit for bit, NaN where no clear observation
    assert store.spilled > 0 and 0 < max(in_ram) <= limit
    assert store.in_ram() == 0 and os.listdir(store.folder) == []  # every part released
    folder = store.folder
    del emb, store, done
    gc.collect()
    assert not os.path.exists(folder)


def test_reconstruct_matches_alise_reconstruct(subset, tmp_path):
    import dask

    import alise.xarray
    from alise.downstream.reconstruct import to_uint16

    out = tmp_path / "rec"
    assert main(["reconstruct", str(subset), "--dates", ",".join(TARGETS), "--out", str(out), *CLI_TILING]) == 0
    cube, scl = _cube(subset)
    dn = alise.xarray.reconstruct(cube, TARGETS, scl=scl, chunks=CHUNKS, **TILING)
    stored = alise.xarray.reconstruct(cube, ",".join(TARGETS), scl=scl, chunks=CHUNKS, dtype="uint16", **TILING)
    assert dn.dims == ("time", "band", "y", "x") and dn.chunks is not None and stored.dtype == np.uint16
    assert list(dn.band.values) == [f"B{b}" for b in ("02", "03", "04", "05", "06", "07", "08", "8A", "11", "12")]
    assert [str(t)[:10] for t in dn.time.values] == TARGETS and dn.rio.crs.to_epsg() == 32631
    dn, stored = dask.compute(dn, stored)  # one graph: the shared tiles are encoded once
    for k, date in enumerate(TARGETS):
        with rasterio.open(out / "s2" / f"{date}.tif") as f:
            cli = f.read()
        assert np.array_equal(stored.values[k], to_uint16(dn.values[k]))
        diff = np.abs(stored.values[k].astype(np.int32) - cli)
        assert diff.max() <= 1 and (diff == 0).mean() > 0.999  # float rounding at .5 DN at most
    assert np.isfinite(dn.values).all() == (stored.values > 0).all()


def test_change_matches_alise_change(subset, later, tmp_path):
    import alise.xarray

    out = tmp_path / "change.tif"
    assert main(["change", str(subset), str(later), "--out", str(out), *CLI_TILING]) == 0
    (a, scl_a), (b, scl_b) = _cube(subset), _cube(later)
    dist = alise.xarray.change(a, b, scl_a=scl_a, scl_b=scl_b, chunks=CHUNKS, **TILING)
    assert dist.dims == ("y", "x") and dist.chunks is not None and dist.rio.crs.to_epsg() == 32631
    names = [k[0] if isinstance(k, tuple) else k for k in dist.data.__dask_graph__()]
    assert sum(str(n).startswith("alise-model") for n in names) == 1  # one model for both series
    with rasterio.open(out) as f:
        ref = f.read(1)
    _close(dist.values, ref)
    assert np.nanmean(ref) > 0


def test_wrong_inputs_are_one_line_errors(subset, tmp_path):
    import alise.xarray
    from alise.errors import AliseError

    cube, scl = _cube(subset)
    with pytest.raises(AliseError, match="expected an xarray DataArray or Dataset"):
        alise.xarray.encode(np.zeros((2, 10, 8, 8)))
    with pytest.raises(AliseError, match="name it emb.zarr"):
        alise.xarray.encode(cube, out=tmp_path / "emb.tif")
    with pytest.raises(AliseError, match="dims"):
        alise.xarray.encode(cube.isel(band=0))
    with pytest.raises(AliseError, match="int8.*out="):
        alise.xarray.encode(cube, dtype="int8")
    with pytest.raises(AliseError, match="chunks=0"):
        alise.xarray.encode(cube, chunks=0)
    for bad in ("lots", -1):
        with pytest.raises(AliseError, match=f"waiting_memory={bad!r}: bytes of RAM"):
            alise.xarray.encode(cube, waiting_memory=bad)
    with pytest.raises(AliseError, match="2020-01-01.*366 days outside"):
        alise.xarray.reconstruct(cube, ["2017-09-01", "2020-01-01"], scl=scl)
    with pytest.raises(AliseError, match="cannot parse date"):
        alise.xarray.reconstruct(cube, "2017-13-01")
    with pytest.raises(AliseError, match="not on the same grid"):
        alise.xarray.change(cube, cube.isel(x=slice(0, 32)))
