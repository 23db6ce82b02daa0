"""Raster-wide GroupNorm statistics: estimation, persistence in OUT.parts/, --prepare for shards."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alise.cli import main
from alise.data import open_source
from alise.encode import EncodeOptions, encode, parts_dir
from alise.encode.groupstats import STATS_FILE, GroupStats, estimate, sample_indices
from alise.encode.tiling import TileGrid
from alise.errors import AliseError

from .conftest import tiny_model

FAST = dict(progress=False, device="cpu")


def frame_stats(unet, x):
    """GroupNorm's own (mean, rstd) per frame of ``x (T, C, H, W)`` for every layer, seen by observers."""
    got = []

    def observe(layer, a):
        g = a.reshape(a.shape[0], layer.num_groups, -1).double()
        got.append((g.mean(-1).float(), torch.rsqrt(g.var(-1, unbiased=False) + layer.eps).float()))

    for m in unet.group_norms():
        m.observer = observe
    try:
        unet(x)
    finally:
        for m in unet.group_norms():
            m.observer = None
    return got


def test_estimate_on_the_whole_image_equals_groupnorm_statistics():
    """One sample owning the whole image: the estimate is GroupNorm's own statistics, layer by
    layer (each pass runs the earlier layers with the statistics found before)."""
    model = tiny_model().eval()
    torch.manual_seed(1)
    x = torch.randn(3, 10, 32, 32)
    with torch.inference_mode():
        want = frame_stats(model.unet, x)
        one = estimate(model.unet, [(x, (slice(0, 32), slice(0, 32)))], 1, chunk_frames=2)
    assert len(one.mean) == len(want) == len(model.unet.group_norms())
    for (m, r), m1, r1 in zip(want, one.mean, one.rstd):
        torch.testing.assert_close(m1, m, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(r1, r, rtol=1e-4, atol=1e-4)


def _series(seed: int):
    """A tiny GroupNorm model and one random series ``x (1, 4, 10, 32, 32)``, days, valid."""
    model = tiny_model().eval()
    torch.manual_seed(seed)
    x = torch.randn(1, 4, 10, 32, 32)
    return model, x, torch.tensor([[10.0, 40.0, 70.0, 100.0]]), torch.ones(1, 4, dtype=torch.bool)


def test_frozen_statistics_reproduce_groupnorm_and_are_used_by_encode():
    model, x, days, valid = _series(2)
    with torch.inference_mode():
        stats = estimate(model.unet, [(x[0], (slice(0, 32), slice(0, 32)))], 1)
        plain = model.encode(x, days, valid)
        frozen = model.encode(x, days, valid, group_stats=stats.pairs())
        torch.testing.assert_close(frozen, plain, rtol=1e-4, atol=1e-5)
        other = model.encode(x, days, valid, group_stats=[(m + 0.5, r) for m, r in stats.pairs()])
    assert (other - plain).abs().max() > 1e-3  # the statistics are really used


def test_threads_encoding_with_one_model_keep_their_own_statistics():
    """The frozen statistics belong to the call: two threads with different statistics get the
    results they get one after the other."""
    from concurrent.futures import ThreadPoolExecutor

    model, x, days, valid = _series(3)
    with torch.inference_mode():
        stats = estimate(model.unet, [(x[0], (slice(0, 32), slice(0, 32)))], 1).pairs()
    sets = [stats, [(m + 0.5, r) for m, r in stats]] * 4

    def run(st):
        with torch.inference_mode():
            return model.encode(x, days, valid, group_stats=st)

    alone = [run(st) for st in sets[:2]]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(run, sets))
    for i, y in enumerate(together):
        torch.testing.assert_close(y, alone[i % 2], rtol=0, atol=0)
    assert (alone[0] - alone[1]).abs().max() > 1e-3


def test_sample_indices_spread_over_the_grid():
    assert sample_indices(5, 16) == [0, 1, 2, 3, 4]
    s = sample_indices(100, 4)
    assert s[0] == 0 and s[-1] == 99 and len(s) == 4


def test_large_rasters_are_sampled_through_spread_windows():
    from alise.encode.groupstats import STATS_MARGIN, STATS_WINDOW, stats_samples

    small = TileGrid(90, 96, 48, 16)  # ≤ 16 windows of 64²: one window over the whole extended raster
    [(win, (rows, cols))] = stats_samples(small, 16)
    assert win.window == (0, 0, 90, 96) and (win.height, win.width) == (96, 96)
    assert (rows, cols) == (slice(0, 96), slice(0, 96))
    assert len(stats_samples(small, 2)) == 2  # 2 windows < raster: spread windows
    big = TileGrid(3000, 2000, 256, 32)
    got = stats_samples(big, 16)
    assert len(got) == 16
    for win, (rows, cols) in got:
        assert (win.height, win.width) == (STATS_WINDOW, STATS_WINDOW)
        assert win.row_off % 8 == 0 and win.col_off % 8 == 0
        assert win.row_off + win.height <= big.padded_shape[0] and win.col_off + win.width <= big.padded_shape[1]
        assert (rows.start, rows.stop) == (STATS_MARGIN, STATS_WINDOW - STATS_MARGIN)
    rows = {w.row_off for w, _ in got}
    assert min(rows) < 300 and max(rows) > 2500  # spread over the raster


