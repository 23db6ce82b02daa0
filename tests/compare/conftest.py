"""Fixtures for the comparison tests: tiny synthetic sites written in the folder layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rasterio.transform import from_origin

from alise.synth.classes import classes_csv
from alise.synth.generator import generate_site
from tests.fakes import set_items, write_tif

BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")

#: A reduced architecture so that every model trains in seconds on a CPU.
TINY = set_items()


def _write(path: Path, data: np.ndarray, transform, descriptions=None) -> None:
    write_tif(path, data, crs="EPSG:32631", transform=transform, descriptions=descriptions)


def write_site(dest: Path, seed: int, size: int = 32, revisit: int = 30) -> Path:
    """One synthetic year (2019) as ``dest/s2``, ``dest/scl``, ``labels.tif``, ``classes.csv``."""
    site = generate_site(size, years=(2019,), rng=seed, revisit=revisit, cloudiness=0.2)
    transform = from_origin(500000 + 1000 * seed, 5630000, 10, 10)
    for d, dn, scl in zip(site["dates"], site["dn"], site["scl"]):
        _write(dest / "s2" / f"{d.isoformat()}.tif", dn.astype(np.uint16), transform, BANDS)
        _write(dest / "scl" / f"{d.isoformat()}.tif", scl[None].astype(np.uint8), transform)
    _write(dest / "labels.tif", site["labels"][2019][None].astype(np.uint8), transform)
    (dest / "classes.csv").write_text(classes_csv())
    return dest


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """Two 32 × 32 synthetic sites of one year (≈ 12 dates each) under one root."""
    root = tmp_path_factory.mktemp("compare-synth")
    for i in range(2):
        write_site(root / f"site{i}", seed=11 + i)
    return root
