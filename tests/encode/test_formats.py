"""Output formats as their users read them: GDAL and xarray on the zarr store, self-describing
metadata, and int8 quantisation (scale/offset recorded, error ≤ scale / 2, NaN ↔ −128)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from alise.data import open_source
from alise.encode import EncodeOptions, encode
from alise.encode.writers import INT8_NODATA, Quantisation
from alise.errors import AliseError

from .conftest import DATES, TINY

FAST = dict(progress=False, device="cpu", tile=64, overlap=16)
NB = TINY.n_q * TINY.d_model


def gdal_zarr(path):
    return f'ZARR:"{path}":/embedding'


@pytest.fixture
def outputs(site, tmp_path, model):
    """float32 and int8 encodings of the test site, as COG and zarr (the same model and tiles)."""
    src = open_source(site)
    paths = {}
    for dtype in ("float32", "int8"):
        for suffix in (".tif", ".zarr"):
            paths[dtype, suffix] = tmp_path / f"emb_{dtype}{suffix}"
            encode(model, src, paths[dtype, suffix], EncodeOptions(dtype=dtype, **FAST))
    with rasterio.open(paths["float32", ".tif"]) as f:
        ref = f.read()
    return paths, ref


def test_zarr_opens_in_gdal_and_xarray_with_dims_coords_and_crs(outputs, site):
    import rioxarray  # noqa: F401
    import xarray as xr

    paths, ref = outputs
    z = paths["float32", ".zarr"]
    assert (z / ".zmetadata").is_file() and (z / "embedding" / ".zarray").is_file()  # zarr format 2
    assert not (z / "zarr.json").exists()
    src = open_source(site)
    with rasterio.open(gdal_zarr(z)) as f:  # GDAL: Q·D bands, query-major like the COG
        assert f.count == NB and f.shape == (96, 96) and f.dtypes[0] == "float32"
        assert f.crs == src.grid.crs and f.transform == src.grid.transform
        np.testing.assert_array_equal(f.read(), ref)
        assert np.isnan(f.nodata)
    with rasterio.open(z) as f:  # the store itself lists its arrays as subdatasets
        assert any(s.endswith(":/embedding") for s in f.subdatasets)
    ds = xr.open_zarr(z)
    e = ds.embedding
    assert e.dims == ("query", "feature", "y", "x") and e.shape == (TINY.n_q, TINY.d_model, 96, 96)
    assert list(ds["query"].values) == list(range(TINY.n_q)) and list(ds.feature.values) == list(range(TINY.d_model))
    np.testing.assert_array_equal(e.values.reshape(NB, 96, 96), ref)
    assert np.isnan(e.encoding["_FillValue"]) and np.isnan(e.values[:, :, :6, :6]).all()  # never clear → NaN
    assert ds.rio.crs == src.grid.crs and ds.rio.transform() == src.grid.transform
    assert e.attrs["grid_mapping"] == "spatial_ref" and ds.n_clear.dims == ("y", "x")
    assert ds.n_clear.dtype == np.uint16 and ds.n_clear.values[0, 0] == 0  # a count, not a fill value


def test_outputs_describe_themselves(outputs, model):
    import xarray as xr

    from alise.model.directory import model_metadata

    paths, _ = outputs
    dates = [d.isoformat() for d in DATES]
    with rasterio.open(paths["float32", ".tif"]) as f:
        tags = f.tags()
        assert f.descriptions[0] == "q00_d00" and f.descriptions[TINY.d_model + 3] == "q01_d03"
    assert tags["ALISE_CONFIG_SHA256"] == model_metadata(model)["config_sha256"]
    assert len(tags["ALISE_MODEL_SHA256"]) == 64 and tags["ALISE_VERSION"]
    assert tags["ALISE_DATE_LIST"] == ",".join(dates) and tags["start_datetime"].startswith(dates[0])
    assert tags["end_datetime"].startswith(dates[-1]) and tags["ALISE_INPUT_BANDS"].startswith("B02,B03")
    assert tags["ALISE_N_QUERIES"] == str(TINY.n_q) and tags["ALISE_QUANTISATION"] == "none"
    assert "median" in tags["ALISE_NORMALISATION"] and "query-major" in tags["ALISE_LAYOUT"]
    ds = xr.open_zarr(paths["float32", ".zarr"])
    for k in ("ALISE_MODEL", "ALISE_MODEL_SHA256", "ALISE_CONFIG_SHA256", "ALISE_VERSION", "start_datetime"):
        assert ds.attrs[k] == tags[k]
    assert ds.attrs["ALISE_DATE_LIST"] == dates and ds.attrs["ALISE_N_FEATURES"] == TINY.d_model  # typed JSON
    assert ds.attrs["ALISE_NORMALISATION"]["bands"][0] == "B02" and "(query, feature, y, x)" in ds.attrs["ALISE_LAYOUT"]
    with rasterio.open(gdal_zarr(paths["float32", ".zarr"])) as f:  # GDAL sees the array's copy
        assert f.tags()["ALISE_MODEL_SHA256"] == tags["ALISE_MODEL_SHA256"]


def test_int8_cog_per_band_scale_round_trips_within_half_a_step(outputs):
    paths, ref = outputs
    with rasterio.open(paths["int8", ".tif"]) as f:
        assert f.dtypes[0] == "int8" and f.nodata == INT8_NODATA and f.count == NB
        q = f.read()
        scale, offset = np.array(f.scales), np.array(f.offsets)
        assert "int8" in f.tags()["ALISE_QUANTISATION"] and f.descriptions[1] == "q00_d01"
    assert len(set(scale.tolist())) > 1  # one scale per band
    nan = np.isnan(ref)
    assert nan.any() and np.array_equal(q == INT8_NODATA, nan)
    assert q[~nan].min() >= -127 and q[~nan].max() <= 127
    deq = q * scale[:, None, None] + offset[:, None, None]
    err = np.abs(deq - ref) / scale[:, None, None]
    assert err[~nan].max() <= 0.5 + 1e-4
    assert (q == 127).any() and (q == -127).any()  # the range is used to its ends


def test_int8_zarr_per_band_scale_decodes_in_xarray_gdal_and_alise(outputs):
    import xarray as xr

    from alise.downstream.raster import embedding_rows
    from alise.encode.writers import dequantise_embedding

    paths, ref = outputs
    z = paths["int8", ".zarr"]
    nan = np.isnan(ref)
    ds = xr.open_zarr(z)
    e = ds.embedding
    assert e.encoding["dtype"] == np.int8 and e.encoding["_FillValue"] == INT8_NODATA
    assert "scale_factor" not in e.encoding and "scale_factor" not in e.attrs  # not a (scalar) CF scale
    scale, offset = ds.embedding_scale, ds.embedding_offset
    assert scale.dims == ("query", "feature") and scale.shape == (TINY.n_q, TINY.d_model)
    assert len(np.unique(scale.values)) > 1  # one scale per (query, feature)
    assert "embedding_scale" in e.attrs["ALISE_QUANTISATION"] and "embedding_scale" in ds.attrs["ALISE_QUANTISATION"]
    v = (e * scale + offset).values.reshape(NB, 96, 96)  # the documented decode (−128 is already NaN)
    step = scale.values.reshape(NB, 1, 1)
    assert np.array_equal(np.isnan(v), nan)
    assert (np.abs(v - ref) / step)[~nan].max() <= 0.5 + 1e-4
    assert (np.abs(v - ref) / step)[~nan].max() > 0.4  # quantised, not stored in float
    np.testing.assert_allclose(dequantise_embedding(ds).values.reshape(NB, 96, 96), v, rtol=1e-6, equal_nan=True)
    with rasterio.open(gdal_zarr(z)) as f:  # GDAL: the per-band scales from the array's attributes alone
        tags = f.tags()
        assert f.dtypes[0] == "int8" and f.nodata == INT8_NODATA and "ALISE_SCALE" in tags["ALISE_QUANTISATION"]
        s_b, o_b = (np.array(tags[k].strip("{}").split(","), float) for k in ("ALISE_SCALE", "ALISE_OFFSET"))  # {a,b,…}
        np.testing.assert_array_equal(s_b, scale.values.ravel())
        g = f.read(masked=True).astype(np.float64) * s_b[:, None, None] + o_b[:, None, None]
        assert np.array_equal(g.mask, nan) and (np.abs(g.filled(0) - np.nan_to_num(ref)) / step)[~nan].max() <= 0.5 + 1e-4
    rows = embedding_rows(z, TINY.n_q, TINY.d_model)(10, 20)  # the raster heads read it dequantised
    np.testing.assert_allclose(rows.numpy().reshape(NB, 10, 96), v[:, 10:20], rtol=1e-6, atol=1e-6)
    f32 = embedding_rows(paths["float32", ".zarr"], TINY.n_q, TINY.d_model)(0, 96)
    np.testing.assert_array_equal(f32.numpy().reshape(NB, 96, 96), ref)
    with rasterio.open(paths["int8", ".tif"]) as f:  # the same quantisation as the COG's
        np.testing.assert_array_equal(np.array(f.scales), scale.values.ravel())
        np.testing.assert_array_equal(f.read(), xr.open_zarr(z, mask_and_scale=False).embedding.values.reshape(NB, 96, 96))


def test_quantisation_bounds_and_nodata():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(3, 8, 9)) * np.array([0.1, 1.0, 5.0])[:, None, None]).astype(np.float32)
    x[:, 0, 0] = np.nan
    flat = x.reshape(3, -1)
    for per_band in (True, False):
        q = Quantisation.from_range(np.nanmin(flat, 1), np.nanmax(flat, 1), per_band=per_band)
        assert q.is_global is not per_band
        s = q.quantise(x)
        assert s.dtype == np.int8 and (s[:, 0, 0] == INT8_NODATA).all() and s[:, 1:].min() >= -127
        back = q.dequantise(s)
        assert np.isnan(back[:, 0, 0]).all()
        assert (np.abs(back - x)[:, 1:] <= q.scale[:, None, None] / 2 * (1 + 1e-5)).all()
    const = Quantisation.from_range(np.array([2.0]), np.array([2.0]))
    assert const.dequantise(const.quantise(np.full((1, 2, 2), 2.0, np.float32)))[0, 0, 0] == 2.0


def test_unknown_dtype_is_refused_in_one_line():
    with pytest.raises(AliseError) as e:
        EncodeOptions(dtype="int16").validate()
    assert str(e.value) == "--dtype int16: choose one of float32, float16, int8"
