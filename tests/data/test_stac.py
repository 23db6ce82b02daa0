"""STAC ItemCollections read offline: items whose assets are local per-band COGs of real dates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.warp import transform_bounds

from alise.cli import main
from alise.data import open_source
from alise.data.stac import CONVENTIONS
from tests.fakes import write_tif

DATES = ("2018-06-28", "2018-06-30", "2018-07-05", "2018-07-08")
PROJ = "https://stac-extensions.github.io/projection/v1.1.0/schema.json"


def write_items(flanders: Path, root: Path, convention: str, baselines=("02.06", "05.00")) -> Path:
    """One item per date, one COG per band; items of baseline ≥ 04.00 store DN + 1000 (as ESA does)."""
    keys, scl_key = CONVENTIONS[convention]
    feats = []
    for k, d in enumerate(DATES):
        baseline = baselines[k % len(baselines)]
        with rasterio.open(flanders / "s2" / f"{d}.tif") as s:
            x, t, crs, bounds = s.read(), s.transform, s.crs, s.bounds
        with rasterio.open(flanders / "scl" / f"{d}.tif") as s:
            scl = s.read()
        add = 1000 if float(baseline) >= 4 else 0
        proj = {"proj:epsg": 32631, "proj:shape": [x.shape[1], x.shape[2]], "proj:transform": list(t)[:6]}
        assets = {b: {"href": str(write_tif(root / d / f"{b}.tif", x[c:c + 1] + add, crs=crs, transform=t, nodata=0)),
                      "type": "image/tiff; application=geotiff", "roles": ["data"], **proj}
                  for c, b in enumerate(keys)}
        assets[scl_key] = {"href": str(write_tif(root / d / "SCL.tif", scl, crs=crs, transform=t)),
                           "type": "image/tiff; application=geotiff", "roles": ["data"], **proj}
        w, s_, e, n = transform_bounds(crs, "EPSG:4326", *bounds)
        feats.append({"type": "Feature", "stac_version": "1.0.0", "stac_extensions": [PROJ], "id": f"S2_{d}",
                      "bbox": [w, s_, e, n],
                      "geometry": {"type": "Polygon", "coordinates": [[[w, s_], [e, s_], [e, n], [w, n], [w, s_]]]},
                      "properties": {"datetime": f"{d}T10:30:00Z", "proj:epsg": 32631,
                                     "s2:processing_baseline": baseline},
                      "assets": assets, "links": []})
    path = root / "items.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return path


@pytest.mark.parametrize("convention", list(CONVENTIONS))
def test_item_collection_reads_like_the_folder(convention, flanders, tmp_path, capsys):
    items = write_items(flanders, tmp_path / "stac", convention)
    src = open_source(items)
    assert src.layout == "stac" and [d.isoformat() for d in src.dates] == list(DATES)
    np.testing.assert_array_equal(src.offsets(), [0, 1000, 0, 1000])  # from s2:processing_baseline per item
    ref = open_source(flanders, start=DATES[0], end=DATES[-1])
    keep = [ref.dates.index(__import__("datetime").date.fromisoformat(d)) for d in DATES]
    a, b = src.read(), ref.read(dates=keep)
    np.testing.assert_array_equal(np.nan_to_num(a.dn), np.nan_to_num(b.dn))
    np.testing.assert_array_equal(a.valid, b.valid)
    assert src.grid.same_as(ref.grid)
    w = src.read((10, 20, 16, 24), dates=[1, 3])  # a window reads the same pixels (lazy, dask-backed)
    np.testing.assert_array_equal(np.nan_to_num(w.dn), np.nan_to_num(b.dn[[1, 3], :, 10:26, 20:44]))
    assert main(["encode", str(items), "--out", str(tmp_path / "e.tif"), "--no-progress"]) == 0


def test_alise_check_on_items_in_a_fresh_process(flanders, tmp_path):
    items = write_items(flanders, tmp_path / "stac", "blue")
    r = subprocess.run([sys.executable, "-m", "alise.cli", "check", str(items)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "(stac layout)" in r.stdout and "4, 2018-06-28 → 2018-07-08" in r.stdout
    assert "4 dates, per-date tags: 0 DN on 2, 1000 DN on 2" in r.stdout  # mixed baselines said as such


def test_items_without_sentinel2_assets_are_refused_in_one_line(flanders, tmp_path, capsys):
    items = write_items(flanders, tmp_path / "stac", "B02")
    doc = json.loads(items.read_text())
    for f in doc["features"]:
        f["assets"] = {"visual": f["assets"]["B02"]}
    items.write_text(json.dumps(doc))
    assert main(["check", str(items)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "expected Sentinel-2 bands B02…B12 (+ SCL) or blue…swir22 (+ scl)" in err
