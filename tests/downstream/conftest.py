"""Fixtures of the downstream tests: a tiny model and small generated site folders."""

from __future__ import annotations

import functools

from pathlib import Path

import pytest
from tests import fakes

TINY = fakes.tiny_config(proj_d_k=4)
CRS_UTM, TRANSFORM = fakes.SITE_CRS, fakes.SITE_TRANSFORM
make_site = fakes.make_site


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
