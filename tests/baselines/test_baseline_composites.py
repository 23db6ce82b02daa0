"""Monthly median composites vs a slow, obvious per-pixel np.nanmedian loop."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import torch

from alise.baselines.composites import calendar_months, monthly_median_composites
from alise.dates import days_since_origin
from alise.errors import AliseError


def _slow(dn, dates, valid):
    first = dates[0].year * 12 + dates[0].month - 1
    idx = np.array([d.year * 12 + d.month - 1 - first for d in dates])
    m = idx.max() + 1
    t, c, h, w = dn.shape
    comp = np.zeros((m, c, h, w), np.float32)
    ok = np.zeros((m, h, w), bool)
    for k in range(m):
        for i in range(h):
            for j in range(w):
                sel = (idx == k) & valid[:, i, j]
                if sel.any():
                    ok[k, i, j] = True
                    comp[k, :, i, j] = np.nanmedian(dn[sel, :, i, j], axis=0)
    return comp, ok, (np.arange(first, first + m) % 12)


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_per_pixel_nanmedian(seed):
    rng = np.random.default_rng(seed)
    start = dt.date(2018, 11, 20)          # crosses a year boundary
    offsets = np.sort(rng.choice(160, size=30, replace=False))
    dates = [start + dt.timedelta(days=int(o)) for o in offsets]
    dn = rng.integers(0, 10000, size=(30, 3, 5, 4)).astype(np.float32)
    valid = rng.random((30, 5, 4)) > 0.4
    perm = rng.permutation(30)              # input order must not matter
    comp, month, ok = monthly_median_composites(dn[perm], days_since_origin([dates[p] for p in perm]), valid[perm])
    ref, ref_ok, ref_month = _slow(dn, dates, valid)
    assert month.tolist() == ref_month.tolist() and month[0] == 10    # November = 10
    assert np.array_equal(ok.numpy(), ref_ok)
    assert np.allclose(comp.numpy(), ref, atol=1e-3)
    assert (comp.numpy()[~np.broadcast_to(ok.numpy()[:, None], comp.shape)] == 0).all()


def test_month_without_acquisition_is_invalid_and_even_counts_average():
    days = days_since_origin(["2019-01-05", "2019-01-20", "2019-03-02"])
    dn = torch.tensor([1.0, 3.0, 7.0]).reshape(3, 1, 1, 1)
    comp, month, ok = monthly_median_composites(dn, torch.as_tensor(days), torch.ones(3, 1, 1, dtype=torch.bool))
    assert month.tolist() == [0, 1, 2]
    assert ok[:, 0, 0].tolist() == [True, False, True]
    assert comp[:, 0, 0, 0].tolist() == [2.0, 0.0, 7.0]


def test_calendar_months():
    days = torch.as_tensor(days_since_origin(["2014-03-03", "2014-12-31", "2015-01-01"]))
    assert calendar_months(days).tolist() == [2, 11, 12]


def test_shape_errors():
    with pytest.raises(AliseError, match="expected dn"):
        monthly_median_composites(np.zeros((3, 2, 4, 4)), np.zeros(3), np.ones((3, 4, 5), bool))
