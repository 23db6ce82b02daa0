"""Fixtures for the data-layer tests: small copies of the real folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import rasterio
import numpy as np

from tests.fakes import write_tif  # noqa: F401  (the tests of this folder import it from here)

#: The five clearest dates of worldcereal-flanders-2018 (dates.csv, clear fraction ≥ 0.994).
CLEAR5 = ("2018-06-28", "2018-06-30", "2018-07-05", "2018-07-08", "2018-07-23")
BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")




def read_tif(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


@pytest.fixture
def copy_site(flanders, tmp_path):
    """``copy_site(name, dates=CLEAR5)`` → a copy of a few real dates of the shipped folder (s2, scl,
    labels, classes); generated sites are :func:`tests.fakes.make_site`."""

    def make(name: str = "site", dates=CLEAR5, labels: bool = True) -> Path:
        dest = tmp_path / name
        for sub in ("s2", "scl"):
            (dest / sub).mkdir(parents=True)
            for d in dates:
                shutil.copy(flanders / sub / f"{d}.tif", dest / sub / f"{d}.tif")
        if labels:
            shutil.copy(flanders / "labels.tif", dest / "labels.tif")
            shutil.copy(flanders / "classes.csv", dest / "classes.csv")
        return dest

    return make


@pytest.fixture
def rewrite():
    """``rewrite(site, date, fn, new_name=None, **profile)``: replace s2/DATE.tif by ``fn(data)``."""

    def run(site: Path, date: str, fn, new_name: str | None = None, **profile) -> Path:
        src = site / "s2" / f"{date}.tif"
        with rasterio.open(src) as f:
            data, desc = f.read(), f.descriptions
        out = fn(data)
        profile.setdefault("descriptions", desc if out.shape[0] == 10 else None)
        profile.setdefault("nodata", 0)
        tmp = site / f".{date}.tmp.tif"
        write_tif(tmp, out, like=src, **profile)
        src.unlink()
        dest = site / "s2" / (new_name or f"{date}.tif")
        tmp.rename(dest)
        if new_name:  # keep the mask beside its image
            (site / "scl" / f"{date}.tif").rename(site / "scl" / new_name)
        return dest

    return run
