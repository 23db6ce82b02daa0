"""The folder-of-dates reader on the real data and on edited copies of it."""

from __future__ import annotations

import datetime as dt
import glob
import os

import numpy as np
import pytest
import rasterio

from alise.data import FolderSource, change_mask, open_source, open_sources
from alise.errors import AliseError
from alise.normalise import NormStats

from .conftest import read_tif, write_tif

CLEAR5 = ("2018-06-28", "2018-06-30", "2018-07-05", "2018-07-08", "2018-07-23")  # clearest real dates
BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")


def test_real_folder_matches_readme_snippet(flanders):
    """Golden values: the README's plain rasterio recipe gives the same DN and clear mask."""
    src = open_source(flanders)
    assert isinstance(src, FolderSource) and src.n_dates == 118
    assert (src.dates[0], src.dates[-1]) == (dt.date(2017, 8, 4), dt.date(2018, 11, 27))
    assert src.grid.crs.to_epsg() == 32631 and (src.grid.height, src.grid.width) == (64, 64)
    assert src.grid.resolution == (10.0, 10.0) and src.bands == BANDS
    assert src.class_names[2] == "maize" and src.ignore_labels == (0,) and src.fold is None
    raw = src.read()
    files = sorted(glob.glob(os.path.join(flanders, "s2", "*.tif")))
    x = np.stack([read_tif(f) for f in files]).astype(np.float32)
    scl = np.stack([read_tif(f.replace(f"{os.sep}s2{os.sep}", f"{os.sep}scl{os.sep}"))[0] for f in files])
    np.testing.assert_array_equal(raw.dn, x)  # no pixel is 0 (nodata) and no offset here
    np.testing.assert_array_equal(raw.valid, np.isin(scl, [4, 5, 6]))
    assert raw.valid.mean() == pytest.approx(0.397, abs=5e-4)  # README: mean clear fraction
    np.testing.assert_array_equal(raw.labels, read_tif(flanders / "labels.tif")[0].astype(np.int64))
    np.testing.assert_array_equal(src.offsets(), 0)
    assert int((src.clear_fractions() == 0).sum()) == 47  # README: 47 dates with no clear pixel


def test_window_and_date_selection_equal_slices_of_full_read(flanders):
    src = open_source(flanders)
    full = src.read()
    part = src.read((10, 20, 32, 16), dates=[3, 7, 8])
    np.testing.assert_array_equal(part.dn, full.dn[[3, 7, 8], :, 10:42, 20:36])
    np.testing.assert_array_equal(part.valid, full.valid[[3, 7, 8], 10:42, 20:36])
    np.testing.assert_array_equal(part.labels, full.labels[10:42, 20:36])
    assert part.days.tolist() == full.days[[3, 7, 8]].tolist()
    assert src.read(dates=slice(5, 9)).dn.shape == (4, 10, 64, 64)
    with pytest.raises(AliseError, match="outside"):
        src.read((60, 0, 8, 8))


def test_window_read_touches_only_the_window(tmp_path):
    """A tiled file whose lower-right tile is corrupt: the upper-left window still reads."""
    rng = np.random.default_rng(0)
    data = rng.integers(100, 3000, (10, 128, 128)).astype(np.uint16)
    f = write_tif(tmp_path / "site" / "s2" / "2018-05-01.tif", data, crs="EPSG:32631",
                  transform=rasterio.transform.from_origin(500000, 5600000, 10, 10), tiled=True,
                  blockxsize=64, blockysize=64, compress="deflate", interleave="pixel", nodata=0)
    with rasterio.open(f) as s:
        off = int(s.get_tag_item("BLOCK_OFFSET_1_1", "TIFF", bidx=1))
        size = int(s.get_tag_item("BLOCK_SIZE_1_1", "TIFF", bidx=1))
    with open(f, "r+b") as fh:
        fh.seek(off)
        fh.write(b"\xff" * size)
    src = FolderSource(tmp_path / "site", offset=0)
    np.testing.assert_array_equal(src.read((0, 0, 64, 64)).dn[0], data[:, :64, :64])
    with pytest.raises(AliseError, match="2018-05-01.tif"):
        src.read()


