"""Tiny pre-training configurations shared by the tests of :mod:`alise.train`."""

from __future__ import annotations

import pytest
import torch

from alise.batch import SITSBatch
from alise.model.config import ALISEConfig
from tests import fakes
from tests.fakes import set_items

#: ``--set`` items of a tiny ALISE (seconds per epoch on one CPU thread).
TINY_SET = set_items(skip=("n_dates",))
#: Command-line options of a tiny run: 16×16 crops, 20 dates, 4 samples (2 steps) per epoch.
TINY_ARGS = ["--set", *TINY_SET, "--n-dates", "20", "--crop", "16", "--samples-per-epoch", "4", "--no-progress"]


def tiny_config(**kw) -> ALISEConfig:
    """The tiny preset on 20-date samples (``kw`` changes it)."""
    return fakes.tiny_config(**{"n_dates": 20, **kw})


def random_views(b: int = 2, t: int = 6, h: int = 16, seed: int = 0) -> tuple[SITSBatch, SITSBatch]:
    """Two view batches ``x (b, t, 10, h, h)`` of random reflectance, some cloudy pixels, one padded date."""
    g = torch.Generator().manual_seed(seed)

    def one(offset: float) -> SITSBatch:
        x = torch.randn(b, t, 10, h, h, generator=g) * 0.2
        days = torch.arange(t, dtype=torch.float32)[None].repeat(b, 1) * 10 + 1500 + offset
        valid_dates = torch.ones(b, t, dtype=torch.bool)
        valid_dates[-1, -1] = False
        valid_pixels = (torch.rand(b, t, h, h, generator=g) > 0.2) & valid_dates[:, :, None, None]
        return SITSBatch(x=x * valid_dates[:, :, None, None, None], days=days * valid_dates, valid_dates=valid_dates,
                         valid_pixels=valid_pixels)

    return one(0.0), one(5.0)


@pytest.fixture
def cpu_env(monkeypatch) -> dict:
    """Environment for ``python -m alise.cli`` subprocesses: one thread, no GPU."""
    import os

    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    for k in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE"):
        env.pop(k, None)
    return env
