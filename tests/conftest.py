"""Shared fixtures. Tests run on tiny configs and small generated or shipped data only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Two cores in CI, several pytest workers: keep each worker to one intra-op thread.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ALISE_SHARED", REPO.parent / "shared"))
FLANDERS = SHARED / "data" / "worldcereal-flanders-2018"
WEIGHTS = SHARED / "weights"


@pytest.fixture(scope="session")
def flanders() -> Path:
    """The shipped real Sentinel-2 patch (118 dates, 64×64, EPSG:32631)."""
    if not FLANDERS.is_dir():
        pytest.fail(f"shared data not found at {FLANDERS}: CI lays ../shared beside the clone")
    return FLANDERS


@pytest.fixture(scope="session")
def shared_weights() -> Path:
    if not WEIGHTS.is_dir():
        pytest.fail(f"shared weights not found at {WEIGHTS}")
    return WEIGHTS
