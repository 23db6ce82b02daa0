"""Whole-raster encoding: georeferenced outputs, seamless tiling, resume after a crash, shards."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch
from torch import nn

from alise.data import open_source
from alise.encode import EncodeOptions, encode, merge, n_clear_path, parts_dir
from alise.errors import AliseError
from alise.normalise import NormStats

from .conftest import TINY, tiny_model

FAST = dict(progress=False, device="cpu")


def read_cog(path):
    with rasterio.open(path) as f:
        return f.read(), f.descriptions, f.crs, f.transform, f.nodata


class LocalModel(nn.Module):
    """A model whose output at a pixel depends only on inputs ≤ 2 px away (two 3×3 convs, no norm)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.config, self.norm = TINY.replace(encoder_norm="batch"), NormStats.paper()  # no GroupNorm layers
        self.net = nn.Sequential(nn.Conv2d(10, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, TINY.n_q * TINY.d_model, 3, padding=1))

    def encode(self, x, days, valid_dates, chunk_pixels=None):  # (B, T, C, H, W) → (B, Q, D, H, W)
        b, t, c, h, w = x.shape
        f = self.net(x.flatten(0, 1)).unflatten(0, (b, t)) * torch.cos(days / 100)[..., None, None, None]
        return f.mean(1).unflatten(1, (TINY.n_q, TINY.d_model))


def test_blending_is_exact_for_a_model_within_the_margin(site, tmp_path):
    """Receptive radius 2 ≤ margin (overlap 16 // 4 = 4): tiled output == whole-raster output."""
    src, m = open_source(site), LocalModel()
    encode(m, src, tmp_path / "whole.tif", EncodeOptions(tile=96, overlap=0, **FAST))
    encode(m, src, tmp_path / "tiled.tif", EncodeOptions(tile=48, overlap=16, **FAST))
    whole, tiled = read_cog(tmp_path / "whole.tif")[0], read_cog(tmp_path / "tiled.tif")[0]
    ok = ~np.isnan(whole)
    assert np.array_equal(ok, ~np.isnan(tiled))
    assert np.abs(whole[ok] - tiled[ok]).max() < 1e-5


def test_cog_output_is_georeferenced_named_and_masked(site, tmp_path, model):
    src = open_source(site)
    out = tmp_path / "emb.tif"
    rep = encode(model, src, out, EncodeOptions(tile=64, overlap=16, **FAST))
    assert rep.merged and rep.tiles_total == 4 and not parts_dir(out).exists()
    emb, names, crs, transform, nodata = read_cog(out)
    assert emb.shape == (TINY.n_q * TINY.d_model, 96, 96) and emb.dtype == np.float32
    assert names[0] == "q00_d00" and names[17] == "q01_d01" and len(set(names)) == len(names)
    assert crs == src.grid.crs and transform.almost_equals(src.grid.transform) and np.isnan(nodata)
    with rasterio.open(n_clear_path(out)) as f:
        n_clear = f.read(1)
    raw = src.read()
    np.testing.assert_array_equal(n_clear, raw.valid.sum(0))
    assert np.all(n_clear[:6, :6] == 0) and np.all(np.isnan(emb[:, :6, :6]))  # never clear → NaN
    assert np.isfinite(emb[:, n_clear > 0]).all()


@pytest.mark.slow
def test_tiled_matches_whole_raster_encoding_of_the_real_model(site, tmp_path):
    """Real UNets (receptive field ≫ overlap): tiles blend seamlessly with BatchNorm and with
    GroupNorm under raster-wide statistics (the default); per-tile GroupNorm shows seams."""
    src = open_source(site)
    res = {}
    for norm, mode in (("batch", "raster"), ("group", "raster"), ("group", "tile")):
        m = tiny_model(norm)
        encode(m, src, tmp_path / f"whole_{norm}_{mode}.tif", EncodeOptions(tile=96, overlap=0, group_norm=mode, **FAST))
        encode(m, src, tmp_path / f"tiled_{norm}_{mode}.tif", EncodeOptions(tile=64, overlap=24, group_norm=mode, **FAST))
        whole = read_cog(tmp_path / f"whole_{norm}_{mode}.tif")[0]
        tiled = read_cog(tmp_path / f"tiled_{norm}_{mode}.tif")[0]
        ok = ~np.isnan(whole)
        res[norm, mode] = np.abs(whole[ok] - tiled[ok]).max() / np.abs(whole[ok]).mean()
        res[norm, mode, "whole"] = whole
    print("max |tiled - whole| / mean |whole|:", {k: f"{v:.2e}" for k, v in res.items() if len(k) == 2})
    assert res["batch", "raster"] < 1e-3
    assert res["group", "raster"] < 1e-3
    assert res["group", "tile"] > 10 * res["group", "raster"]  # what the shared statistics remove
    # One tile covering the raster: its raster statistics are its own, i.e. plain GroupNorm.
    a, b = res["group", "raster", "whole"], res["group", "tile", "whole"]
    ok = ~np.isnan(a)
    assert np.abs(a[ok] - b[ok]).max() < 1e-5 * np.abs(b[ok]).mean() + 1e-6


