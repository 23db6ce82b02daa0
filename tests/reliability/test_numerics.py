"""Numerical safety: all-cloud pixels, one date, a long series, padding, odd values → defined behaviour.

=============================== ===========================================================
situation                       promised behaviour
=============================== ===========================================================
pixel cloudy on every date      model output finite; ``alise encode`` writes NaN there, n_clear 0
whole series never clear        ``alise encode``: all-NaN embedding, n_clear 0; ``check``: error
a single date                   finite embedding (T = 1 is a valid series)
T = 500, 48 × 48 (and 128²)    finite, chunked Transformer, peak RSS far below 4 GiB
a fully padded sample           AliseError "at least one valid (non-padded) date"
NaN / inf / 0 in the rasters    invalid pixels; normalised input is finite
extreme dates, chunk size       finite; chunking does not change the result
=============================== ===========================================================
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from alise.batch import SITS, SITSBatch, collate
from alise.data import RawSITS
from alise.errors import AliseError
from alise.normalise import NormStats

from .conftest import DATES, make_site, run_cli, tiny_model, write_tif


def _batch(b=1, t=4, hw=16, seed=0) -> SITSBatch:
    g = torch.Generator().manual_seed(seed)
    return SITSBatch(x=torch.randn(b, t, 10, hw, hw, generator=g),
                     days=torch.sort(torch.randint(1000, 2500, (b, t), generator=g).float(), 1).values,
                     valid_dates=torch.ones(b, t, dtype=torch.bool),
                     valid_pixels=torch.zeros(b, t, hw, hw, dtype=torch.bool))


def _encode_cli(capsys, model_dir, site, out) -> tuple[np.ndarray, np.ndarray]:
    code, _, err = run_cli(capsys, "encode", model_dir, site, "--out", out, "--tile", 32, "--overlap", 8,
                           "--no-progress", "--device", "cpu")
    assert code == 0, err
    with rasterio.open(out) as f, rasterio.open(out.with_name(out.stem + ".n_clear.tif")) as n:
        return f.read(), n.read(1)


def _set_scl(site: Path, fn) -> None:
    for d in DATES:
        f = site / "scl" / f"{d.isoformat()}.tif"
        with rasterio.open(f) as src:
            scl = src.read(1)
        write_tif(f, fn(scl))


def test_all_cloud_pixels_are_nan_in_the_embedding_and_finite_elsewhere(model_dir, site_copy, tmp_path, capsys):
    site = site_copy()
    _set_scl(site, lambda s: np.where(np.arange(32)[None, :] >= 28, 9, 4).astype(np.uint8) * np.ones_like(s))
    emb, n_clear = _encode_cli(capsys, model_dir, site, tmp_path / "emb.tif")
    assert emb.shape == (32, 32, 32)  # Q·D bands, H, W
    assert (n_clear[:, 28:] == 0).all() and (n_clear[:, :28] == len(DATES)).all()
    assert np.isnan(emb[:, :, 28:]).all()
    assert np.isfinite(emb[:, :, :28]).all()


def test_model_output_is_finite_when_nothing_is_clear():
    """The network sees cloudy values (only the loss ignores them): its output stays finite."""
    model = tiny_model()
    b = _batch()
    with torch.inference_mode():
        y = model.encode(b.x, b.days, b.valid_dates)
    assert y.shape == (1, 2, 16, 16, 16) and torch.isfinite(y).all()


def test_a_never_clear_series_encodes_to_nan_and_check_refuses_it(model_dir, site_copy, tmp_path, capsys):
    site = site_copy()
    _set_scl(site, lambda s: np.full_like(s, 9))
    emb, n_clear = _encode_cli(capsys, model_dir, site, tmp_path / "emb.tif")
    assert np.isnan(emb).all() and (n_clear == 0).all()
    code, _, err = run_cli(capsys, "check", site)
    assert code == 2 and "no clear pixel" in err


def test_a_single_date(model_dir, tmp_path, capsys):
    site = make_site(tmp_path / "one", dates=DATES[:1])
    emb, n_clear = _encode_cli(capsys, model_dir, site, tmp_path / "emb.tif")
    assert emb.shape == (32, 32, 32)
    clear = n_clear == 1
    assert clear.any() and np.isfinite(emb[:, clear]).all() and np.isnan(emb[:, ~clear]).all()
    model = tiny_model()
    b = _batch(t=1)
    with torch.inference_mode():
        assert torch.isfinite(model.encode(b.x, b.days, b.valid_dates)).all()


@pytest.mark.slow
def test_long_series_is_finite_and_fits_in_4_gib():
    """T = 500 dates through the chunked encoder in its own process; peak RSS measured there."""
    script = Path(__file__).with_name("long_series.py")
    proc = subprocess.run([sys.executable, str(script), "500", "48", "512"], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"long series: {res}")  # the figure quoted in docs/reliability.md
    assert res["shape"] == [1, 2, 16, 48, 48] and res["finite"]
    assert res["peak_rss_mib"] < 4096


def test_fully_padded_sample_is_a_clear_error():
    model = tiny_model()
    b = _batch(b=2)
    b.valid_dates[1] = False
    with pytest.raises(AliseError, match="at least one valid"):
        model.encode(b.x, b.days, b.valid_dates)
    b.valid_dates[:] = False
    with pytest.raises(AliseError, match="at least one valid"):
        model.encode(b.x, b.days, b.valid_dates)


def test_zero_dates_is_a_clear_error():
    model = tiny_model()
    b = _batch(t=1)
    with pytest.raises(AliseError):
        model.encode(b.x[:, :0], b.days[:, :0], b.valid_dates[:, :0])


def test_padding_does_not_change_the_embedding():
    model = tiny_model()
    g = torch.Generator().manual_seed(3)
    s = SITS(x=torch.randn(3, 10, 16, 16, generator=g), days=torch.tensor([1100.0, 1200.0, 1300.0]),
             valid_pixels=torch.ones(3, 16, 16, dtype=torch.bool))
    a, b = collate([s]), collate([s], pad_to=9)
    b.x[:, 3:] = 1e4  # garbage at padded dates must not leak in
    with torch.inference_mode():
        ya, yb = model.encode(a.x, a.days, a.valid_dates), model.encode(b.x, b.days, b.valid_dates)
    assert torch.allclose(ya, yb, atol=1e-5)


def test_nan_inf_and_zero_in_the_data_become_invalid_and_finite():
    dn = np.full((2, 10, 8, 8), 1500.0, np.float32)
    dn[0, :, 0, 0] = np.nan
    dn[0, 3, 1, 1] = np.inf
    dn[1, :, 2, 2] = -np.inf
    dn[1, 0, 3, 3] = 1e30
    raw = RawSITS(dn=dn, valid=np.ones((2, 8, 8), bool), days=np.array([1000.0, 1010.0], np.float32))
    sits = raw.to_sits(NormStats.paper())
    assert torch.isfinite(sits.x).all()
    assert not sits.valid_pixels[0, 0, 0] and not sits.valid_pixels[0, 1, 1] and not sits.valid_pixels[1, 2, 2]
    assert sits.valid_pixels[0, 4, 4]


@pytest.mark.parametrize("days", [[-5000.0, 0.0, 1.0, 2.0], [0.0, 0.0, 0.0, 0.0], [1e5, 1e5 + 1, 2e5, 3e5]])
def test_extreme_and_repeated_dates_give_finite_output(days):
    model = tiny_model()
    b = _batch()
    b.days[:] = torch.tensor(days)
    with torch.inference_mode():
        assert torch.isfinite(model.encode(b.x, b.days, b.valid_dates)).all()


def test_extreme_normalised_values_give_finite_output():
    model = tiny_model()
    b = _batch()
    b.x[0, 1] = 1e6
    b.x[0, 2] = -1e6
    with torch.inference_mode():
        assert torch.isfinite(model.encode(b.x, b.days, b.valid_dates)).all()


@pytest.mark.parametrize("chunk", [1, 7, 256])
def test_chunking_pixels_does_not_change_the_result(chunk):
    model = tiny_model()
    b = _batch(b=2, t=5, hw=16)
    with torch.inference_mode():
        whole = model.encode(b.x, b.days, b.valid_dates)
        chunked = model.encode(b.x, b.days, b.valid_dates, chunk_pixels=chunk)
    assert torch.allclose(whole, chunked, atol=1e-5)
    with pytest.raises(AliseError, match="chunk_pixels"):
        model.encode(b.x, b.days, b.valid_dates, chunk_pixels=0)
