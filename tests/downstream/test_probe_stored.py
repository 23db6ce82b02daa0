"""Encode once, then probe and map: ``alise probe DATA --embedding EMB`` (the linear probe on
features written by ``alise encode``) gives the figures of the probe that encodes DATA itself, and
``alise classify EMB --head PROBE`` maps any embedding raster with the fitted head."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

from alise.cli import main

PROBE = ["--block", "8", "--repeats", "2", "--no-progress"]


@pytest.fixture(scope="module")
def stored(tiny_model_dir, site, make_site_fn, tmp_path_factory):
    """The site encoded by the tiny model (float32 COG, int8 and float32 zarr), and another site."""
    root = tmp_path_factory.mktemp("stored")
    paths = {"tif": root / "emb.tif", "int8": root / "emb8.zarr", "zarr": root / "emb.zarr"}
    for key, path in paths.items():
        extra = ["--dtype", "int8"] if key == "int8" else []
        assert main(["encode", str(tiny_model_dir), str(site), "--out", str(path), "--no-progress", *extra]) == 0
    other_site = make_site_fn(root / "other", size=24)  # another grid
    paths["other"] = root / "other.tif"
    assert main(["encode", str(tiny_model_dir), str(other_site), "--out", str(paths["other"]), "--no-progress"]) == 0
    return paths


def test_stored_embedding_gives_the_probe_of_the_model_itself(tiny_model_dir, site, stored, tmp_path):
    direct, from_file, from_int8 = tmp_path / "direct", tmp_path / "file", tmp_path / "int8"
    assert main(["probe", str(tiny_model_dir), str(site), "--out", str(direct), *PROBE]) == 0
    assert main(["probe", str(site), "--embedding", str(stored["tif"]), "--out", str(from_file), *PROBE]) == 0
    assert main(["probe", str(site), "--embedding", str(stored["int8"]), "--out", str(from_int8), *PROBE]) == 0
    a, b, q = (json.loads((d / "metrics.json").read_text()) for d in (direct, from_file, from_int8))
    assert [r["macro_f1"] for r in b["runs"]] == pytest.approx([r["macro_f1"] for r in a["runs"]], abs=1e-6)
    assert [r["C"] for r in b["runs"]] == [r["C"] for r in a["runs"]]
    assert all(r["stopped"] == "converged" for r in b["runs"] + q["runs"])
    with rasterio.open(stored["tif"]) as f:
        fingerprint = f.tags()["ALISE_MODEL_SHA256"]
    assert b["model"] == f"stored embedding of {tiny_model_dir}" and b["model_id"] is None
    assert b["model_config"]["ALISE_MODEL_SHA256"] == [fingerprint]
    assert b["model_config"]["embedding"] == [str(stored["tif"])] and b["trainable_parameters"] == a["trainable_parameters"]
    assert abs(q["macro_f1"] - a["macro_f1"]) <= 0.05  # int8: the quantised features
    from safetensors.numpy import load_file

    head_a, head_b = load_file(direct / "head.safetensors"), load_file(from_file / "head.safetensors")
    assert head_a.keys() == head_b.keys()
    for k in head_a:  # the same fitted head: the same features, to float rounding
        np.testing.assert_allclose(head_b[k], head_a[k], rtol=1e-3, atol=1e-4, err_msg=k)
    with rasterio.open(direct / "prediction.tif") as f, rasterio.open(from_file / "prediction.tif") as g:
        assert (f.read(1) == g.read(1)).mean() > 0.99 and g.crs == f.crs and g.transform == f.transform


def test_pixels_without_a_clear_observation_get_the_series_mean(stored, site, tmp_path, capsys):
    import shutil

    import zarr

    from alise.data import open_sources
    from alise.downstream.features import StoredEmbedding

    emb = tmp_path / "holes.zarr"
    shutil.copytree(stored["zarr"], emb)
    arr = zarr.open_group(emb, mode="r+", zarr_format=2)["embedding"]
    arr[:, :, :3, :5] = np.nan  # 15 pixels never clear
    table = StoredEmbedding([emb], open_sources([site]))
    feats = table.get(0)
    assert table.n_filled == {0: 15} and np.isfinite(feats).all()
    clear = np.ones(feats.shape[1:], bool)
    clear[:3, :5] = False
    np.testing.assert_allclose(feats[:, ~clear], np.repeat(feats[:, clear].mean(1, keepdims=True), 15, 1), rtol=1e-5)
    assert main(["probe", str(site), "--embedding", str(emb), "--out", str(tmp_path / "p"), *PROBE]) == 0
    assert "15 pixel(s) without a clear observation" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["{model}", "{site}", "--embedding", "{emb}"], "--embedding gives the features: pass the labelled DATA only"),
    (["{site}", "--embedding", "{emb}", "--mode", "ft"], "--mode ft trains the encoder"),
    (["{site}", "--embedding", "{emb}", "--random-init"], "--random-init needs the model"),
    (["{site}", "--embedding", "{emb}", "{emb}"], "2 embedding(s) for 1 series"),
    (["{site}", "--embedding", "{other}"], "is not on the grid of"),
    (["{site}", "--embedding", "{site}/labels.tif"], "not an embedding written by alise encode"),
])
def test_wrong_stored_inputs_are_one_line_errors(args, message, tiny_model_dir, site, stored, tmp_path, capsys):
    other = stored["other"]
    given = [a.format(model=tiny_model_dir, site=site, emb=stored["tif"], other=other) for a in args]
    assert main(["probe", *given, "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("alise probe: error:") and message in err and "\n" not in err, err
    assert not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def probed(tiny_model_dir, site, tmp_path_factory):
    out = tmp_path_factory.mktemp("probed") / "probe"
    assert main(["probe", str(tiny_model_dir), str(site), "--out", str(out), *PROBE]) == 0
    return out


def test_classify_maps_an_embedding_as_the_probe_predicted_it(probed, stored, site, tmp_path, capsys):
    from alise.downstream.classify import classify_raster, load_head
    from alise.encode.readers import open_embedding

    out = tmp_path / "classes.tif"
    assert main(["classify", str(stored["tif"]), "--head", str(probed), "--out", str(out), "--no-progress"]) == 0
    assert "wrote" in capsys.readouterr().out
    with rasterio.open(out) as f, rasterio.open(probed / "prediction.tif") as p, rasterio.open(site / "labels.tif") as lab:
        classes, predicted = f.read(1), p.read(1)
        assert f.crs == lab.crs and f.transform == lab.transform and f.nodata == 255 and f.dtypes[0] == "uint8"
        assert f.tags()["classes"] == p.tags()["classes"]
    np.testing.assert_array_equal(classes, predicted)
    head, _ = load_head(probed / "head.safetensors")
    blocked = tmp_path / "blocked.tif"
    info = classify_raster(open_embedding(stored["tif"]), head, blocked, block=8, progress=False)  # 4 × 4 blocks
    with rasterio.open(blocked) as f:
        np.testing.assert_array_equal(f.read(1), classes)
    assert sum(info["counts"]) == classes.size and info["nodata"] == 0


def test_classify_leaves_pixels_without_a_clear_observation_as_nodata(probed, stored, tmp_path):
    import shutil

    import zarr

    emb = tmp_path / "holes.zarr"
    shutil.copytree(stored["zarr"], emb)
    zarr.open_group(emb, mode="r+", zarr_format=2)["embedding"][:, :, :3, :5] = np.nan
    out = tmp_path / "classes.tif"
    assert main(["classify", str(emb), "--head", str(probed), "--out", str(out), "--no-progress"]) == 0
    with rasterio.open(out) as f, rasterio.open(probed / "prediction.tif") as p:
        classes, predicted = f.read(1), p.read(1)
    assert (classes[:3, :5] == 255).all()
    keep = np.ones(classes.shape, bool)
    keep[:3, :5] = False
    np.testing.assert_array_equal(classes[keep], predicted[keep])


@pytest.mark.parametrize("args, message", [
    (["{emb}", "--head", "{tmp}/nothing"], "no such file"),
    (["{emb}", "--head", "{labels}"], "not a safetensors file"),
    (["{emb}", "--head", "{small}"], "the head takes 5 features but the embedding has"),
    (["{emb}", "--head", "{probe}", "--out", "{tmp}/a.png"], "a class map is a GeoTIFF"),
    (["{emb}", "--head", "{probe}", "--out", "{emb}"], "already exists"),
    (["{labels}", "--head", "{probe}"], "not an embedding written by alise encode"),
])
def test_wrong_classify_inputs_are_one_line_errors(args, message, probed, stored, site, tmp_path, capsys):
    from alise.commands.probe import _save_head
    from alise.downstream.heads import LinearProbe
    from alise.downstream.probe import LabelSpace

    small = tmp_path / "small.safetensors"
    _save_head(LinearProbe(1, 5, 3), small, LabelSpace(3, (0,), ["a", "b", "c"]), {"name": "x", "sha256": None})
    fmt = dict(emb=stored["tif"], tmp=tmp_path, labels=site / "labels.tif", small=small, probe=probed)
    given = [a.format(**fmt) for a in args]
    if "--out" not in given:
        given += ["--out", str(tmp_path / "o.tif")]
    before = sorted(tmp_path.iterdir())
    assert main(["classify", *given, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("alise classify: error:") and message in err and "\n" not in err, err
    assert sorted(tmp_path.iterdir()) == before
