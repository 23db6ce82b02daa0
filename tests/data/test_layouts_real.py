"""Real-world file layouts, each built from six dates of the real Flanders patch.

Every layout must open with the same dates and the same pixel values (after the offset) as the
shipped ``s2/`` + ``scl/`` folder, and ``alise check`` must accept it; every path that points at
the wrong level must be refused with one line saying what to pass instead.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

from alise.cli import main
from alise.dates import date_from_name
from alise.data import detect_layout, open_source
from alise.errors import AliseError

from .conftest import BANDS, read_tif, write_tif

#: One partly cloudy date (28 % clear) and the five clearest ones.
DATES6 = ("2017-08-14", "2018-06-28", "2018-06-30", "2018-07-05", "2018-07-08", "2018-07-23")
TEN_M = ("B02", "B03", "B04", "B08")
JP2 = {"driver": "JP2OpenJPEG", "QUALITY": "100", "REVERSIBLE": "YES"}  # lossless JPEG 2000, as ESA's


def _compact(d: str) -> str:
    return d.replace("-", "")


def _bands(flanders: Path, d: str) -> np.ndarray:
    return read_tif(flanders / "s2" / f"{d}.tif")  # (10, 64, 64) uint16


def _scl(flanders: Path, d: str) -> np.ndarray:
    return read_tif(flanders / "scl" / f"{d}.tif")  # (1, 64, 64) uint8


def _like(flanders: Path, d: str = DATES6[0]) -> Path:
    return flanders / "s2" / f"{d}.tif"


def _transform20(flanders: Path) -> rasterio.Affine:
    with rasterio.open(_like(flanders)) as src:
        t = src.transform
    return rasterio.Affine(20, 0, t.c, 0, -20, t.f)


def _crs(flanders: Path):
    with rasterio.open(_like(flanders)) as src:
        return src.crs


def _site_extras(flanders: Path, dest: Path) -> None:
    shutil.copy(flanders / "labels.tif", dest / "labels.tif")
    shutil.copy(flanders / "classes.csv", dest / "classes.csv")


# ------------------------------------------------------------------------------- layouts
def esa_names(flanders: Path, dest: Path) -> Path:
    """``s2/S2A_MSIL2A_<sensing>_N0206_R051_T31UDS_<processing>.tif``; processing the next day."""
    for d in DATES6:
        nxt = (dt.date.fromisoformat(d) + dt.timedelta(days=1)).isoformat()
        name = f"S2B_MSIL2A_{_compact(d)}T105031_N0206_R051_T31UDS_{_compact(nxt)}T135420.tif"
        for sub in ("s2", "scl"):
            (dest / sub).mkdir(parents=True, exist_ok=True)
            shutil.copy(flanders / sub / f"{d}.tif", dest / sub / name)
    _site_extras(flanders, dest)
    return dest


def underscores(flanders: Path, dest: Path) -> Path:
    """``s2/S2_YYYY_MM_DD.tif`` and ``scl/SCL_YYYY_MM_DD.tif``."""
    for d in DATES6:
        u = d.replace("-", "_")
        (dest / "s2").mkdir(parents=True, exist_ok=True)
        (dest / "scl").mkdir(parents=True, exist_ok=True)
        shutil.copy(flanders / "s2" / f"{d}.tif", dest / "s2" / f"S2_{u}.tif")
        shutil.copy(flanders / "scl" / f"{d}.tif", dest / "scl" / f"SCL_{u}.tif")
    _site_extras(flanders, dest)
    return dest


def flat_inline_scl(flanders: Path, dest: Path) -> Path:
    """No ``s2/``: ``SITE/YYYY-MM-DD.tif`` with ``SITE/YYYY-MM-DD_SCL.tif`` beside them."""
    dest.mkdir(parents=True)
    for d in DATES6:
        shutil.copy(flanders / "s2" / f"{d}.tif", dest / f"{d}.tif")
        shutil.copy(flanders / "scl" / f"{d}.tif", dest / f"{d}_SCL.tif")
    _site_extras(flanders, dest)
    return dest


def flat_scl_dir(flanders: Path, dest: Path) -> Path:
    """No ``s2/``: ``SITE/T31UDS_YYYYMMDD_L2A.tif`` and ``SITE/scl/YYYYMMDD.tif``."""
    (dest / "scl").mkdir(parents=True)
    for d in DATES6:
        shutil.copy(flanders / "s2" / f"{d}.tif", dest / f"T31UDS_{_compact(d)}_L2A.tif")
        shutil.copy(flanders / "scl" / f"{d}.tif", dest / "scl" / f"{_compact(d)}.tif")
    _site_extras(flanders, dest)
    return dest


def per_band_folders(flanders: Path, dest: Path) -> Path:
    """``s2/YYYY-MM-DD/B02.tif … B12.tif`` at 10 m, ``SCL.tif`` at 20 m (resampled: nearest)."""
    t20, crs = _transform20(flanders), _crs(flanders)
    for d in DATES6:
        x = _bands(flanders, d)
        folder = dest / "s2" / d
        for c, b in enumerate(BANDS):
            write_tif(folder / f"{b}.tif", x[c:c + 1], like=_like(flanders), nodata=0)
        write_tif(folder / "SCL.tif", _scl(flanders, d)[:, ::2, ::2], crs=crs, transform=t20)
    _site_extras(flanders, dest)
    return dest


def per_band_flat(flanders: Path, dest: Path) -> Path:
    """Dated band files side by side: ``SITE/T31UDS_YYYYMMDD_B02.tif`` …, ``SITE/T31UDS_YYYYMMDD_SCL.tif``."""
    for d in DATES6:
        x = _bands(flanders, d)
        for c, b in enumerate(BANDS):
            write_tif(dest / f"T31UDS_{_compact(d)}_{b}.tif", x[c:c + 1], like=_like(flanders), nodata=0)
        write_tif(dest / f"T31UDS_{_compact(d)}_SCL.tif", _scl(flanders, d), like=_like(flanders))
    _site_extras(flanders, dest)
    return dest


MTD = """<?xml version="1.0" encoding="UTF-8"?>
<n1:Level-2A_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd">
  <n1:General_Info>
    <Product_Info>
      <PRODUCT_START_TIME>{date}T10:50:31.024Z</PRODUCT_START_TIME>
      <PROCESSING_LEVEL>Level-2A</PROCESSING_LEVEL>
      <PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE>
    </Product_Info>
    <Product_Image_Characteristics>
      <QUANTIFICATION_VALUES_LIST>
        <BOA_QUANTIFICATION_VALUE unit="none">10000</BOA_QUANTIFICATION_VALUE>
      </QUANTIFICATION_VALUES_LIST>
{offsets}
      <Spectral_Information_List>
{spectral}
      </Spectral_Information_List>
    </Product_Image_Characteristics>
  </n1:General_Info>
