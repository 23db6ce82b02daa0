"""Fixtures of the downstream tests: a tiny model and small generated site folders."""

from __future__ import annotations

import functools

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from tests import fakes
from rasterio.crs import CRS

TINY = fakes.tiny_config(proj_d_k=4)
CRS_UTM = CRS.from_epsg(32631)
TRANSFORM = Affine(10.0, 0.0, 501360.0, 0.0, -10.0, 5629680.0)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    import torch

    from alise.model.network import ALISE

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("model") / "tiny"
    ALISE(TINY).save(d)
    return d


#: ``write_tif(path, data)`` on the sites' grid (:func:`tests.fakes.write_tif`).
write_tif = functools.partial(fakes.write_tif, transform=TRANSFORM, crs=CRS_UTM)


def make_site(root: Path, years=(2018, 2019), size: int = 32, dates_per_year: int = 6, seed: int = 0) -> Path:
    """A site folder: s2/ per date, labels/YYYY.tif, labels.tif, classes.csv, change/Y1_Y2.tif.

    Two crops with distinct phenologies; the right half of the left field rotates crop in year 2
    (the changed pixels); column 0..3 is background (label 0).
    """
    rng = np.random.default_rng(seed)
    labels = {}
    lab1 = np.ones((size, size), np.uint8)
    lab1[:, size // 2:] = 2
    lab1[:, :4] = 0
    lab2 = lab1.copy()
    lab2[: size // 2, 4:size // 2] = 2  # rotation: crop 1 → crop 2 in the top-left quarter
    labels[years[0]], labels[years[1]] = lab1, lab2
    base = np.array([400, 700, 600, 1100, 2300, 2700, 2900, 3000, 2000, 1100], np.float32)
    for y in years:
        lab = labels[y]
        for k in range(dates_per_year):
            d = dt.date(y, 3, 1) + dt.timedelta(days=30 * k + int(rng.integers(0, 5)))
            phase = k / max(dates_per_year - 1, 1)
            g1, g2 = np.sin(np.pi * phase), np.cos(np.pi * phase) ** 2  # crop 1 peaks mid-season, crop 2 early/late
            img = np.empty((10, size, size), np.float32)
            for b in range(10):
                nir = b >= 4
                v1 = base[b] * (1 + (0.8 if nir else -0.4) * g1)
                v2 = base[b] * (1 + (0.8 if nir else -0.4) * g2)
                img[b] = np.where(lab == 2, v2, np.where(lab == 1, v1, base[b] * 1.3))
            img += rng.normal(0, 30, img.shape)
            write_tif(root / "s2" / f"{d.isoformat()}.tif", np.clip(img, 1, 10000).astype(np.uint16))
        write_tif(root / "labels" / f"{y}.tif", lab)
    write_tif(root / "labels.tif", labels[years[0]])
    (root / "classes.csv").write_text("id,name\n0,background\n1,crop_a\n2,crop_b\n")
    change = (labels[years[0]] != labels[years[1]]).astype(np.uint8)
    change[(labels[years[0]] == 0) | (labels[years[1]] == 0)] = 255
    write_tif(root / "change" / f"{years[0]}_{years[1]}.tif", change)
    return root


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    return make_site(tmp_path_factory.mktemp("sites") / "site_000")


@pytest.fixture(scope="session")
def make_site_fn():
    """:func:`make_site` for tests that need several sites."""
    return make_site


@pytest.fixture(scope="session")
def write_tif_fn():
    """:func:`write_tif` for tests that write their own layouts."""
    return write_tif