def test_band_descriptions_in_another_order_are_reordered(copy_site, rewrite):
    site = copy_site(dates=CLEAR5[:2])
    before = open_source(site).read().dn
    rewrite(site, CLEAR5[0], lambda d: d[::-1], descriptions=BANDS[::-1])
    src = open_source(site)
    assert src.band_order[0] == "reordered by name"
    np.testing.assert_array_equal(src.read().dn, before)


@pytest.mark.parametrize("fn, desc, match", [
    (lambda d: d[:9], None, "9 bands, expected 10"),
    (lambda d: d, ("B02",) * 10, "missing"),
])
def test_bad_bands_name_the_file(copy_site, rewrite, fn, desc, match):
    site = copy_site(dates=CLEAR5[:2])
    rewrite(site, CLEAR5[1], fn, descriptions=desc)
    with pytest.raises(AliseError, match=match) as e:
        open_source(site)
    assert f"{CLEAR5[1]}.tif" in str(e.value)


def test_plus_1000_offset_rules(copy_site, rewrite):
    new = [f"2022-07-0{i + 1}" for i in range(5)]
    site = copy_site()
    ref = open_source(site).read().dn
    for d, n in zip(CLEAR5, new):  # 2022 dates with the offset → subtracted
        rewrite(site, d, lambda x: x + 1000, new_name=f"{n}.tif")
    src = open_source(site)
    assert src.offsets().tolist() == [1000] * 5 and src.offset_decisions()[0].warning
    np.testing.assert_array_equal(src.read().dn, ref)

    site2 = copy_site("site2")  # 2022 dates without the offset → reported, not corrected
    for d, n in zip(CLEAR5, new):
        rewrite(site2, d, lambda x: x, new_name=f"{n}.tif")
    src2 = open_source(site2)
    assert src2.offsets().tolist() == [0] * 5 and "no +1000 offset" in src2.offset_decisions()[0].warning

    site3 = copy_site("site3")  # pre-2022 dates with offset-looking values → error, unless told
    for d in CLEAR5:
        rewrite(site3, d, lambda x: x + 1000)
    with pytest.raises(AliseError, match="before 2022-01-25"):
        open_source(site3).read()
    np.testing.assert_array_equal(open_source(site3, offset=1000).read().dn, ref)


def test_boa_add_offset_tag_is_authoritative_and_checked(copy_site, rewrite):
    site = copy_site()
    ref = open_source(site).read().dn
    for d in CLEAR5:
        rewrite(site, d, lambda x: x + 1000, tags={"BOA_ADD_OFFSET": "-1000"})
    src = open_source(site)
    assert src.offset_decisions()[0].how == "tag"
    np.testing.assert_array_equal(src.read().dn, ref)
    bad = copy_site("bad")
    for d in CLEAR5:
        rewrite(bad, d, lambda x: x, tags={"BOA_ADD_OFFSET": "-1000"})
    with pytest.raises(AliseError, match="tagged BOA_ADD_OFFSET"):
        open_source(bad).offsets()


def test_float_unit_reflectance_is_refused(copy_site, rewrite):
    site = copy_site(dates=CLEAR5[:2])
    for d in CLEAR5[:2]:
        rewrite(site, d, lambda x: (x / 10000).astype(np.float32), nodata=None)
    with pytest.raises(AliseError, match="multiply the data by 10000"):
        open_source(site).read()


def test_nan_inf_and_zero_are_invalid(copy_site, rewrite):
    site = copy_site(dates=CLEAR5[:2])

    def spoil(x):
        x = x.astype(np.float32)
        x[0, 0, 0], x[3, 1, 1], x[5, 2, 2] = np.nan, np.inf, 0
        return x

    rewrite(site, CLEAR5[0], spoil, nodata=None)
    raw = open_source(site).read()
    assert not raw.valid[0, 0, 0] and not raw.valid[0, 1, 1] and not raw.valid[0, 2, 2]
    assert np.isnan(raw.dn[0, 0, 0, 0]) and np.isnan(raw.dn[0, 3, 1, 1]) and np.isnan(raw.dn[0, 5, 2, 2])
    assert np.isfinite(raw.dn[0, 1, 0, 0])  # other bands of the pixel are kept
    sits = raw.to_sits(NormStats.paper())
    assert sits.x.isfinite().all() and not sits.valid_pixels[0, 0, 0]