def test_stats_are_kept_reused_and_checked(site, tmp_path):
    src = open_source(site)
    model = tiny_model()
    out = tmp_path / "emb.tif"
    rep = encode(model, src, out, EncodeOptions(tile=48, overlap=16, prepare_only=True, **FAST))
    parts = parts_dir(out)
    assert rep.tiles_done == 0 and not out.exists()
    assert (parts / "plan.json").is_file() and (parts / STATS_FILE).is_file()
    assert not list((parts / "tiles").iterdir())
    n_layers = len(model.unet.group_norms())
    stats = GroupStats.load(parts / STATS_FILE, n_layers, src.n_dates)
    assert stats.n_tiles == 1 and stats.mean[0].shape == (src.n_dates, 4)  # the whole raster at once
    # Shards started after --prepare use the stored statistics (not re-estimated).
    before = (parts / STATS_FILE).read_bytes()
    encode(model, src, out, EncodeOptions(tile=48, overlap=16, shard=(0, 2), **FAST))
    assert (parts / STATS_FILE).read_bytes() == before
    # A damaged file is a one-line error that says what to do.
    (parts / STATS_FILE).write_bytes(before[: len(before) // 2])
    with pytest.raises(AliseError, match="delete it"):
        encode(model, src, out, EncodeOptions(tile=48, overlap=16, shard=(1, 2), **FAST))


def test_statistics_from_a_few_tiles_are_still_seamless(site, tmp_path):
    """Statistics estimated on 2 of 9 tiles are only an estimate, but every tile uses the same
    numbers: the mosaic equals the whole-raster encoding under those numbers (no seams)."""
    import shutil

    import rasterio

    src = open_source(site)
    model = tiny_model()
    tiled = tmp_path / "tiled.tif"
    encode(model, src, tiled, EncodeOptions(tile=48, overlap=16, stats_windows=2, keep_parts=True, **FAST))
    stats = parts_dir(tiled) / STATS_FILE
    assert GroupStats.load(stats, len(model.unet.group_norms()), src.n_dates).n_tiles == 2
    whole = tmp_path / "whole.tif"
    parts_dir(whole).mkdir()
    shutil.copy(stats, parts_dir(whole) / STATS_FILE)  # the same numbers for the one-tile run
    encode(model, src, whole, EncodeOptions(tile=96, overlap=0, **FAST))
    with rasterio.open(tiled) as a, rasterio.open(whole) as b:
        ta, tb = a.read(), b.read()
    ok = ~np.isnan(tb)
    # Only the blending of a receptive field larger than the 4-px margin remains (2e-3 measured).
    assert np.abs(ta[ok] - tb[ok]).max() < 5e-3 * np.abs(tb[ok]).mean()
    # The sampling is part of the plan: an unfinished run is not resumed with other settings.
    out = tmp_path / "c.tif"

    class Stop(Exception):
        pass

    with pytest.raises(Stop):
        encode(model, src, out, EncodeOptions(tile=48, overlap=16, stats_windows=2, **FAST),
               on_tile=lambda t: (_ for _ in ()).throw(Stop()))
    with pytest.raises(AliseError, match="group_norm"):
        encode(model, src, out, EncodeOptions(tile=48, overlap=16, stats_windows=3, **FAST))


def test_cli_prepare_then_shards_then_merge(site, tmp_path):
    d = tmp_path / "model"
    tiny_model().save(d)
    out = tmp_path / "emb.tif"
    common = [str(d), str(site), "--out", str(out), "--tile", "48", "--overlap", "16", "--no-progress",
              "--device", "cpu"]
    assert main(["encode", *common, "--prepare"]) == 0
    assert (parts_dir(out) / STATS_FILE).is_file() and not out.exists()
    for i in range(2):
        assert main(["encode", *common, "--shard", f"{i}/2"]) == 0
    assert main(["encode-merge", str(out), "--no-progress"]) == 0
    single = tmp_path / "single.tif"
    assert main(["encode", *common[:3], str(single), *common[4:]]) == 0
    import rasterio

    with rasterio.open(out) as a, rasterio.open(single) as b:
        assert np.array_equal(a.read(), b.read(), equal_nan=True)
    with pytest.raises(SystemExit) as e:  # argparse: usage line + error, exit 2
        main(["encode", *common[:3], str(tmp_path / "x.tif"), *common[4:], "--group-norm", "patch"])
    assert e.value.code == 2
    assert main(["encode", *common[:3], str(tmp_path / "x.tif"), *common[4:], "--stats-windows", "0"]) == 2
    assert not (tmp_path / "x.tif").exists() and not parts_dir(tmp_path / "x.tif").exists()
