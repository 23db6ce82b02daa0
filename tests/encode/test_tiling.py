"""Tile grid and blending weights: full coverage, partition of unity, margins, validation."""

from __future__ import annotations

import numpy as np
import pytest

from alise.encode.tiling import TileGrid, raised_cosine_ramp
from alise.errors import AliseError


@pytest.mark.parametrize("h,w,tile,overlap", [(96, 96, 64, 16), (70, 90, 32, 8), (10, 300, 64, 0),
                                              (257, 256, 128, 32), (1000, 37, 256, 120), (50, 50, 64, 24)])
def test_tiles_cover_raster_and_weights_sum_to_one(h, w, tile, overlap):
    g = TileGrid(h, w, tile, overlap)
    th, tw = g.tile_shape
    ph, pw = g.padded_shape
    assert ph % 8 == 0 and pw % 8 == 0 and 0 <= ph - h < 8 + 8 * (h < 16) and th <= ph and tw <= pw
    cover = np.zeros((ph, pw))
    total = np.zeros((ph, pw))
    for t in g.tiles:
        assert (t.height, t.width) == (th, tw)
        assert t.row_off % 8 == 0 and t.col_off % 8 == 0  # on the UNet's 8-pixel grid
        assert 0 <= t.row_off and t.row_off + th <= ph and 0 <= t.col_off and t.col_off + tw <= pw
        r0, c0, rh, rw = t.window  # what is read: inside the raster
        assert (r0, c0) == (t.row_off, t.col_off) and 0 < rh <= th and 0 < rw <= tw
        assert r0 + rh == min(h, r0 + th) and c0 + rw == min(w, c0 + tw)
        cover[t.row_off:t.row_off + th, t.col_off:t.col_off + tw] += 1
        wt = g.weight(t)
        assert wt.min() >= 0
        total[t.row_off:t.row_off + th, t.col_off:t.col_off + tw] += wt
    assert cover.min() >= 1
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_weights_ignore_spoiled_tile_borders_and_keep_raster_edges():
    g = TileGrid(200, 200, 64, 24)  # margin 6
    inner = next(t for t in g.tiles if t.row_off > 0 and t.col_off > 0 and t.row_off + 64 < 200 and t.col_off + 64 < 200)
    wt = g.weight(inner)
    assert np.all(wt[:6] == 0) and np.all(wt[:, -6:] == 0)  # within the margin of a neighbour: no say
    first = g.tiles[0]
    assert g.weight(first)[0, 0] == 1.0  # a raster corner is covered by one tile only


def test_ramp_is_monotone_raised_cosine():
    r = raised_cosine_ramp(40, 16)
    assert np.all(np.diff(r) >= 0) and r[0] == 0 and r[-1] == 1
    assert np.all(r[:4] == 0) and np.all(r[12:] == 1)
    np.testing.assert_allclose(r[4:12] + r[4:12][::-1], 1.0)  # symmetric crossing: overlapping ramps sum to 1


def test_tiles_in_window_are_exactly_the_intersecting_ones():
    g = TileGrid(150, 170, 64, 16)
    r0, c0, h, w = 40, 90, 30, 50
    got = {t.index for t in g.tiles_in(r0, c0, h, w)}
    want = {t.index for t in g.tiles if t.row_off < r0 + h and t.row_off + t.height > r0
            and t.col_off < c0 + w and t.col_off + t.width > c0}
    assert got == want and got
    assert [t.index for t in g.tiles_in(r0, c0, h, w)] == sorted(got)


@pytest.mark.parametrize("tile,overlap,msg", [(64, -1, "≥ 0"), (64, 32, "half the tile"), (8, 0, "at least"),
                                              (104, 56, "half the tile"), (100, 16, "multiple of 8"),
                                              (64, 12, "multiple of 8")])
def test_bad_tiling_is_a_user_error(tile, overlap, msg):
    with pytest.raises(AliseError, match=msg):
        TileGrid(100, 100, tile, overlap)


def test_auto_tile_bounds_one_tile_features():
    from alise.encode.tiling import FEATURE_BUDGET, auto_tile

    assert auto_tile(30) == auto_tile(64) == 256
    assert auto_tile(100) == 192 and auto_tile(256) == 128
    for t in (10, 60, 100, 300, 1000):
        tile = auto_tile(t)
        assert tile % 32 == 0 and tile >= 64
        assert tile == 64 or t * 64 * tile * tile * 4 <= FEATURE_BUDGET


def test_auto_tile_covers_the_raster_with_the_fewest_tile_pixels():
    from alise.encode.tiling import auto_tile

    def encoded(size, t):
        g = TileGrid(size, size, t, 32)
        return len(g) * t * t

    assert auto_tile(100, size=(1024, 1024)) == 176  # 49 tiles of 176² instead of 49 of 192²
    assert encoded(1024, 176) < encoded(1024, 192)
    assert auto_tile(100, size=(512, 512)) == 192  # 9 tiles of 192² is already the best
    assert auto_tile(30, size=(10980, 10980)) % 8 == 0 and auto_tile(30, size=(10980, 10980)) <= 256
    assert auto_tile(30, size=(100, 100)) <= 256
