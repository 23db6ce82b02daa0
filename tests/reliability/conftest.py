"""Fixtures and helpers of the reliability tests (issue 11): small generated sites, a tiny model, and
the one check every user mistake must pass (exit 2, one line on stderr, nothing left behind)."""

from __future__ import annotations

import functools

import datetime as dt
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from rasterio.transform import from_origin

from tests import fakes
from alise.cli import main
from alise.model.config import ALISEConfig

CRS = "EPSG:32631"
TRANSFORM = from_origin(500000.0, 5650000.0, 10.0, 10.0)
SIZE = 32
#: Three dates in each of two years (``change --years``); all before 2022 (no +1000 offset).
DATES = tuple(dt.date(y, m, d) for y in (2018, 2019) for m, d in ((4, 2), (6, 11), (8, 20)))
#: A tiny model (10 bands): fast enough for every command, still the real architecture.
TINY = fakes.tiny_config(n_q=2, proj_d_k=4, n_dates=6)


#: ``write_tif(path, data, **profile)`` on the sites' grid unless told otherwise (:func:`tests.fakes.write_tif`).
write_tif = functools.partial(fakes.write_tif, transform=TRANSFORM, crs=CRS)


def make_site(root: Path, size: int = SIZE, dates=DATES, seed: int = 0) -> Path:
    """A folder-layout site: s2/ (uint16 DN, nodata 0), scl/, labels.tif + classes.csv, labels/YYYY.tif
    and change/2018_2019.tif. Two crops with different phenology; a moving cloud (SCL 9)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    lab = np.where(xx < size // 2, 1, 2).astype(np.uint8)
    lab[:, :3] = 0
    base = np.array([400, 700, 600, 1100, 2300, 2700, 2900, 3000, 2000, 1100], np.float32)
    for k, d in enumerate(dates):
        g = np.sin(np.pi * (d.timetuple().tm_yday / 365.0))
        img = base[:, None, None] * (1 + np.where(lab == 1, 0.5 * g, -0.3 * g))[None]
        img = img + rng.normal(0, 40, img.shape)
        write_tif(root / "s2" / f"{d.isoformat()}.tif", np.clip(img, 1, 10000).astype(np.uint16), nodata=0)
        scl = np.full((size, size), 4, np.uint8)
        scl[(yy - 5 * k) ** 2 + (xx - 4 * k) ** 2 < 30] = 9
        write_tif(root / "scl" / f"{d.isoformat()}.tif", scl)
    for y in sorted({d.year for d in dates}):
        write_tif(root / "labels" / f"{y}.tif", lab)
    write_tif(root / "labels.tif", lab)
    (root / "classes.csv").write_text("id,name\n0,background\n1,crop_a\n2,crop_b\n")
    change = np.zeros((size, size), np.uint8)
    change[: size // 2, size // 2:] = 1
    write_tif(root / "change" / "2018_2019.tif", change)
    return root


def tiny_model(seed: int = 0, **overrides):
    from alise.model.network import ALISE

    torch.manual_seed(seed)
    return ALISE(TINY.replace(**overrides) if overrides else TINY).eval()


def leftovers(parent: Path, keep: set[str]) -> list[str]:
    """Entries of ``parent`` that are not in ``keep``: temporary files, half outputs, ``.parts`` dirs."""
    if not parent.is_dir():
        return []
    return sorted(p.name for p in parent.iterdir() if p.name not in keep)


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """``alise ARGV`` in-process: (exit code, stdout, stderr).

    Warnings that a real run would print on stderr (not the Deprecation ones, hidden by default)
    are added to stderr as one line each, since pytest would otherwise swallow them.
    """
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    shown = [w for w in caught if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning))]
    err += "".join(f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}\n" for w in shown)
    return code, out, err


def assert_user_error(code: int, err: str, command: str, expected: str | None = None) -> str:
    """Exit 2, exactly one stderr line ``alise COMMAND: error: ...`` (no traceback) that matches the
    regular expression ``expected`` (case-insensitive); returns the line."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, (code, err)
    assert len(lines) == 1, err
    assert lines[0].startswith(f"alise {command}: error: "), lines[0]
    assert "Traceback" not in err
    if expected is not None:
        assert re.search(expected, lines[0], re.IGNORECASE), lines[0]
    return lines[0]


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """A good 32 × 32 site with 6 dates over 2018–2019 (read-only: copy it before spoiling it)."""
    return make_site(tmp_path_factory.mktemp("rel-site") / "site")


@pytest.fixture
def site_copy(site, tmp_path):
    """``site_copy(name="site")``: a fresh writable copy of the good site."""

    def copy(name: str = "site") -> Path:
        dest = tmp_path / name
        shutil.copytree(site, dest)
        return dest

    return copy


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """A saved tiny model (10 bands, paper normalisation statistics)."""
    d = tmp_path_factory.mktemp("rel-model") / "model"
    tiny_model().save(d)
    return d


@pytest.fixture(scope="session")
def tiny_config() -> ALISEConfig:
    return TINY
