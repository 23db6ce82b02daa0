"""Segmentation probes: LP / FT / FS end to end, metrics consistent with their own predictions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import torch

from alise.cli import main
from alise.commands.probe import build_runs
from alise.data import open_source, open_sources
from alise.downstream.features import FeatureCache, SITSStore
from alise.downstream.probe import LabelSpace, Probe, ProbeConfig, alise_parts
from alise.errors import AliseError
from alise.metrics import segmentation_metrics
from alise.model.io import load
from alise.splits import spatial_block_split

FAST = ["--epochs", "2", "--min-steps-per-epoch", "2", "--lr", "1e-2", "--crop", "32", "--repeats", "1"]


def test_probe_macro_f1_equals_metrics_of_its_predictions(tiny_model_dir, site):
    model = load(tiny_model_dir)
    sources = [open_source(site)]
    labels = LabelSpace.from_sources(sources, [sources[0].labels()])
    assert labels.num_classes == 3 and labels.ignore == (0,)
    store = SITSStore(sources, model.norm)
    cache = FeatureCache(model, store)
    (run,) = build_runs(sources, "blocks", block=8)
    probe = Probe(sources, labels, ProbeConfig(mode="lp"), alise_parts(model, "lp", labels.num_classes, store, cache))
    res = probe.fit(run, progress=False)
    truth = np.concatenate([t.ravel() for _, _, t in res.predictions])
    pred = np.concatenate([p.ravel() for _, p, _ in res.predictions])
    ref = segmentation_metrics(truth, pred, 3, ignore=(0,))
    assert res.metrics["macro_f1"] == pytest.approx(ref["macro_f1"])
    assert res.trainable_parameters == 4 * 16 * 3 + 3
    # LP encodes each source exactly once, whatever the number of fits and evaluations.
    assert cache.n_encoded == 1
    # The default solver on a small table is L-BFGS, and it converges.
    assert res.fit.solver == "lbfgs" and res.fit.stopped == "converged" and res.fit.C in ProbeConfig().Cs
    # Only test pixels are evaluated.
    test_mask = run.test[0].mask
    assert res.metrics["n_pixels"] == int(((sources[0].labels() > 0) & test_mask).sum())


def test_lp_leaves_the_encoder_untouched_and_ft_changes_a_copy(tiny_model_dir, site):
    model = load(tiny_model_dir)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    sources = [open_source(site, end="2018-12-31")]
    labels = LabelSpace.from_sources(sources)
    store = SITSStore(sources, model.norm)
    (run,) = build_runs(sources, "blocks", block=8)
    for mode in ("lp", "ft"):
        cfg = ProbeConfig(mode=mode, epochs=1, min_steps_per_epoch=2, lr=1e-2)
        parts = alise_parts(model, mode, labels.num_classes, store)
        Probe(sources, labels, cfg, parts).fit(run, progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    encoder = parts.network.encoder
    moved = [k for k, v in encoder.state_dict().items() if v.is_floating_point() and not torch.equal(before[k], v)]
    assert any(k.startswith("unet.") for k in moved) and any(k.startswith("projector.") for k in moved)


def test_label_space_rejects_unknown_label(site):
    src = open_source(site)
    labels = LabelSpace.from_sources([src])
    with pytest.raises(AliseError, match="not a known class"):
        labels.targets(np.array([[1, 7]]))


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["lp", "ft", "fs"])
def test_probe_cli_on_synthetic_site(tiny_model_dir, site, tmp_path, mode):
    out = tmp_path / mode
    assert main(["probe", str(tiny_model_dir), str(site), "--mode", mode, "--block", "8", *FAST, "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["mode"] == mode and 0.0 <= m["macro_f1"] <= 1.0
    assert m["model_id"] and len(m["model_id"]) == 64
    assert m["runs"][0]["split"]["method"] == "spatial_block"
    assert (out / "confusion.png").stat().st_size > 0
    # The class map keeps the input grid, and the reported macro-F1 is that of the map on test blocks.
    with rasterio.open(out / "prediction.tif") as dst, rasterio.open(site / "labels.tif") as ref:
        assert dst.crs == ref.crs and dst.transform == ref.transform
        pred, truth = dst.read(1).astype(np.int64), ref.read(1).astype(np.int64)
    test = spatial_block_split(32, 32, 8, (0.6, 0.2, 0.2), 0) == 2
    ref_f1 = segmentation_metrics(np.where(test, truth, -1), pred, 3, ignore=(0,))["macro_f1"]
    assert m["macro_f1"] == pytest.approx(ref_f1)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["lp", "ft", "fs"])
def test_probe_cli_on_real_flanders(tiny_model_dir, flanders, tmp_path, mode, capsys):
    out = tmp_path / mode
    args = ["probe", str(tiny_model_dir), str(flanders), "--mode", mode, "--start", "2018-05-01",
            "--end", "2018-06-15", "--epochs", "1", "--min-steps-per-epoch", "2", "--repeats", "1", "--out", str(out)]
    assert main(args) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["num_classes"] == 10 and m["class_names"][2] == "maize"
    assert m["runs"][0]["n_pixels"] > 0
    err = capsys.readouterr().err
    # end to end, the cost of the run is announced after its first step (1 epoch of 2 steps)
    assert ("s a step; this run stops after 2 steps" in err) == (mode != "lp")


def test_scarcity_runs_draw_subsets_of_training_series(tmp_path, make_site_fn):
    for k in range(3):
        make_site_fn(tmp_path / f"site_{k}", size=16, dates_per_year=2, seed=k)
    sources = open_sources(tmp_path)
    runs = build_runs(sources, "blocks", block=8, scarcity=2, subsets=3)
    assert len(runs) == 3
    assert all(len({it.source for it in r.train}) == 2 for r in runs)
    assert all(len(r.test) == 3 for r in runs)


@pytest.mark.parametrize("extra,msg", [
    (["--mode", "xx"], "unknown probe mode"),
    (["--epochs", "0"], "--epochs"),
    (["--split", "weird"], "unknown --split"),
])
def test_probe_bad_arguments_exit_2(tiny_model_dir, site, tmp_path, capsys, extra, msg):
    assert main(["probe", str(tiny_model_dir), str(site), "--out", str(tmp_path / "o"), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and msg in err[0]
    assert not (tmp_path / "o").exists()


def test_probe_missing_model_or_labels_exit_2(tiny_model_dir, site, tmp_path, capsys):
    assert main(["probe", str(tmp_path / "nomodel"), str(site), "--out", str(tmp_path / "o")]) == 2
    unlabelled = tmp_path / "unlabelled"
    (unlabelled / "s2").mkdir(parents=True)
    for f in sorted((site / "s2").iterdir())[:2]:
        (unlabelled / "s2" / f.name).write_bytes(f.read_bytes())
    assert main(["probe", str(tiny_model_dir), str(unlabelled), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "does not exist" in err[0] and "no labels" in err[1]
