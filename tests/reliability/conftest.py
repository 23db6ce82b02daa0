"""Fixtures and helpers of the reliability tests (issue 11): small generated sites, a tiny model, and
the one check every user mistake must pass (exit 2, one line on stderr, nothing left behind)."""

from __future__ import annotations

import functools

import datetime as dt
import re
import shutil
import warnings
from pathlib import Path

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
    """:func:`tests.fakes.make_site` on this folder's grid, with clouds: s2/, scl/, labels.tif +
    classes.csv, labels/YYYY.tif and change/2018_2019.tif."""
    return fakes.make_site(root, size=size, seed=seed, dates=list(dates), clouds=True, transform=TRANSFORM, crs=CRS)


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
