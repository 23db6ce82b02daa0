"""GF baseline: vectorised interpolation vs a slow per-pixel np.interp loop; change distance by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alise.errors import AliseError
from alise.baselines.gapfill import gapfill_linear, gf_change_distance, gf_features, regular_grid, year_grid


def _slow_gapfill(x, days, valid, grid):
    """Per pixel: np.interp over its valid observations (edges: nearest value), NaN if none."""
    b, t, c, h, w = x.shape
    out = np.full((b, grid.size, c, h, w), np.nan)
    for i in range(b):
        for r in range(h):
            for s in range(w):
                m = valid[i, :, r, s]
                if not m.any():
                    continue
                d = days[i][m]
                order = np.argsort(d)
                for k in range(c):
                    out[i, :, k, r, s] = np.interp(grid, d[order], x[i, m, k, r, s][order])
    return out


def test_regular_grid_and_year_grid():
    g = regular_grid(10.0, 30.0, 5.0)
    assert g.tolist() == [10.0, 15.0, 20.0, 25.0, 30.0]
    assert regular_grid(0.0, 12.0).tolist() == [0.0, 5.0, 10.0]
    yg = year_grid(2019)
    assert yg.size == 73 and yg[0] == (np.datetime64("2019-01-01") - np.datetime64("2014-03-03")).astype(int)
    assert np.allclose(yg - yg[0], year_grid(2020) - year_grid(2020)[0])  # same day-of-year grid
    with pytest.raises(AliseError):
        regular_grid(5.0, 0.0)


@pytest.mark.parametrize("chunk", [1 << 16, 7])
def test_gapfill_matches_slow_np_interp(chunk):
    rng = np.random.default_rng(0)
    b, t, c, h, w = 2, 9, 3, 5, 4
    x = rng.normal(size=(b, t, c, h, w))
    days = np.stack([np.sort(rng.choice(np.arange(1000, 1400), t, replace=False)) for _ in range(b)]).astype(np.float64)
    days[1] = rng.permutation(days[1])  # unsorted dates are accepted
    valid = rng.random((b, t, h, w)) > 0.5
    valid[0, :, 0, 0] = False  # a pixel without any clear observation
    valid[1, :, 1, 1] = False
    valid[1, 4, 1, 1] = True  # a pixel with exactly one
    grid = regular_grid(980.0, 1420.0, 5.0)  # extends past both ends
    got = gapfill_linear(torch.tensor(x, dtype=torch.float64), torch.tensor(days), torch.tensor(valid), grid, chunk_pixels=chunk)
    ref = _slow_gapfill(x, days, valid, grid)
    assert got.shape == (b, grid.size, c, h, w)
    assert torch.isnan(got[0, :, :, 0, 0]).all()
    assert torch.allclose(got[1, :, :, 1, 1], torch.tensor(x[1, 4, :, 1, 1]).expand(grid.size, c))
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10, atol=1e-10, equal_nan=True)


def test_gapfill_ignores_padding_and_invalid_values():
    # one real series of 3 dates, padded to 5 with day 0 and garbage (NaN) values
    x = torch.zeros(1, 5, 1, 1, 1)
    x[0, :3, 0, 0, 0] = torch.tensor([0.0, 10.0, 20.0])
    x[0, 3:] = float("nan")
    x[0, 1] = float("nan")  # cloudy and NaN: must not leak
    days = torch.tensor([[100.0, 110.0, 120.0, 0.0, 0.0]])
    valid = torch.tensor([True, False, True, False, False]).view(1, 5, 1, 1)
    out = gapfill_linear(x, days, valid, np.array([90.0, 100.0, 105.0, 115.0, 130.0]))
    assert out.dtype == torch.float32
    assert out[0, :, 0, 0, 0].tolist() == pytest.approx([0.0, 0.0, 5.0, 15.0, 20.0])


def test_gf_features_layout_and_fill():
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.normal(size=(1, 4, 2, 3, 3)), dtype=torch.float32)
    valid = torch.ones(1, 4, 3, 3, dtype=torch.bool)
    valid[0, :, 2, 2] = False
    days = torch.tensor([0.0, 10.0, 20.0, 30.0])
    grid = np.array([0.0, 10.0, 20.0])
    f = gf_features(x, days, valid, grid)
    assert f.shape == (1, 3 * 2, 3, 3)
    assert torch.equal(f[0, 2:4, 0, 0], x[0, 1, :, 0, 0])  # date-major: date 1 bands at 2..3
    assert (f[0, :, 2, 2] == 0).all()
    assert torch.isnan(gf_features(x, days, valid, grid, fill_value=None)[0, :, 2, 2]).all()


def _days(date):
    return float((np.datetime64(date) - np.datetime64("2014-03-03")).astype(int))


def test_gf_change_distance_by_hand():
    # year 1 (2019): pixel (0,0) constant 1, pixel (0,1) constant 0, pixel (0,2) never clear
    # year 2 (2020): everything constant 0, on different dates and with a different T
    d1 = torch.tensor([_days("2019-03-01"), _days("2019-06-01"), _days("2019-09-01")])
    d2 = torch.tensor([_days("2020-02-01"), _days("2020-07-15")])
    x1 = torch.zeros(3, 2, 1, 3)
    x1[:, :, 0, 0] = 1.0
    x2 = torch.zeros(2, 2, 1, 3)
    v1 = torch.ones(3, 1, 3, dtype=torch.bool)
    v1[:, 0, 2] = False
    v2 = torch.ones(2, 1, 3, dtype=torch.bool)
    d = gf_change_distance(x1, d1, v1, x2, d2, v2)
    assert d.shape == (1, 3)
    assert d[0, 0].item() == pytest.approx(1.0) and d[0, 1].item() == 0.0
    assert torch.isnan(d[0, 2])


def test_gf_change_distance_is_invariant_to_a_one_year_shift():
    # the same phenology one year later has distance 0: the grid is day-of-year aligned
    rng = np.random.default_rng(2)
    base = np.sort(rng.choice(np.arange(0, 360), 12, replace=False)).astype(float)
    d1 = torch.tensor(_days("2019-01-01") + base)
    d2 = torch.tensor(_days("2021-01-01") + base)  # 2020 is a leap year: 731 days later
    x = torch.tensor(rng.normal(size=(12, 4, 2, 2)), dtype=torch.float32)
    v = torch.tensor(rng.random((12, 2, 2)) > 0.3)
    d = gf_change_distance(x, d1, v, x, d2, v)
    assert torch.allclose(d, torch.zeros(2, 2), atol=1e-6)


def test_shape_errors_speak():
    with pytest.raises(AliseError, match=r"\(B, T, C, H, W\)"):
        gapfill_linear(torch.zeros(3, 2, 4, 4), torch.zeros(3), torch.ones(3, 4, 4, dtype=torch.bool), [0.0])
    with pytest.raises(AliseError, match="valid"):
        gapfill_linear(torch.zeros(1, 3, 2, 4, 4), torch.zeros(3), torch.ones(1, 3, 4, 5, dtype=torch.bool), [0.0])


def test_gf_change_distance_row_chunks_match_one_pass():
    rng = np.random.default_rng(5)
    d1 = torch.tensor(_days("2019-01-10") + np.sort(rng.choice(350, 8, replace=False)).astype(float))
    d2 = torch.tensor(_days("2020-01-03") + np.sort(rng.choice(350, 6, replace=False)).astype(float))
    x1, x2 = torch.tensor(rng.normal(size=(8, 3, 7, 5))), torch.tensor(rng.normal(size=(6, 3, 7, 5)))
    v1, v2 = torch.tensor(rng.random((8, 7, 5)) > 0.3), torch.tensor(rng.random((6, 7, 5)) > 0.3)
    whole = gf_change_distance(x1, d1, v1, x2, d2, v2)
    chunked = gf_change_distance(x1, d1, v1, x2, d2, v2, chunk_pixels=6)  # one row at a time
    assert torch.equal(torch.isnan(whole), torch.isnan(chunked))
    assert torch.allclose(whole.nan_to_num(), chunked.nan_to_num())
    grid1, grid2 = year_grid(2019), year_grid(2020)
    ref = (gapfill_linear(x1[None], d1, v1[None], grid1) - gapfill_linear(x2[None], d2, v2[None], grid2)).pow(2).mean((1, 2))[0]
    assert torch.allclose(whole.nan_to_num(), ref.nan_to_num(), atol=1e-6)
