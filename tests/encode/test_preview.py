"""Embedding outputs read back (alise.encode.readers.open_embedding) and painted
(alise preview: PCA to RGB, one fit for every block, PNG decimated, GeoTIFF on the grid)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from matplotlib.image import imread

from alise.cli import main
from alise.data import open_source
from alise.encode import EncodeOptions, encode
from alise.encode.preview import fit_colours, pca_preview
from alise.encode.readers import open_embedding
from alise.plots import PCAColours

from .conftest import TINY

FAST = dict(progress=False, device="cpu", tile=64, overlap=16)
NB = TINY.n_q * TINY.d_model


@pytest.fixture(scope="module")
def stored(site, tmp_path_factory):
    """The test site encoded by one tiny model into every format and dtype."""
    from .conftest import tiny_model

    model, src, root = tiny_model(), open_source(site), tmp_path_factory.mktemp("stored")
    paths = {}
    for dtype, suffix in (("float32", ".tif"), ("float16", ".tif"), ("int8", ".tif"), ("float32", ".zarr"),
                          ("int8", ".zarr")):
        paths[dtype, suffix] = root / f"emb_{dtype}{suffix}"
        encode(model, src, paths[dtype, suffix], EncodeOptions(dtype=dtype, **FAST))
    return paths


def test_every_output_reads_back_as_float_query_feature_y_x_with_its_grid_and_counts(stored, site):
    src = open_source(site)
    with rasterio.open(stored["float32", ".tif"]) as f:
        ref = f.read().reshape(TINY.n_q, TINY.d_model, 96, 96)
        scales = np.asarray(f.scales)
    with rasterio.open(stored["float32", ".tif"].with_name("emb_float32.n_clear.tif")) as f:
        counts = f.read(1)
    for (dtype, suffix), path in stored.items():
        emb = open_embedding(path)
        assert emb.dims == ("query", "feature", "y", "x") and emb.shape == ref.shape and emb.dtype == np.float32
        assert emb.rio.crs == src.grid.crs and emb.rio.transform() == src.grid.transform, path
        assert emb.attrs["ALISE_QUANTISATION"].startswith("none" if dtype != "int8" else "int8")
        assert str(emb.attrs["ALISE_N_QUERIES"]) == str(TINY.n_q)
        np.testing.assert_array_equal(emb.n_clear.values, counts)
        v = emb.values
        assert np.isnan(v[..., :6, :6]).all() and np.isfinite(v[..., 6:, 6:]).all()  # never clear → NaN
        err = np.nanmax(np.abs(v - ref))
        if dtype == "float32":
            assert err == 0.0, path
        elif dtype == "float16":
            assert err <= 1e-3 * np.nanmax(np.abs(ref)), path
        else:
            assert err <= 0.5001 * scales.max() * 1.01, path  # |error| ≤ scale / 2 (zarr: per band, ≤ the COG's)


def test_tif_preview_is_every_block_painted_with_one_fit_on_the_embeddings_grid(stored, tmp_path, site):
    emb = open_embedding(stored["int8", ".zarr"])
    feats = emb.values.reshape(NB, 96, 96)
    out = tmp_path / "pca.tif"
    info = pca_preview(emb, out, sample=1000, block=40, progress=False)  # 3 × 3 blocks, fit on every 4th pixel
    assert info["sample_step"] == 4 and info["step"] == 1 and info["size"] == [96, 96]
    fit = PCAColours.fit(feats[:, ::4, ::4].reshape(NB, -1).T, max_fit=1000)
    whole = fit.colours(feats.reshape(NB, -1).T).reshape(96, 96, 3)
    with rasterio.open(out) as f:
        assert f.count == 3 and f.dtypes == ("uint8",) * 3 and f.crs == open_source(site).grid.crs
        assert f.transform == open_source(site).grid.transform
        rgb, mask = np.moveaxis(f.read(), 0, -1), f.dataset_mask()
        assert "principal components" in f.tags()["ALISE_PREVIEW"]
    np.testing.assert_array_equal(rgb, whole)  # blocks agree: one fit
    assert (mask[:6, :6] == 0).all() and (mask[6:, 6:] == 255).all()
    assert len(np.unique(rgb.reshape(-1, 3)[mask.ravel() > 0], axis=0)) > 100  # colours, not a flat image
    assert 0 < info["clear_fraction"] < 1 and sum(info["explained"]) <= 1.0


def test_png_preview_is_decimated_to_max_size_and_transparent_where_never_clear(stored, tmp_path):
    emb = open_embedding(stored["float32", ".tif"])
    tif, png = tmp_path / "full.tif", tmp_path / "small.png"
    pca_preview(emb, tif, progress=False)
    info = pca_preview(emb, png, max_size=40, progress=False)
    assert info["step"] == 3 and info["size"] == [32, 32]
    img = np.round(imread(png) * 255).astype(np.uint8)
    assert img.shape == (32, 32, 4)
    with rasterio.open(tif) as f:
        full = np.moveaxis(f.read(), 0, -1)
    np.testing.assert_array_equal(img[..., :3], full[::3, ::3])  # the same fit, every 3rd pixel
    assert (img[:2, :2, 3] == 0).all() and (img[2:, 2:, 3] == 255).all()


def test_one_query_is_coloured_from_its_own_features(stored, tmp_path):
    emb = open_embedding(stored["float32", ".zarr"])
    info = pca_preview(emb, tmp_path / "q1.png", query=1, progress=False)
    fit, _ = fit_colours(emb.data[1])
    assert info["explained"] == [round(float(v), 4) for v in fit.explained]
    assert info["explained"] != pca_preview(emb, tmp_path / "q0.png", query=0, progress=False)["explained"]


@pytest.mark.parametrize("args, message", [
    (["{folder}", "--out", "{tmp}/a.png"], "not an embedding written by alise encode (a folder, not a .zarr store"),
    (["{labels}", "--out", "{tmp}/a.png"], "no ALISE_N_QUERIES / ALISE_N_FEATURES tags"),
    (["{tmp}/missing.tif", "--out", "{tmp}/a.png"], "no such file or folder"),
    (["{emb}", "--out", "{tmp}/a.jpg"], "a preview is a .png picture or a .tif GeoTIFF"),
    (["{emb}", "--out", "{tmp}/a.png", "--query", "2"], f"--query 2: the embedding has queries 0 to {TINY.n_q - 1}"),
    (["{emb}", "--out", "{tmp}/a.png", "--max-size", "0"], "--max-size 0"),
    (["{emb}", "--out", "{tmp}/a.png", "--sample", "1"], "--sample 1"),
    (["{emb}", "--out", "{emb}"], "already exists"),
])
def test_wrong_inputs_are_one_line_errors_and_write_nothing(args, message, stored, site, tmp_path, capsys):
    emb = stored["float32", ".tif"]
    given = [a.format(folder=site, labels=site / "s2" / "2018-03-02.tif", tmp=tmp_path, emb=emb) for a in args]
    before = sorted(tmp_path.iterdir())
    assert main(["preview", *given, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("alise preview: error:") and message in err and "\n" not in err, err
    assert sorted(tmp_path.iterdir()) == before


def test_cli_preview_of_the_real_patch_shows_parcels(flanders, tmp_path, capsys):
    """The built-in model's embedding of the Flanders patch, painted: pixels of one crop class
    share colours (their spread is well below the image's), which a tile grid or noise would not."""
    emb, tif = tmp_path / "emb.tif", tmp_path / "pca.tif"
    assert main(["encode", str(flanders), "--out", str(emb), "--no-progress"]) == 0
    assert main(["preview", str(emb), "--out", str(tif), "--no-progress"]) == 0
    assert "wrote" in capsys.readouterr().out
    with rasterio.open(tif) as f, rasterio.open(flanders / "labels.tif") as lab:
        rgb, labels = f.read().reshape(3, -1).astype(float), lab.read(1).ravel()
    total = rgb.var(1).sum()
    classes = [c for c in np.unique(labels) if c > 0 and (labels == c).sum() >= 50]
    within = sum((labels == c).sum() * rgb[:, labels == c].var(1).sum() for c in classes) / \
        sum((labels == c).sum() for c in classes)
    assert len(classes) >= 3 and within < 0.6 * total, (within, total)