@pytest.mark.parametrize("names, match", [
    (("2018-05-01.tif", "20180501.tif"), "duplicate date 2018-05-01"),
    (("2018-05-01.tif", "may-first.tif"), "cannot parse date 'may-first'"),
])
def test_bad_file_names(copy_site, names, match):
    site = copy_site(dates=CLEAR5[:2], labels=False)
    for d, n in zip(CLEAR5[:2], names):
        (site / "s2" / f"{d}.tif").rename(site / "s2" / n)
        (site / "scl" / f"{d}.tif").rename(site / "scl" / n)
    with pytest.raises(AliseError, match=match):
        open_source(site)


@pytest.mark.parametrize("what", ["s2", "scl", "labels"])
def test_grid_mismatch_names_the_file(copy_site, what):
    site = copy_site(dates=CLEAR5[:2])
    f = site / "labels.tif" if what == "labels" else site / what / f"{CLEAR5[1]}.tif"
    data = read_tif(f)
    with rasterio.open(f) as s:
        t = s.transform
    write_tif(f, data, crs="EPSG:32631", transform=rasterio.Affine(10, 0, t.c + 20, 0, -10, t.f),
              descriptions=BANDS if what == "s2" else None)
    with pytest.raises(AliseError, match="grid") as e:
        open_source(site)
    assert f.name in str(e.value)


def test_binary_mask_and_configurable_scl(copy_site):
    site = copy_site(dates=CLEAR5[:2])
    assert open_source(site, clear_scl={4, 5, 6, 7}).read().valid.sum() >= open_source(site).read().valid.sum()
    for d in CLEAR5[:2]:
        (site / "scl" / f"{d}.tif").unlink()
    (site / "scl").rmdir()
    mask = np.zeros((1, 64, 64), np.uint8)
    mask[0, :10] = 1  # 1 = cloudy
    for d in CLEAR5[:2]:
        write_tif(site / "mask" / f"{d}.tif", mask, like=site / "s2" / f"{d}.tif")
    valid = open_source(site).read().valid
    assert not valid[:, :10].any() and valid[:, 10:].all()


def test_dates_filter_per_year_labels_and_change(copy_site):
    site = copy_site()
    src = open_source(site, start="2018-07-01", end=dt.date(2018, 7, 10))
    assert [d.isoformat() for d in src.dates] == ["2018-07-05", "2018-07-08"]
    lab = read_tif(site / "labels.tif")
    write_tif(site / "labels" / "2019.tif", lab + 1, like=site / "labels.tif")
    chg = np.full((1, 64, 64), 255, np.uint8)
    chg[0, :5] = 1
    write_tif(site / "change" / "2018_2019.tif", chg, like=site / "labels.tif")
    src = open_source(site)
    np.testing.assert_array_equal(src.labels(year=2019), lab[0] + 1)
    np.testing.assert_array_equal(src.labels((0, 0, 4, 4)), lab[0, :4, :4])
    np.testing.assert_array_equal(change_mask(src, 2018, 2019, (0, 0, 8, 8)), chg[0, :8, :8])
    assert change_mask(src, 2019, 2020) is None
    with pytest.raises(AliseError, match="label years"):
        src.labels(year=2017)


def test_roots_expand_to_one_source_per_site(copy_site, tmp_path):
    copy_site("out/site_000", dates=CLEAR5[:2])
    copy_site("out/site_001", dates=CLEAR5[2:])
    (tmp_path / "out" / "classes.csv").write_text("id,name\n0,none\n")
    sources = open_sources(tmp_path / "out")
    assert [s.name for s in sources] == ["site_000", "site_001"] and [s.n_dates for s in sources] == [2, 3]
    with pytest.raises(AliseError, match="holds 2 series"):
        open_source(tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AliseError, match="no Sentinel-2 series"):
        open_sources(tmp_path / "empty")
    with pytest.raises(AliseError, match="no such file"):
        open_sources(tmp_path / "missing")