def test_zarr_holds_the_same_values_with_coordinates(site, tmp_path, model):
    import rioxarray  # noqa: F401
    import xarray as xr

    src = open_source(site)
    opts = dict(tile=64, overlap=16, **FAST)
    encode(model, src, tmp_path / "emb.tif", EncodeOptions(**opts))
    encode(model, src, tmp_path / "emb.zarr", EncodeOptions(fmt="zarr", **opts))
    ds = xr.open_zarr(tmp_path / "emb.zarr")
    cog = read_cog(tmp_path / "emb.tif")[0]
    q, d = TINY.n_q, TINY.d_model
    np.testing.assert_array_equal(ds.embedding.values, cog.reshape(q, d, *cog.shape[1:]))
    assert ds.embedding.dims == ("query", "feature", "y", "x")
    np.testing.assert_array_equal(ds.embedding.sel(query=0, feature=3).values, cog[3])  # COG band q00_d03
    assert ds.rio.crs == src.grid.crs
    assert ds.x.values[0] == src.grid.transform.c + 5.0 and ds.y.values[0] == src.grid.transform.f - 5.0
    with rasterio.open(n_clear_path(tmp_path / "emb.tif")) as f:
        np.testing.assert_array_equal(ds.n_clear.values, f.read(1))


def test_float16_and_odd_sized_raster(odd_site, tmp_path, model):
    src = open_source(odd_site)
    out = tmp_path / "emb16.tif"
    encode(model, src, out, EncodeOptions(tile=32, overlap=8, dtype="float16", **FAST))
    encode(model, src, tmp_path / "emb32.tif", EncodeOptions(tile=32, overlap=8, **FAST))
    e16, e32 = read_cog(out)[0], read_cog(tmp_path / "emb32.tif")[0]
    assert e16.shape == (32, 70, 90)
    ok = ~np.isnan(e32)
    np.testing.assert_allclose(e16[ok], e32[ok], rtol=2e-3, atol=1e-3)


class Interrupt(Exception):
    pass


def test_resume_after_interruption_gives_identical_output(site, tmp_path, model):
    src = open_source(site)
    opts = EncodeOptions(tile=32, overlap=8, **FAST)  # 16 tiles
    encode(model, src, tmp_path / "ref.tif", opts)
    seen = []

    def crash(tile):
        seen.append(tile)
        if len(seen) == 5:
            raise Interrupt

    out = tmp_path / "emb.tif"
    with pytest.raises(Interrupt):
        encode(model, src, out, opts, on_tile=crash)
    assert not out.exists() and len(list((parts_dir(out) / "tiles").glob("*.npy"))) >= 5
    rep = encode(model, src, out, opts)
    assert rep.tiles_done <= 16 - 5 and rep.merged
    assert np.array_equal(read_cog(out)[0], read_cog(tmp_path / "ref.tif")[0], equal_nan=True)


def test_shards_then_merge_equal_a_single_run_bit_for_bit(site, tmp_path, model):
    src = open_source(site)
    encode(model, src, tmp_path / "ref.zarr", EncodeOptions(tile=32, overlap=8, fmt="zarr", batch_tiles=2, **FAST))
    out = tmp_path / "emb.zarr"
    for i in (2, 0):
        rep = encode(model, src, out, EncodeOptions(tile=32, overlap=8, fmt="zarr", batch_tiles=2, shard=(i, 3), **FAST))
        assert not rep.merged and not out.exists()
    with pytest.raises(AliseError, match="not encoded yet"):
        merge(out, progress=False)
    encode(model, src, out, EncodeOptions(tile=32, overlap=8, fmt="zarr", batch_tiles=2, shard=(1, 3), **FAST))
    merge(out, progress=False)
    import zarr

    a, b = zarr.open_group(tmp_path / "ref.zarr")["embedding"][:], zarr.open_group(out)["embedding"][:]
    assert np.array_equal(a, b, equal_nan=True)


def test_user_mistakes_are_refused_before_any_work(site, tmp_path, model):
    src = open_source(site)
    out = tmp_path / "emb.tif"
    out.write_bytes(b"old")
    with pytest.raises(AliseError, match="already exists"):
        encode(model, src, out, EncodeOptions(**FAST))
    assert not parts_dir(out).exists()
    with pytest.raises(AliseError, match="shard"):
        encode(model, src, tmp_path / "a.tif", EncodeOptions(shard=(3, 3), **FAST))
    other = tiny_model(seed=1)
    other.norm = NormStats.from_samples(np.ones((4, 9)) * np.arange(9), bands=tuple(f"B{i}" for i in range(9)))
    with pytest.raises(AliseError, match="bands"):
        encode(other, src, tmp_path / "b.tif", EncodeOptions(**FAST))
    # an unfinished run with other settings is not silently mixed in
    with pytest.raises(Interrupt):
        encode(model, src, tmp_path / "c.tif", EncodeOptions(tile=32, overlap=8, **FAST),
               on_tile=lambda t: (_ for _ in ()).throw(Interrupt()))
    with pytest.raises(AliseError, match="tile"):
        encode(model, src, tmp_path / "c.tif", EncodeOptions(tile=48, overlap=8, **FAST))
