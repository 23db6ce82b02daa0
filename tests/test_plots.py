"""Plots: valid PNG files of plausible size, atomic writes, image helpers' shape / dtype / range."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import torch

from alise.errors import AliseError
from alise.plots import (
    pca_rgb,
    plot_confusion,
    plot_image_grid,
    plot_loss_curves,
    plot_roc,
    plot_timeline,
    rgb_thumbnail,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path, min_bytes=5_000):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert min_bytes < len(data) < 5_000_000
    assert not list(path.parent.glob(f".{path.name}.*"))  # no temporary left behind


def test_plot_confusion_and_roc(tmp_path):
    cm = np.array([[0, 0, 0], [3, 40, 2], [0, 5, 30]])
    p = plot_confusion(cm, ["background", "wheat", "corn"], tmp_path / "cm.png")
    _is_png(p)
    _is_png(plot_confusion(cm, ["background", "wheat", "corn"], tmp_path / "cm_counts.png", normalize=False, hide_empty=False))
    curves = {"ALISE": ([0, 0.1, 1], [0, 0.8, 1], 0.91), "GF": (np.array([0, 0.3, 1]), np.array([0, 0.7, 1]), 0.88)}
    _is_png(plot_roc(curves, tmp_path / "roc.png"))
    with pytest.raises(AliseError):
        plot_confusion(cm, ["a"], tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_plot_loss_curves_from_lightning_csv_and_dict(tmp_path):
    csv = tmp_path / "metrics.csv"
    lines = ["epoch,lr-Adam,step,train/cov,train/inv,train/loss,train/rec,val/loss"]
    for s in range(0, 200, 10):
        lines.append(f"{s // 50},{1e-3 * 0.9 ** (s / 10)},{s},{0.1},{1 / (s + 1)},{2 / (s + 1) + 0.1},{1 / (s + 1)},")
        if s % 50 == 40:
            lines.append(f"{s // 50},,{s},,,,,{1.5 / (s + 1)}")
    csv.write_text("\n".join(lines) + "\n")
    _is_png(plot_loss_curves(csv, tmp_path / "loss.png"))
    _is_png(plot_loss_curves({"train/loss": (np.arange(5), np.array([5.0, 3, 2, 1.5, 1.2]))}, tmp_path / "loss2.png"))
    with pytest.raises(AliseError, match="not found"):
        plot_loss_curves(tmp_path / "missing.csv", tmp_path / "x.png")


def test_rgb_thumbnail_uses_true_colour_bands():
    dn = np.zeros((10, 8, 8))
    dn[2] = 3000.0  # B04 bright, B03 / B02 dark → red image
    dn[2, 0, 0] = np.nan
    img = rgb_thumbnail(torch.tensor(dn))
    assert img.shape == (8, 8, 3) and img.dtype == np.uint8
    assert img[1:, :, 0].min() > img[1:, :, 1].max() and (img[1:, :, 1] == img[1:, :, 2]).all()
    assert img[0, 0].tolist() == [0, 0, 0]
    with pytest.raises(AliseError, match="B04"):
        rgb_thumbnail(np.zeros((3, 4, 4)), bands=("B08", "B11", "B12"))


def test_pca_rgb_shapes_range_and_structure():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(10, 64, 12, 12)) * 0.1
    emb[:, :, :6, :] += 2.0  # top half differs strongly → first component separates halves
    img = pca_rgb(emb)
    assert img.shape == (12, 12, 3) and img.dtype == np.uint8
    assert img.max() > 200 and img.min() < 50
    top, bottom = img[:6, :, 0].astype(int).mean(), img[6:, :, 0].astype(int).mean()
    assert abs(top - bottom) > 150
    assert np.array_equal(img, pca_rgb(emb))  # deterministic signs
    two = pca_rgb(rng.normal(size=(2, 5, 5)))  # fewer features than colours
    assert two.shape == (5, 5, 3) and (two[..., 2] == two[0, 0, 2]).all()


def test_plot_timeline_and_image_grid(tmp_path):
    series = {
        "site A 2019": ([dt.date(2019, 1, 5), dt.date(2019, 3, 1), dt.date(2019, 7, 9)], [0.1, 0.9, 1.0]),
        "site B 2019": (np.array([1800.0, 1850.0]), np.array([0.5, 0.0])),  # days since 2014-03-03
        "site C": (["2019-02-02", "2019-05-05"], [1.0, 1.0]),
    }
    _is_png(plot_timeline(series, tmp_path / "timeline.png"))
    rng = np.random.default_rng(0)
    imgs = [(f"2019-0{i + 1}-01", rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)) for i in range(4)]
    imgs.append(("distance", rng.random((16, 16))))
    _is_png(plot_image_grid(imgs, tmp_path / "grid.png", ncols=3, title="Series"))
    with pytest.raises(AliseError, match="must be"):
        plot_image_grid([("bad", np.zeros((2, 2, 2, 2)))], tmp_path / "bad.png")


def test_rgb_thumbnail_fixed_limits():
    dn = np.full((10, 2, 2), 1500.0)
    dn[:, 0, 0] = 6000.0
    img = rgb_thumbnail(dn, limits=(0, 3000))
    assert img[0, 0].tolist() == [255, 255, 255] and img[1, 1].tolist() == [128, 128, 128]
    with pytest.raises(AliseError, match="limits"):
        rgb_thumbnail(dn, limits=(3000, 0))
