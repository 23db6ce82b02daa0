"""Dates clear enough for a model: the subset reads what the parent reads, the filter travels with the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alise.data import open_source
from alise.data.subset import DateSubset, clear_date_index, clear_dates
from alise.errors import AliseError


def test_subset_reads_exactly_the_parent_dates(flanders):
    src = open_source(flanders)
    keep = np.flatnonzero(src.clear_fractions() >= 0.5)
    sub = clear_dates(src, 0.5)
    assert isinstance(sub, DateSubset) and sub.n_dates == keep.size == 50
    assert sub.dates == [src.dates[i] for i in keep] and (sub.clear_fractions() >= 0.5).all()
    a, b = src.read((3, 5, 8, 9), dates=keep), sub.read((3, 5, 8, 9))
    assert np.array_equal(a.dn, b.dn, equal_nan=True) and np.array_equal(a.valid, b.valid)
    assert np.array_equal(sub.labels(), src.labels()) and np.array_equal(sub.offsets(), src.offsets()[keep])
    assert clear_dates(src, 0.0) is src


def test_no_date_clear_enough_is_a_user_error(flanders):
    with pytest.raises(AliseError, match="no date is at least 100% clear"):
        clear_date_index(open_source(flanders), 1.0)


def test_the_filter_is_saved_with_the_model_and_used_by_its_features(tmp_path, flanders):
    from alise.model.config import ALISEConfig
    from alise.downstream.features import FeatureCache, SITSStore
    from alise.model.network import ALISE
    from alise.model.io import load
    from alise.model.presets import TINY_ARCH

    torch.manual_seed(0)
    model = ALISE(ALISEConfig().replace(**TINY_ARCH))
    model.input_min_clear = 0.5
    model.save(tmp_path / "m")
    back = load(tmp_path / "m")
    assert back.input_min_clear == 0.5
    src = open_source(flanders, start="2018-05-01", end="2018-08-31")
    store = SITSStore([src], back.norm)
    ours = FeatureCache(back, store).get(0)
    keep = clear_date_index(src, 0.5)
    assert 0 < keep.size < src.n_dates
    everything = FeatureCache(back, store, min_clear=0.0).get(0)
    by_hand = FeatureCache(back, SITSStore([DateSubset(src, keep)], back.norm), min_clear=0.0).get(0)
    assert np.allclose(ours, by_hand, atol=1e-6) and not np.allclose(ours, everything, atol=1e-3)
