"""Pre-training samples (paper §III-C: random consecutive date windows, re-drawn each epoch) and
the clear-pixel sampler used for the normalisation statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alise.batch import collate
from alise.data import PretrainDataset, open_source, open_sources, sample_clear_pixels
from alise.data.source import RasterGrid, SITSSource
from alise.errors import AliseError
from alise.normalise import NormStats


class ArraySource(SITSSource):
    """An in-memory source: DN = 1000 + 100·date + pixel index, so every value tells where it came from."""

    layout = "memory"

    def __init__(self, t=20, h=24, w=20, clear=True):
        import datetime as dt

        dates = [dt.date(2019, 1, 1) + dt.timedelta(days=5 * i) for i in range(t)]
        super().__init__("mem", "mem", dates, RasterGrid(None, None, h, w), offset=0)
        pix = np.arange(h * w, dtype=np.float32).reshape(h, w)
        self.dn = 1000 + 100 * np.arange(t, dtype=np.float32)[:, None, None, None] + pix + np.zeros((1, 10, 1, 1))
        self.clear = np.full((t, h, w), clear)
        self.clear[:, 0, 0] = False

    def _read_raw(self, window, idx):
        r, c, h, w = window
        return self.dn[idx, :, r:r + h, c:c + w].astype(np.float32), self.clear[idx, r:r + h, c:c + w]

    def _read_overview(self, idx, side):
        return self.dn[idx, 0].astype(np.float32), self.clear[idx]

    def _read_labels(self, window, year):
        return None


def test_samples_are_consecutive_dates_and_a_pure_function_of_seed_epoch_index():
    src = ArraySource()
    ds = PretrainDataset([src], NormStats.paper(), crop=8, n_dates=6, samples_per_epoch=10, seed=3)
    draws = [ds.draw(i) for i in range(10)]
    for _, (top, left, h, w), dates in draws:
        assert np.array_equal(dates, np.arange(dates[0], dates[0] + 6))  # 6 consecutive acquisitions
        assert 0 <= top <= 24 - 8 and 0 <= left <= 20 - 8 and (h, w) == (8, 8)
    again = PretrainDataset([src], NormStats.paper(), crop=8, n_dates=6, samples_per_epoch=10, seed=3)
    assert [str(d) for d in draws] == [str(again.draw(i)) for i in range(10)]
    ds.set_epoch(1)
    assert [str(d) for d in draws] != [str(ds.draw(i)) for i in range(10)]  # re-drawn every epoch
    ds.set_epoch(0)
    assert [str(d) for d in draws] == [str(ds.draw(i)) for i in range(10)]  # resumable
    s = ds[4]
    _, (top, left, _, _), dates = draws[4]
    expect = NormStats.paper().apply(src.dn[dates][:, :, top:top + 8, left:left + 8])
    assert torch.allclose(s.x, expect) and s.days.tolist() == src.days[dates].tolist()
    batch = collate([ds[i] for i in range(3)])
    assert batch.x.shape == (3, 6, 10, 8, 8)


def test_center_mode_is_fixed_and_short_series_keep_all_dates():
    src = ArraySource(t=4)
    ds = PretrainDataset([src], NormStats.paper(), crop=8, n_dates=60, center=True)
    assert len(ds) == 3 * 3  # one sample per 8-px tile
    k, window, dates = ds.draw(0)
    assert window == (8, 6, 8, 8) and dates.tolist() == [0, 1, 2, 3]
    ds.set_epoch(5)
    assert ds.draw(0)[1] == window
    with pytest.raises(AliseError, match="smaller than the crop"):
        PretrainDataset([src], NormStats.paper(), crop=32)


def test_min_clear_drops_cloudy_dates_before_windowing():
    src = ArraySource(t=10)
    src.clear[::2] = False  # even dates fully cloudy
    ds = PretrainDataset([src], NormStats.paper(), crop=8, n_dates=3, min_clear=0.5)
    assert all(set(ds.draw(i)[2]) <= {1, 3, 5, 7, 9} for i in range(len(ds)))


@pytest.mark.slow
def test_real_data_sample_and_clear_pixel_sampler(flanders):
    src = open_source(flanders)
    ds = PretrainDataset([src], NormStats.paper(), crop=32, n_dates=60, samples_per_epoch=2)
    s = ds[0]
    assert s.x.shape == (60, 10, 32, 32) and s.labels.shape == (32, 32)
    assert (s.labels == -100).any() and not (s.labels == 0).any()  # 0 = unlabeled → ignore_index
    px = sample_clear_pixels([src], n=5000, seed=0)
    assert px.shape == (5000, 10) and np.isfinite(px).all()
    np.testing.assert_array_equal(px, sample_clear_pixels([src], n=5000, seed=0))
    raw = src.read()
    clear_rows = {tuple(r) for r in np.moveaxis(raw.dn, 1, -1)[raw.valid][:, :3].tolist()}
    assert all(tuple(r) in clear_rows for r in px[:200, :3].tolist())  # only clear pixels
    st = NormStats.from_samples(px)
    assert 300 < st.median[0] < 900  # README: clear median B02 526 DN


def test_sampler_refuses_series_without_clear_pixels():
    with pytest.raises(AliseError, match="no clear pixel"):
        sample_clear_pixels([ArraySource(clear=False)], n=100)


def test_open_sources_feed_the_dataset(copy_site):
    root = copy_site("root/a", dates=("2018-06-28", "2018-06-30")).parent
    copy_site("root/b", dates=("2018-07-05",))
    copy_site("root/c", dates=("2018-07-08",))
    sources = open_sources(root)
    ds = PretrainDataset(sources, NormStats.paper(), crop=64, n_dates=60)
    assert len(ds) == 3 and [ds[i].n_dates for i in range(3)] == [2, 1, 1]


def test_decoded_cache_gives_the_samples_of_window_reads(flanders):
    """Cached series are sliced, uncached ones read window by window: the samples are identical."""
    src = open_source(flanders)
    norm = NormStats.paper()
    kw = dict(crop=32, n_dates=20, samples_per_epoch=6, seed=3, min_clear=0.5)
    cached, direct = PretrainDataset([src], norm, **kw), PretrainDataset([src], norm, cache_bytes=0, **kw)
    for epoch in (0, 1):
        cached.set_epoch(epoch)
        direct.set_epoch(epoch)
        for i in range(len(cached)):
            a, b = cached[i], direct[i]
            assert torch.equal(a.x, b.x) and torch.equal(a.valid_pixels, b.valid_pixels) and torch.equal(a.days, b.days)
            assert a.meta["dates"] == b.meta["dates"] and tuple(a.meta["window"]) == tuple(b.meta["window"])
    assert cached._cached_bytes > 0 and direct._cached_bytes == 0