</n1:Level-2A_User_Product>
"""
SAFE_BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")


def _mtd(date: str, baseline: str, offset: bool) -> str:
    offsets = ""
    if offset:
        offsets = ("      <BOA_ADD_OFFSET_VALUES_LIST>\n" + "".join(
            f'        <BOA_ADD_OFFSET band_id="{i}">-1000</BOA_ADD_OFFSET>\n' for i in range(13))
            + "      </BOA_ADD_OFFSET_VALUES_LIST>")
    spectral = "\n".join(f'        <Spectral_Information bandId="{i}" physicalBand="{b}"/>'
                         for i, b in enumerate(SAFE_BANDS))
    return MTD.format(date=date, baseline=baseline, offsets=offsets, spectral=spectral)


def write_safe(flanders: Path, dest: Path, d: str, baseline: str) -> Path:
    """One L2A product of date ``d``: JPEG 2000 bands in R10m/R20m, 20 m SCL, MTD_MSIL2A.xml.

    Baseline ≥ 04.00 products store DN + 1000 and declare BOA_ADD_OFFSET = -1000 (as ESA's).
    """
    shift = 1000 if float(baseline) >= 4 else 0
    c = _compact(d)
    name = f"S2A_MSIL2A_{c}T105031_N{baseline.replace('.', '')}_R051_T31UDS_{c}T130012.SAFE"
    safe = dest / name
    img = safe / "GRANULE" / f"L2A_T31UDS_A016234_{c}T105435" / "IMG_DATA"
    x = _bands(flanders, d).astype(np.int32) + shift
    t20, crs = _transform20(flanders), _crs(flanders)
    stem = f"T31UDS_{c}T105031"
    for k, b in enumerate(BANDS):
        x10, x20 = x[k:k + 1].astype(np.uint16), x[k:k + 1, ::2, ::2].astype(np.uint16)
        if b in TEN_M:
            write_tif(img / "R10m" / f"{stem}_{b}_10m.jp2", x10, like=_like(flanders), **JP2)
        if b != "B08":  # R20m holds every band but B08 (B02 too: the 10 m one must win)
            write_tif(img / "R20m" / f"{stem}_{b}_20m.jp2", x20, crs=crs, transform=t20, **JP2)
    write_tif(img / "R20m" / f"{stem}_SCL_20m.jp2", _scl(flanders, d)[:, ::2, ::2], crs=crs, transform=t20, **JP2)
    write_tif(img / "R10m" / f"{stem}_TCI_10m.jp2", x[[2, 1, 0]].clip(0, 255).astype(np.uint8),
              like=_like(flanders), **JP2)  # ignored
    (safe / "MTD_MSIL2A.xml").write_text(_mtd(d, baseline, offset=shift > 0))
    return safe


def safe_products(flanders: Path, dest: Path) -> Path:
    """A folder of six .SAFE products: three reprocessed (baseline 05.00, +1000 offset), three 02.06."""
    dest.mkdir(parents=True)
    for i, d in enumerate(DATES6):
        write_safe(flanders, dest, d, "05.00" if i % 2 else "02.06")
    _site_extras(flanders, dest)
    return dest


def file_list(flanders: Path, dest: Path) -> Path:
    """``series.csv``: three rows point at the shipped files (absolute), three at renamed copies
    (relative, one with an empty date read from its name); masks in the ``mask`` column."""
    (dest / "img").mkdir(parents=True)
    rows = ["path,date,mask"]
    for i, d in enumerate(DATES6):
        if i < 3:
            rows.append(f"{flanders / 's2' / f'{d}.tif'},{d},{flanders / 'scl' / f'{d}.tif'}")
        else:
            shutil.copy(flanders / "s2" / f"{d}.tif", dest / "img" / f"scene_{_compact(d)}.tif")
            shutil.copy(flanders / "scl" / f"{d}.tif", dest / "img" / f"cloud_{i}.tif")
            rows.append(f"img/scene_{_compact(d)}.tif,{'' if i == 5 else _compact(d)},img/cloud_{i}.tif")
    (dest / "series.csv").write_text("\n".join(rows[:1] + rows[:0:-1]) + "\n")  # rows in reverse date order
    _site_extras(flanders, dest)
    return dest / "series.csv"


LAYOUTS = {"esa-names": (esa_names, "folder"), "yyyy_mm_dd": (underscores, "folder"),
           "flat, SCL beside": (flat_inline_scl, "flat"), "flat, scl/": (flat_scl_dir, "flat"),
           "per-band folders": (per_band_folders, "folder"), "per-band flat": (per_band_flat, "flat"),
           "safe products": (safe_products, "safe"), "csv list": (file_list, "list")}


@pytest.fixture(scope="module")
def reference(flanders, tmp_path_factory):
    """The six dates read from a plain copy of the shipped folder."""
    site = tmp_path_factory.mktemp("ref") / "site"
    for sub in ("s2", "scl"):
        (site / sub).mkdir(parents=True)
        for d in DATES6:
            shutil.copy(flanders / sub / f"{d}.tif", site / sub / f"{d}.tif")
    _site_extras(flanders, site)
    return open_source(site).read()


def _up2_bilinear(a: np.ndarray) -> np.ndarray:
    """(h, w) → (2h, 2w) bilinear on pixel centres, edges clamped (an independent reference for GDAL)."""
    out = a.astype(np.float64)
    for axis in (0, 1):
        n = out.shape[axis]
        u = (np.arange(2 * n) + 0.5) / 2 - 0.5
        lo = np.floor(u).astype(int)
        f = u - lo
        shape = [1, 1]
        shape[axis] = -1
        f = f.reshape(shape)
        out = np.take(out, np.clip(lo, 0, n - 1), axis) * (1 - f) + np.take(out, np.clip(lo + 1, 0, n - 1), axis) * f
    return out


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_layout_reads_like_the_shipped_folder(layout, flanders, reference, tmp_path, capsys):
    build, kind = LAYOUTS[layout]
    path = build(flanders, tmp_path / "series")
    assert detect_layout(path) == kind
    src = open_source(path)
    assert src.layout == kind
    assert [d.isoformat() for d in src.dates] == list(DATES6)
    assert (src.grid.height, src.grid.width) == (64, 64) and src.grid.crs.to_epsg() == 32631
    raw = src.read()
    if layout == "safe products":
        np.testing.assert_array_equal(src.offsets(), [0, 1000, 0, 1000, 0, 1000])
        ten = [BANDS.index(b) for b in TEN_M]
        twenty = [c for c in range(10) if c not in ten]
        np.testing.assert_array_equal(raw.dn[:, ten], reference.dn[:, ten])  # 10 m: exact, offset removed
        for c in twenty:  # 20 m: bilinear onto the 10 m grid (within GDAL's rounding to integer DN)
            for t in range(len(DATES6)):
                expect = _up2_bilinear(reference.dn[t, c, ::2, ::2])
                assert np.abs(raw.dn[t, c] - expect).max() <= 1.0, (BANDS[c], t)
        assert np.abs(raw.dn[:, twenty] - reference.dn[:, twenty]).max() > 0  # really interpolated
        part = src.read((10, 20, 16, 24), dates=[1, 4])  # windowed resampling = the full read's window
        np.testing.assert_array_equal(part.dn, raw.dn[[1, 4], :, 10:26, 20:44])
        assert "resampled (bilinear)" in src.band_order[0]
    else:
        np.testing.assert_array_equal(src.offsets(), 0)
        np.testing.assert_array_equal(raw.dn, reference.dn)
    np.testing.assert_array_equal(raw.valid, reference.valid)  # SCL read (20 m: nearest) on the 10 m grid
    np.testing.assert_array_equal(raw.labels, reference.labels)
    assert main(["check", str(path)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"({kind} layout)" in out and "6, 2017-08-14 → 2018-07-23" in out


def test_cli_in_fresh_processes(flanders, tmp_path):
    """``python -m alise.cli check`` from scratch: nothing hides behind an import done by the tests."""
    safe = safe_products(flanders, tmp_path / "safe")
    csv_list = file_list(flanders, tmp_path / "list")
    for argv in (["check", str(safe)], ["check", "--files", str(csv_list)],
                 ["check", str(next(safe.glob("*.SAFE")))]):
        r = subprocess.run([sys.executable, "-m", "alise.cli", *argv], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert "layout)" in r.stdout, r.stdout


def test_date_pattern_overrides_the_rules(flanders, tmp_path, capsys):
    site = tmp_path / "ddmmyyyy"
    (site / "scl").mkdir(parents=True)
    for d in DATES6:
        y, m, dd = d.split("-")
        shutil.copy(flanders / "s2" / f"{d}.tif", site / f"img_{dd}{m}{y}.tif")
        shutil.copy(flanders / "scl" / f"{d}.tif", site / "scl" / f"img_{dd}{m}{y}.tif")
    pattern = r"img_(?P<day>\d\d)(?P<month>\d\d)(?P<year>\d{4})\.tif$"
    src = open_source(site, date_pattern=pattern)
    assert [d.isoformat() for d in src.dates] == list(DATES6)
    assert main(["check", str(site), "--date-pattern", pattern]) == 0
    capsys.readouterr()
    assert main(["check", str(site)]) == 2  # DDMMYYYY is no built-in rule
    assert "no Sentinel-2 series found" in capsys.readouterr().err
    (site / "img_14082017.tif").rename(site / "img_140817.tif")
    assert main(["check", str(site), "--date-pattern", pattern]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'img_140817'" in err[0] and "does not match --date-pattern" in err[0], err
    assert main(["check", str(site), "--date-pattern", "img_(\\d+)"]) == 2
    assert "needs the named groups" in capsys.readouterr().err


@pytest.mark.parametrize("name, date", [
    ("S2A_MSIL2A_20170804T105031_N0205_R051_T31UFS_20170804T105435.tif", "2017-08-04"),
    ("S2B_MSIL2A_20170804T105031_N0205_R051_T31UFS_20170807T105435.SAFE", "2017-08-04"),
    ("S2_2017_08_04.tif", "2017-08-04"), ("T31UFS_20180601_B02.tif", "2018-06-01"),
    ("20180601.tif", "2018-06-01"), ("2018-06-01.tif", "2018-06-01"), ("2018-06-01", "2018-06-01"),
    ("T31UFS_20170804T105031_B02_10m.jp2", "2017-08-04"), ("site_2018-06-01_2018-06-01.tif", "2018-06-01"),
])
def test_dates_in_names(name, date):
    assert date_from_name(name).isoformat() == date


@pytest.mark.parametrize("name, match", [
    ("S2_20180601_20180615.tif", "2 different dates .2018-06-01, 2018-06-15."),
    ("scene_1.tif", "cannot parse date 'scene_1' .x/scene_1.tif.: no date in the name"),
    ("id_12345678.tif", "no date in the name"), ("2018-13-01.tif", "no date in the name"),
])
def test_names_without_one_date_are_errors(name, match):
    with pytest.raises(AliseError, match=match):
        date_from_name(name, f"x/{name}")


# ------------------------------------------------------------------------------- refused paths
def _bad_paths(flanders: Path, tmp: Path) -> dict:
    site = esa_names(flanders, tmp / "site")
    pb = per_band_folders(flanders, tmp / "pb")
    flat = flat_inline_scl(flanders, tmp / "flat")
    safes = safe_products(flanders, tmp / "safes")
    product = next(safes.glob("*.SAFE"))
    r10 = next(product.glob("GRANULE/*/IMG_DATA/R10m"))
    deep = tmp / "a" / "b" / "c" / "d"
    shutil.copytree(tmp / "flat", deep / "flat")
    lone = tmp / "lone"
    lone.mkdir()
    shutil.copy(_like(flanders), lone / "image.tif")
    zips = tmp / "zips"
    zips.mkdir()
    (zips / "S2A_MSIL2A_20180628T105031_N0206_R051_T31UDS_20180628T135420.zip").write_bytes(b"PK")
    return {
        "the s2/ folder": (site / "s2", f"this is the image folder of a site; pass its parent {site}$"),
        "the scl/ folder": (site / "scl", f"SCL mask folder of a site; pass its parent {site}$"),
        "one image in s2/": (next((site / "s2").iterdir()),
                             f"a single image of a time series; pass the series folder {site}$"),
        "a date folder": (pb / "s2" / DATES6[1], f"this is one date of the series pb; pass {pb}$"),
        "one band file": (pb / "s2" / DATES6[1] / "B02.tif", f"pass the series folder {pb}$"),
        "one flat image": (flat / f"{DATES6[0]}.tif", f"pass the series folder {flat}$"),
        "the labels": (flat / "labels.tif", f"the labels of a site; pass the series folder {flat}$"),
        "the classes table": (flat / "classes.csv", f"a table of the series flat; pass its folder {flat}$"),
        "inside a .SAFE": (r10, f"inside the Sentinel-2 product {product.name}; pass {product} .one date. or {safes} "),
        "a .jp2 of a .SAFE": (next(r10.glob("*_B02_10m.jp2")), f"inside the Sentinel-2 product {product.name}"),
        "too high": (tmp / "a", f"no series within 3 levels, but {deep / 'flat'} .4 levels down. is one"),
        "a lone image": (lone / "image.tif", "alise reads a series: put one image per date in a folder"),
        "zipped products": (zips, "zipped Sentinel-2 products .* unzip them"),
        "a zipped product": (next(zips.iterdir()), "a zipped Sentinel-2 product; unzip it"),
    }


def test_wrong_level_gives_one_line_saying_what_to_pass(flanders, tmp_path, capsys):
    import re

    cases = _bad_paths(flanders, tmp_path)
    for case, (path, expected) in cases.items():
        capsys.readouterr()
        code = main(["check", str(path)])
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        assert code == 2 and len(err) == 1, (case, err)
        assert err[0].startswith("alise check: error: ") and re.search(expected, err[0]), (case, err[0])


def test_bad_lists_and_products_name_the_problem(flanders, tmp_path):
    csv_list = file_list(flanders, tmp_path / "list")
    text = csv_list.read_text().splitlines()
    csv_list.write_text("\n".join(text[:2] + [text[2].rsplit(",", 1)[0] + ","] + text[3:]) + "\n")
    with pytest.raises(AliseError, match="row 3 .* has no mask while others have one"):
        open_source(csv_list)
    csv_list.write_text("\n".join(text[:2] + ["img/missing.tif,2018-01-01,"]) + "\n")
    with pytest.raises(AliseError, match=r"series.csv:3: .*missing.tif: no such file"):
        open_source(csv_list)
    product = write_safe(flanders, tmp_path / "p", DATES6[1], "05.00")
    next(product.glob("GRANULE/*/IMG_DATA/R20m/*_B11_20m.jp2")).unlink()
    with pytest.raises(AliseError, match=r"no B11 image in GRANULE"):
        open_source(product)
    l1c = tmp_path / "S2A_MSIL1C_20180628T105031_N0206_R051_T31UDS_20180628T112233.SAFE"
    l1c.mkdir()
    with pytest.raises(AliseError, match="Level-1C"):
        open_source(l1c)
