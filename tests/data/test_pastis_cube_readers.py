"""PASTIS and xarray/zarr readers on tiny fixtures written in the exact layouts."""

from __future__ import annotations

import datetime as dt
import json
import warnings

import numpy as np
import pytest

from alise.data import CubeSource, PastisSource, open_source, open_sources
from alise.errors import AliseError
from alise.normalise import S2_BANDS, NormStats


def _pastis(root, ids=(10000, 10001), t=4, size=16):
    """PASTIS layout: DATA_S2, ANNOTATIONS, metadata.geojson with dates listed out of order."""
    rng = np.random.default_rng(1)
    (root / "DATA_S2").mkdir(parents=True)
    (root / "ANNOTATIONS").mkdir()
    feats, arrays = [], {}
    for k, pid in enumerate(ids):
        x = rng.integers(50, 4000, (t, 10, size, size)).astype(np.int16)
        y = rng.integers(0, 20, (3, size, size)).astype(np.uint8)
        np.save(root / "DATA_S2" / f"S2_{pid}.npy", x)
        np.save(root / "ANNOTATIONS" / f"TARGET_{pid}.npy", y)
        dates = {str(i): int(f"2019{i + 3:02d}1{k}") for i in range(t)}
        dates = {"0": dates["2"], "1": dates["0"], "2": dates["1"], **{str(i): dates[str(i)] for i in range(3, t)}}
        x0, y0 = 600000 + 1280 * k, 6800000
        geom = {"type": "Polygon", "coordinates": [[[x0, y0], [x0 + 10 * size, y0], [x0 + 10 * size, y0 + 10 * size],
                                                    [x0, y0 + 10 * size], [x0, y0]]]}
        feats.append({"type": "Feature", "geometry": geom,
                      "properties": {"ID_PATCH": pid, "Fold": k + 1, "dates-S2": dates}})
        arrays[pid] = (x, y, dates)
    gj = {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::2154"}},
          "features": feats}
    (root / "metadata.geojson").write_text(json.dumps(gj))
    return arrays


def test_pastis_patches_sorted_windowed_and_labelled(tmp_path):
    arrays = _pastis(tmp_path / "PASTIS")
    sources = open_sources(tmp_path / "PASTIS")
    assert [s.name for s in sources] == ["S2_10000", "S2_10001"] and [s.fold for s in sources] == [1, 2]
    src = sources[0]
    x, y, dates = arrays[10000]
    order = np.argsort([dates[str(i)] for i in range(len(dates))])  # metadata lists dates out of order
    assert [d.strftime("%Y%m%d") for d in src.dates] == sorted(str(v) for v in dates.values())
    raw = src.read((2, 3, 8, 5), dates=slice(1, 3))
    np.testing.assert_array_equal(raw.dn, x[order[1:3], :, 2:10, 3:8].astype(np.float32))
    assert raw.valid.all()  # no cloud mask in PASTIS
    np.testing.assert_array_equal(raw.labels, y[0, 2:10, 3:8])
    sits = raw.to_sits(NormStats.paper())
    lab = y[0, 2:10, 3:8]
    assert (sits.labels[torch_bool(np.isin(lab, [0, 19]))] == -100).all()
    assert src.grid.crs.to_epsg() == 2154 and src.grid.resolution == (10.0, 10.0)
    assert src.grid.transform.c == 600000 and src.grid.transform.f == 6800000 + 160
    assert src.ignore_labels == (0, 19) and src.class_names[3] == "Corn"
    one = open_source(tmp_path / "PASTIS" / "DATA_S2" / "S2_10001.npy")
    assert isinstance(one, PastisSource) and one.name == "S2_10001"
    assert [s.name for s in open_sources(tmp_path / "PASTIS", folds=(2,))] == ["S2_10001"]


def torch_bool(a):
    import torch

    return torch.from_numpy(a)


def test_pastis_date_count_mismatch_is_an_error(tmp_path):
    _pastis(tmp_path / "P")
    np.save(tmp_path / "P" / "DATA_S2" / "S2_10000.npy", np.ones((3, 10, 16, 16), np.int16))
    with pytest.raises(AliseError, match="lists 4 dates-S2 but S2_10000.npy holds 3"):
        open_sources(tmp_path / "P")


