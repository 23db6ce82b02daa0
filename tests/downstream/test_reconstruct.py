"""Decoder gap-filling: outputs in the input layout and grid; bad dates are a user error."""

from __future__ import annotations

import datetime as dt

import numpy as np
import rasterio

from alise.cli import main
from alise.data import open_source
from alise.downstream.features import SITSStore
from alise.downstream.reconstruct import heldout_comparison
from alise.model.io import load


def test_reconstruct_cli_writes_uint16_on_input_grid(tiny_model_dir, site, tmp_path):
    out = tmp_path / "rec"
    assert main(["reconstruct", str(tiny_model_dir), str(site), "--dates", "2018-05-01,20180620",
                 "--out", str(out)]) == 0
    files = sorted(p.name for p in (out / "s2").iterdir())
    assert files == ["2018-05-01.tif", "2018-06-20.tif"]
    with rasterio.open(out / "s2" / files[0]) as dst, rasterio.open(site / "labels.tif") as ref:
        assert dst.count == 10 and dst.dtypes[0] == "uint16"
        assert dst.crs == ref.crs and dst.transform == ref.transform and dst.shape == ref.shape
        assert dst.read().min() >= 1
    # The written folder is itself a readable series.
    assert open_source(out).n_dates == 2


def test_reconstruct_bad_dates_exit_2(tiny_model_dir, site, tmp_path, capsys):
    assert main(["reconstruct", str(tiny_model_dir), str(site), "--dates", "2018-13-45", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot parse date" in err[0]
    assert not (tmp_path / "r").exists()


def test_heldout_comparison_reports_both_methods(tiny_model_dir, site):
    model = load(tiny_model_dir)
    sits = SITSStore([open_source(site, end="2018-12-31")], model.norm).read(0)
    res = heldout_comparison(model, sits, [2])
    assert res["n_pixels"] > 0
    for name in ("alise", "gf"):
        assert np.isfinite(res[name]["rmse_dn"]) and res[name]["rmse_dn"] >= 0


def test_reconstruct_warns_outside_the_series_and_refuses_far_outside(tiny_model_dir, site, tmp_path, capsys):
    src = open_source(site)
    first, last = src.dates[0], src.dates[-1]
    near = last + dt.timedelta(days=30)
    out = tmp_path / "near"
    assert main(["reconstruct", str(tiny_model_dir), str(site), "--dates", near.isoformat(), "--out", str(out),
                 "--min-clear", "0"]) == 0
    err = capsys.readouterr().err
    assert f"{near} is 30 days outside" in err and "extrapolated" in err
    far = first.replace(year=first.year - 2)
    assert main(["reconstruct", str(tiny_model_dir), str(site), "--dates", far.isoformat(), "--out",
                 str(tmp_path / "far"), "--min-clear", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "more than 366 days outside" in err[0] and far.isoformat() in err[0]
    assert not (tmp_path / "far").exists()
