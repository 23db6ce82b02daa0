"""Change detection: Eq. 12, GF baseline, RotCrop truth, CLI outputs keep the input grid."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import torch

from alise.cli import main
from alise.data.change_truth import change_truth_from_labels
from alise.downstream.change import embedding_distance, evaluate_change


def test_eq12_is_mean_square_over_queries_and_channels():
    torch.manual_seed(0)
    y1, y2 = torch.randn(3, 5, 4, 4), torch.randn(3, 5, 4, 4)
    slow = torch.zeros(4, 4)
    for i in range(4):
        for j in range(4):
            slow[i, j] = sum(float((y1[n, c, i, j] - y2[n, c, i, j]) ** 2) for n in range(3) for c in range(5)) / 15
    assert torch.allclose(embedding_distance(y1, y2), slow, atol=1e-5)
    assert torch.allclose(embedding_distance(y1.reshape(15, 4, 4), y2.reshape(15, 4, 4)), slow, atol=1e-5)


def test_truth_from_labels_excludes_background_in_either_year():
    a = np.array([[0, 5, 6], [10, 10, 13]])
    b = np.array([[6, 5, 0], [6, 10, 13]])
    assert change_truth_from_labels(a, b).tolist() == [[255, 0, 255], [1, 0, 0]]


def test_evaluate_change_perfect_score_gives_auc_1():
    truth = np.array([[1, 0, 255], [0, 1, 0]], np.uint8)
    score = np.array([[0.9, 0.1, 5.0], [0.2, 0.8, 0.0]], np.float32)
    assert evaluate_change(score, truth)["auc"] == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("method", ["alise", "gf"])
def test_change_cli_gives_auc_and_keeps_grid(tiny_model_dir, site, tmp_path, method):
    out = tmp_path / method / "change.tif"
    assert main(["change", str(tiny_model_dir), str(site), "--years", "2018,2019", "--method", method,
                 "--out", str(out)]) == 0
    with rasterio.open(out) as dst, rasterio.open(site / "labels.tif") as ref:
        assert dst.crs == ref.crs and dst.transform == ref.transform and dst.dtypes[0] == "float32"
        score = dst.read(1)
    m = json.loads((out.parent / "change.metrics.json").read_text())
    assert 0.0 <= m["auc"] <= 1.0 and m["n_change"] > 0 and m["n_no_change"] > 0
    assert (out.parent / "change.roc.png").stat().st_size > 0
    if method == "gf":  # the rotated crop has a different phenology: the baseline must see it
        assert m["auc"] > 0.9
    assert np.isfinite(score[:, 4:]).all()


def test_change_bad_inputs_exit_2_with_one_line(tiny_model_dir, site, tmp_path, capsys):
    assert main(["change", str(tiny_model_dir), str(site), "--years", "2018", "--out", str(tmp_path / "x.tif")]) == 2
    assert main(["change", str(tiny_model_dir), str(site), "--method", "nope", "--out", str(tmp_path / "x.tif")]) == 2
    assert main(["change", str(tmp_path / "missing"), str(site), "--years", "2018,2019",
                 "--out", str(tmp_path / "x.tif")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("alise change: error:") for line in err)
    assert not (tmp_path / "x.tif").exists()
