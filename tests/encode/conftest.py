"""Fixtures of the encode tests: a small site folder written on the fly and tiny models."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import torch
from rasterio.transform import from_origin

from alise.model.network import ALISE
from tests.fakes import tiny_config, write_tif

DATES = [dt.date(2018, 3, 2), dt.date(2018, 4, 11), dt.date(2018, 5, 21), dt.date(2018, 7, 5), dt.date(2018, 9, 18)]
TRANSFORM = from_origin(500000.0, 5650000.0, 10.0, 10.0)
CRS = "EPSG:32631"


def write_site(root: Path, height: int, width: int, dates=DATES, seed: int = 0) -> Path:
    """A folder-layout site: ``s2/DATE.tif`` (10 bands uint16 DN) and ``scl/DATE.tif``.

    Fields are smooth patterns plus noise; SCL has a moving cloud (class 9) and a 6×6 block in the
    top-left corner that is cloudy on every date (so it must come out as NaN).
    """
    rng = np.random.default_rng(seed)
    (root / "s2").mkdir(parents=True)
    (root / "scl").mkdir()
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for k, d in enumerate(dates):
        bands = []
        for c in range(10):
            base = 800 + 250 * c + 600 * np.sin(xx / (7 + c) + k) * np.cos(yy / (11 - 0.5 * c) - k)
            bands.append(base + rng.normal(0, 80, (height, width)))
        dn = np.clip(np.stack(bands), 1, 10000).astype(np.uint16)
        scl = np.full((height, width), 4, np.uint8)
        scl[(yy - 12 * k) ** 2 + (xx - 15 * k) ** 2 < 150] = 9
        scl[:6, :6] = 8
        write_tif(root / "s2" / f"{d}.tif", dn, crs=CRS, transform=TRANSFORM, nodata=0)
        write_tif(root / "scl" / f"{d}.tif", scl, crs=CRS, transform=TRANSFORM)
    return root


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """96 × 96 px, 5 dates."""
    return write_site(tmp_path_factory.mktemp("site") / "site", 96, 96)


@pytest.fixture(scope="session")
def odd_site(tmp_path_factory) -> Path:
    """70 × 90 px (not multiples of 8), 5 dates."""
    return write_site(tmp_path_factory.mktemp("odd") / "odd", 70, 90, seed=1)


TINY = tiny_config(n_layers=3, n_q=2, proj_d_k=4, d_emb=8, d_proj_hidden=8)


def tiny_model(encoder_norm: str = "group", seed: int = 0) -> ALISE:
    torch.manual_seed(seed)
    return ALISE(TINY.replace(encoder_norm=encoder_norm)).eval()


@pytest.fixture
def model() -> ALISE:
    return tiny_model()
