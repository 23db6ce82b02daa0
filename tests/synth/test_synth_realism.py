"""Is the synthetic data plausible and useful? Spectra, clouds and SCL, and learnable labels."""

from __future__ import annotations

import numpy as np
import pytest

from alise.synth import generate_site
from alise.synth import classes as C
from alise.synth.parcels import make_landscape
from alise.synth.spectra import SPECTRA, ndvi

CLEAR = (4, 5, 6)


@pytest.fixture(scope="module")
def site():
    return generate_site(64, years=(2019,), rng=11, cloudiness=0.3)


def _water_seed(size: int) -> int:
    """The first seed whose landscape has a pond (landscapes alone are cheap to draw)."""
    for seed in range(200):
        land = make_landscape(size, (2019,), np.random.default_rng((seed, 1)))
        if (land.labels(2019) == C.WATER).sum() > 20:
            return seed
    raise AssertionError("no water in 200 landscapes")


def test_endmember_spectra_have_the_right_shapes():
    green, water, soil = SPECTRA[1], SPECTRA[3], SPECTRA[0]
    assert green[3] < green[4] < green[5] < green[6]  # red-edge ramp B05 < B06 < B07 < B08
    assert green[2] < green[1] and green[6] > 5 * green[2]  # red absorption, green peak, NIR plateau
    assert green[8] > green[9] and soil[8] > soil[6]  # SWIR: B11 > B12, bare soil brightest in B11
    assert ndvi(water[:, None, None], axis=0) < 0 < ndvi(soil[:, None, None], axis=0) < 0.3


def test_vegetation_and_water_ndvi(site):
    surface = site["surface"].astype(np.float32) / 1e4
    nd = ndvi(surface, axis=1)  # (T, H, W)
    lab = site["labels"][2019]
    for k in C.CROPS:
        if (lab == k).sum() > 20:
            assert np.median(nd.max(axis=0)[lab == k]) > 0.6, C.CLASS_NAMES[k]  # green peak
            assert np.median(nd.min(axis=0)[lab == k]) < 0.35, C.CLASS_NAMES[k]  # bare soil at some time

    seed = _water_seed(48)
    w = generate_site(48, years=(2019,), rng=(seed,), cloudiness=0.0)
    wnd = ndvi(w["surface"].astype(np.float32) / 1e4, axis=1)
    water = w["labels"][2019] == C.WATER
    assert np.median(wnd[:, water]) < 0
    assert (w["scl"][:, water] == 6).mean() > 0.9


def test_digital_numbers_are_l2a_like(site):
    dn, scl = site["dn"], site["scl"]
    clear = np.isin(scl, CLEAR)
    med = np.median(dn.transpose(1, 0, 2, 3)[:, clear], axis=1)  # (C,)
    assert 200 < med[0] < 1200 and med[6] > 1500  # blue a few hundred DN, NIR thousands (cf. real patch)
    bands_last = dn.transpose(0, 2, 3, 1)  # (T, H, W, C)
    assert (bands_last[scl == 0] == 0).all() and (bands_last[scl != 0] > 0).all()  # 0 only as nodata
    assert dn.max() < 15000


@pytest.mark.parametrize("cloudiness", [0.15, 0.6])
def test_cloud_fraction_follows_cloudiness(cloudiness):
    s = generate_site(32, years=(2018, 2019), rng=5, cloudiness=cloudiness)
    cloudy = np.isin(s["scl"], (8, 9, 11)).mean()
    assert abs(cloudy - cloudiness) < 0.1
    per_date = np.isin(s["scl"], (8, 9, 11)).mean(axis=(1, 2))
    assert (per_date < 0.01).any()  # clear dates occur at any cloudiness
    if cloudiness > 0.3:
        assert (per_date > 0.99).any()  # and overcast ones when it is cloudy


def test_no_clouds_means_every_observation_is_clear():
    s = generate_site(24, years=(2019,), rng=1, cloudiness=0.0)
    assert np.isin(s["scl"], (0, 4, 5, 6)).all()


def test_scl_agrees_with_what_clouds_and_shadows_did(site):
    dn = site["dn"].astype(np.float32)
    surface = site["surface"].astype(np.float32)
    scl = site["scl"]
    ratio = dn / surface  # (T, C, H, W)
    cloud = np.isin(scl, (9, 11))
    shadow = scl == 3
    clear = np.isin(scl, CLEAR)
    assert cloud.any() and shadow.any() and clear.any()
    assert np.median(ratio[:, 0][cloud]) > 2.0  # opaque cloud: much brighter in blue
    assert np.median(ratio[:, 6][shadow]) < 0.75  # shadow: darker in NIR
    assert np.median(np.abs(ratio[:, 6][clear] - 1)) < 0.05  # clear: the surface plus noise
    # shadows are displaced clouds: they occur only on dates that have clouds
    has_cloud = np.isin(scl, (8, 9, 11)).any(axis=(1, 2))
    assert not shadow[~has_cloud].any()


def test_labels_are_learnable_from_clear_ndvi_profiles():
    """Per-pixel logistic regression on monthly clear-sky NDVI: site A to site B, far above chance."""
    from sklearn.linear_model import LogisticRegression

    def features(s):
        nd = ndvi(s["dn"].astype(np.float32), axis=1)  # (T, H, W)
        clear = np.isin(s["scl"], CLEAR)
        month = np.array([d.month for d in s["dates"]])
        feats = []
        for m in range(1, 13, 1):  # 12 cheap date bins (fine: loop over months, pixels vectorised)
            sel = (month == m)[:, None, None] & clear
            cnt = sel.sum(axis=0)
            mean = np.where(sel, nd, 0).sum(axis=0) / np.maximum(cnt, 1)
            feats.append(np.where(cnt > 0, mean, np.nan))
        f = np.stack(feats, axis=-1).reshape(-1, 12)  # (H·W, 12)
        col_mean = np.nanmean(f, axis=0)
        f = np.where(np.isnan(f), col_mean, f)
        y = s["labels"][2019].ravel()
        keep = y != 0
        return f[keep], y[keep]

    xa, ya = features(generate_site(80, years=(2019,), rng=21, cloudiness=0.3))
    xb, yb = features(generate_site(80, years=(2019,), rng=22, cloudiness=0.3))
    shared = np.isin(yb, np.unique(ya))
    clf = LogisticRegression(max_iter=500).fit(xa, ya)
    acc = (clf.predict(xb[shared]) == yb[shared]).mean()
    majority = np.bincount(yb[shared]).max() / shared.sum()
    assert acc > 0.6 and acc > majority + 0.25, (acc, majority)
