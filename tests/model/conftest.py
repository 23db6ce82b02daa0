"""Tiny configuration and inputs shared by the model tests (fixtures ``tiny_cfg``, ``make_model``, ``make_batch``)."""

from __future__ import annotations

import pytest
import torch

from alise.batch import SITSBatch
from alise.model.config import ALISEConfig
from alise.normalise import NormStats
from tests.fakes import tiny_config

#: The tiny preset on 3 bands, with the paper's 3 Transformer layers (tests.fakes).
TINY = tiny_config(in_channels=3, n_layers=3, n_q=3, proj_d_k=4, d_emb=8, d_proj_hidden=8, n_dates=8)
TINY_NORM = NormStats(median=(0.0,) * 3, qmin=(-1.0,) * 3, qmax=(1.0,) * 3, bands=("B02", "B03", "B04"))


def tiny_model(seed: int = 0, **overrides):
    from alise.model.network import ALISE

    torch.manual_seed(seed)
    return ALISE(TINY.replace(**overrides) if overrides else TINY, TINY_NORM)


def tiny_batch(b: int = 2, t: int = 5, hw: int = 16, seed: int = 0, c: int = 3) -> SITSBatch:
    g = torch.Generator().manual_seed(seed)
    days = torch.sort(torch.randint(1000, 2500, (b, t), generator=g).float(), dim=1).values
    return SITSBatch(
        x=torch.randn(b, t, c, hw, hw, generator=g),
        days=days,
        valid_dates=torch.ones(b, t, dtype=torch.bool),
        valid_pixels=torch.rand(b, t, hw, hw, generator=g) > 0.3,
    )


@pytest.fixture
def tiny_cfg() -> ALISEConfig:
    return TINY


@pytest.fixture
def make_model():
    return tiny_model


@pytest.fixture
def make_batch():
    return tiny_batch
