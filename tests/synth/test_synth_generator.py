"""The synthetic generator's array API: shapes, determinism, dates, labels and change truth."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from alise.dates import days_since_origin
from alise.errors import AliseError
from alise.synth import CLASSES, SiteSimulator, generate_site
from alise.synth import classes as C
from alise.synth.acquisitions import acquisition_dates, sun_angles
from alise.synth.generator import draw_dates
from alise.synth.parcels import make_landscape


@pytest.fixture(scope="module")
def site():
    return generate_site(48, years=(2018, 2019), rng=7, cloudiness=0.3)


def test_shapes_dtypes_and_keys(site):
    t = len(site["dates"])
    assert site["dn"].shape == (t, 10, 48, 48) and site["dn"].dtype == np.uint16
    assert site["surface"].shape == (t, 10, 48, 48) and site["surface"].dtype == np.uint16
    assert site["scl"].shape == (t, 48, 48) and site["scl"].dtype == np.uint8
    assert site["days"].dtype == np.float32 and np.array_equal(site["days"], days_since_origin(site["dates"]))
    assert set(site["labels"]) == {2018, 2019} and all(v.shape == (48, 48) and v.dtype == np.uint8
                                                      for v in site["labels"].values())
    assert set(site["change"]) == {(2018, 2019)}
    assert site["sun_zenith"].shape == site["sun_azimuth"].shape == (t,)
    assert set(np.unique(site["labels"][2019])) <= {k for k, _ in CLASSES}
    cloudy = np.isin(site["scl"], (8, 9, 11)).mean(axis=(1, 2))
    assert (cloudy > 0.99).sum() >= 3  # fully cloudy dates occur at the default cloudiness


def test_same_seed_same_arrays_and_other_seed_differs(site):
    again = generate_site(48, years=(2018, 2019), rng=7, cloudiness=0.3)
    assert again["dates"] == site["dates"]
    for k in ("dn", "scl", "surface", "parcels"):
        assert np.array_equal(again[k], site[k]), k
    other = generate_site(48, years=(2018, 2019), rng=8, cloudiness=0.3)
    assert other["dates"] != site["dates"] or not np.array_equal(other["dn"], site["dn"])
    assert not np.array_equal(other["parcels"], site["parcels"])


def test_generator_rng_is_accepted_and_deterministic():
    a = generate_site(24, years=(2019,), rng=np.random.default_rng(3))
    b = generate_site(24, years=(2019,), rng=np.random.default_rng(3))
    assert np.array_equal(a["dn"], b["dn"])


def test_rendering_a_chunk_twice_gives_the_same_pixels():
    dates = [dt.date(2019, 1, 1) + dt.timedelta(days=4 * i) for i in range(30)]
    sim = SiteSimulator(32, dates, (2019,), key=(1, 2), cloudiness=0.5)
    sim.chunk = 8  # several chunks
    first = [sim.render(c)["dn"] for c in range(sim.n_chunks)]
    assert sum(len(x) for x in first) == 30
    assert np.array_equal(sim.render(2)["dn"], first[2])


def test_explicit_dates_are_kept_and_years_follow_them():
    dates = [dt.date(2019, 3, 1), dt.date(2019, 3, 7), dt.date(2020, 6, 1)]
    s = generate_site(16, dates, rng=0)
    assert s["dates"] == dates and len(s["dn"]) == 3
    assert set(s["labels"]) == {2019, 2020}


def test_dates_are_irregular_within_the_years_and_differ_between_sites():
    a = draw_dates((2018, 2019), 5, (0, 0))
    b = draw_dates((2018, 2019), 5, (0, 1))
    assert a != b
    for d in (a, b):
        assert all(x.year in (2018, 2019) for x in d)
        gaps = np.diff([x.toordinal() for x in d])
        assert (gaps > 0).all()
        assert len(np.unique(gaps)) >= 3  # not a regular grid
        assert 1 <= np.median(gaps) <= 7 and gaps.max() >= 10  # ≈ 5-day revisit, with holes
        assert 80 <= len(d) <= 300


def test_revisit_controls_the_density_of_dates():
    rng = np.random.default_rng(0)
    dense = acquisition_dates(dt.date(2019, 1, 1), dt.date(2019, 12, 31), 5, rng)
    sparse = acquisition_dates(dt.date(2019, 1, 1), dt.date(2019, 12, 31), 20, rng)
    assert len(sparse) < len(dense) / 2


def test_sun_geometry_matches_a_real_acquisition():
    # the real Flanders patch, 2017-08-04 10:53 UTC: zenith 35.9°, azimuth 155.2°
    z, a = sun_angles([dt.date(2017, 8, 4)])
    assert abs(z[0] - 35.9) < 2.0 and abs(a[0] - 155.2) < 5.0
    zw, _ = sun_angles([dt.date(2017, 12, 21)])
    assert zw[0] > 70  # low winter sun, long shadows


def test_change_mask_is_exactly_labels_differing(site):
    before, after = site["labels"][2018], site["labels"][2019]
    change = site["change"][(2018, 2019)]
    excluded = (before == 0) | (after == 0)
    assert np.array_equal(change == 255, excluded)
    assert np.array_equal(change[~excluded] == 1, (before != after)[~excluded])
    assert set(np.unique(change)) <= {0, 1, 255}


def test_rotation_matrix_is_stochastic_and_rotations_happen():
    m = C.rotation_matrix()
    assert np.allclose(m.sum(axis=1), 1.0) and (m >= 0).all()
    land = make_landscape(128, (2018, 2019, 2020), np.random.default_rng(0))
    crops = np.isin(land.classes[0], C.CROPS)
    changed = (land.classes[1] != land.classes[0])[crops].mean()
    assert 0.4 < changed < 0.95  # most crop fields rotate, some stay (monoculture)
    grass = land.classes[0] == C.GRASS
    assert (land.classes[1][grass] == C.GRASS).mean() > 0.7  # meadows are mostly permanent


def test_landscape_has_many_classes_margins_and_clearcuts():
    seen, cut = set(), False
    for seed in range(6):
        land = make_landscape(96, (2018, 2019, 2020), np.random.default_rng(seed))
        seen |= set(np.unique(land.labels(2019)).tolist())
        cut |= bool((land.classes == C.CLEARCUT).any() & np.isin(land.classes[0], [C.FOREST]).any())
        assert (land.labels(2019) == 0).mean() < 0.35  # margins are thin
    assert len(seen & set(C.CROPS)) >= 8 and {C.GRASS, C.FOREST, C.BUILT} <= seen
    assert cut


def test_bad_options_raise_user_errors():
    with pytest.raises(AliseError, match="cloudiness"):
        generate_site(16, years=(2019,), cloudiness=1.5)
    with pytest.raises(AliseError, match="size"):
        generate_site(4, years=(2019,))
    with pytest.raises(AliseError, match="year"):
        generate_site(16, years=(1990,))