def _cube(path, shuffle=True, offset_attr=None, unit=False):
    import pandas as pd
    import rioxarray  # noqa: F401  (registers .rio)
    import xarray as xr

    rng = np.random.default_rng(2)
    t, h, w = 5, 12, 10
    dn = rng.integers(100, 3000, (t, 10, h, w)).astype(np.uint16)
    bands = list(S2_BANDS)
    perm = np.arange(10)[::-1] if shuffle else np.arange(10)
    times = pd.to_datetime(["2020-05-09", "2020-05-01", "2020-05-04", "2020-05-20", "2020-06-01"])
    valid = rng.random((t, h, w)) > 0.3
    data = dn[:, perm] / 10000 if unit else dn[:, perm] + (0 if offset_attr is None else np.uint16(-offset_attr))
    ds = xr.Dataset(
        {"s2": (("time", "band", "y", "x"), data), "valid": (("time", "y", "x"), valid),
         "labels": (("y", "x"), rng.integers(0, 4, (h, w)).astype(np.int16))},
        coords={"time": times, "band": [bands[i] for i in perm], "y": 5629680 - 5 - 10 * np.arange(h),
                "x": 501360 + 5 + 10 * np.arange(w)})
    if offset_attr is not None:
        ds["s2"].attrs["BOA_ADD_OFFSET"] = offset_attr
    ds = ds.rio.write_crs("EPSG:32631")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(path, mode="w")
    return dn, valid, np.argsort(times.values), ds["labels"].values


def test_zarr_cube_reorders_bands_and_dates(tmp_path):
    dn, valid, order, labels = _cube(tmp_path / "cube.zarr")
    src = open_source(tmp_path / "cube.zarr")
    assert isinstance(src, CubeSource) and src.dates[0] == dt.date(2020, 5, 1)
    assert src.grid.crs.to_epsg() == 32631 and src.grid.transform.c == 501360 and src.grid.transform.f == 5629680
    raw = src.read((1, 2, 6, 4), dates=[0, 2])
    np.testing.assert_array_equal(raw.dn, dn[order[[0, 2]], :, 1:7, 2:6].astype(np.float32))
    np.testing.assert_array_equal(raw.valid, valid[order[[0, 2]], 1:7, 2:6])
    np.testing.assert_array_equal(raw.labels, labels[1:7, 2:6])


def test_cube_offset_attribute_and_unit_reflectance(tmp_path):
    dn, _, order, _ = _cube(tmp_path / "a.zarr", shuffle=False, offset_attr=-1000)  # stored DN + 1000
    src = open_source(tmp_path / "a.zarr")
    assert src.offsets().tolist() == [1000] * 5 and src.offset_decisions()[0].how == "tag"
    np.testing.assert_array_equal(src.read().dn, dn[order].astype(np.float32))
    _cube(tmp_path / "b.zarr", unit=True)
    with pytest.raises(AliseError, match="reflectance in 0–1"):
        open_source(tmp_path / "b.zarr").read()


@pytest.mark.parametrize("suffix", ["zarr", "nc"])
def test_cube_is_read_by_a_fresh_process(tmp_path, suffix):
    """`alise check` on a cube in a new interpreter: nothing the test imported can hide a missing import."""
    import subprocess
    import sys

    if suffix == "zarr":
        _cube(tmp_path / "cube.zarr")
    else:  # the same cube as netCDF
        import xarray as xr

        _cube(tmp_path / "tmp.zarr")
        with xr.open_zarr(tmp_path / "tmp.zarr") as ds:
            ds.load().to_netcdf(tmp_path / "cube.nc")
    proc = subprocess.run([sys.executable, "-c", "import sys; from alise.cli import main; sys.exit(main(sys.argv[1:]))",
                           "check", str(tmp_path / f"cube.{suffix}"), "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-1500:]
    assert "Traceback" not in proc.stderr and "32631" in proc.stdout
