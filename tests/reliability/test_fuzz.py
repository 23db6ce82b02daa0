"""Property-based fuzzing of read → batch → encode: either a clean AliseError or finite outputs of the
right shape, whatever the rasters, dates and masks.

Inputs are random small series written as a folder of dates (GeoTIFFs: uint16 or float32 values,
zeros = nodata, NaN, optional SCL masks, dates in both file-name formats, duplicates) or built
directly as :class:`RawSITS`.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alise.batch import collate
from alise.data import RawSITS, open_source
from alise.errors import AliseError

from .conftest import tiny_model, write_tif

MODEL = tiny_model()
Q, D = MODEL.config.n_q, MODEL.config.d_model
FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _encode(batch) -> torch.Tensor:
    with torch.inference_mode():
        return MODEL.encode(batch.x, batch.days, batch.valid_dates)


@st.composite
def folders(draw):
    """(a function writing the folder into a directory, T, H, W)."""
    t = draw(st.integers(1, 4))
    h, w = draw(st.sampled_from([16, 24, 32, 8, 13])), draw(st.sampled_from([16, 32, 20]))
    offsets = draw(st.lists(st.integers(0, 3000), min_size=t, max_size=t))
    dates = [dt.date(2016, 1, 1) + dt.timedelta(days=o) for o in offsets]
    compact = draw(st.lists(st.booleans(), min_size=t, max_size=t))  # YYYYMMDD or YYYY-MM-DD names
    kind = draw(st.sampled_from(["uint16", "float32", "float32-unit"]))
    fill = draw(st.sampled_from(["random", "zeros", "nan", "mixed", "constant"]))
    mask = draw(st.sampled_from([None, "scl", "mask"]))
    seed = draw(st.integers(0, 2**16))

    def write(root: Path) -> None:
        rng = np.random.default_rng(seed)
        for d, c in zip(dates, compact):
            name = (d.strftime("%Y%m%d") if c else d.isoformat()) + ".tif"
            v = rng.uniform(0, 12000, (10, h, w))
            if fill == "zeros":
                v[:] = 0
            elif fill == "constant":
                v[:] = 1234
            elif fill in ("nan", "mixed"):
                v[:, rng.random((h, w)) < (1.0 if fill == "nan" else 0.3)] = np.nan
            if kind == "uint16":
                v = np.nan_to_num(v).astype(np.uint16)
            else:
                v = (v / 1e4 if kind == "float32-unit" else v).astype(np.float32)
            write_tif(root / "s2" / name, v, nodata=0 if kind == "uint16" else None)
            if mask == "scl":
                write_tif(root / "scl" / name, rng.integers(0, 12, (h, w)).astype(np.uint8))
            elif mask == "mask":
                write_tif(root / "mask" / name, (rng.random((h, w)) < 0.5).astype(np.uint8))

    return write, t, h, w


@FUZZ
@given(folders())
def test_folder_of_dates_reads_and_encodes_or_fails_cleanly(case):
    write, t, h, w = case
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "site"
        write(root)
        try:
            raw = open_source(root).read()
            sits = raw.to_sits(MODEL.norm)
            assert sits.x.shape[1:] == (10, h, w) and torch.isfinite(sits.x).all()
            assert sits.valid_pixels.dtype == torch.bool and sits.valid_pixels.shape == (sits.n_dates, h, w)
            y = _encode(collate([sits, sits.select_dates(slice(0, 1))]))
        except AliseError as e:
            assert "\n" not in str(e) and str(e)
            return
    assert sits.n_dates <= t
    assert y.shape == (2, Q, D, h, w)
    assert torch.isfinite(y).all()


@st.composite
def raw_series(draw):
    t = draw(st.integers(1, 5))
    hw = draw(st.sampled_from([16, 32]))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    special = draw(st.sampled_from([0.0, np.nan, np.inf, -np.inf, 65535.0, -1.0, 1e30]))
    frac = draw(st.floats(0, 1))
    dn = rng.uniform(0, 10000, (t, 10, hw, hw)).astype(np.float32)
    dn[rng.random(dn.shape) < frac] = special
    valid = rng.random((t, hw, hw)) < draw(st.floats(0, 1))
    days = np.sort(rng.choice(4000, t, replace=False)).astype(np.float32)
    return RawSITS(dn=dn, valid=valid, days=days)


@FUZZ
@given(st.lists(raw_series(), min_size=1, max_size=3), st.integers(0, 3))
def test_raw_series_batch_encodes_to_finite_output(series, pad):
    hw = series[0].dn.shape[-1]
    series = [s for s in series if s.dn.shape[-1] == hw]  # one batch: one spatial size
    sits = [s.to_sits(MODEL.norm) for s in series]
    assert all(torch.isfinite(s.x).all() for s in sits)
    batch = collate(sits, pad_to=max(s.n_dates for s in sits) + pad)
    y = _encode(batch)
    assert y.shape == (len(sits), Q, D, hw, hw)
    assert torch.isfinite(y).all()
    # every pixel invalid somewhere it holds a non-finite value
    for s, r in zip(sits, series):
        bad = ~np.isfinite(r.dn).all(axis=1)
        assert not s.valid_pixels.numpy()[bad].any()


@pytest.mark.parametrize("shape", [(1, 2, 10, 15, 16), (1, 2, 10, 8, 8), (1, 2, 9, 16, 16), (2, 10, 16, 16)])
def test_wrong_shapes_are_clean_errors(shape):
    x = torch.zeros(shape)
    b = shape[0] if len(shape) == 5 else 1
    t = shape[1] if len(shape) == 5 else 2
    with pytest.raises(AliseError):
        MODEL.encode(x, torch.zeros(b, t), torch.ones(b, t, dtype=torch.bool))
