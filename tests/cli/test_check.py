"""``alise check`` end to end: the real folder, then one bad input each (made from a copy of it)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from alise.cli import main

CLEAR5 = ("2018-06-28", "2018-06-30", "2018-07-05", "2018-07-08", "2018-07-23")  # clearest real dates
BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")


def _copy(flanders: Path, dest: Path, dates=CLEAR5) -> Path:
    for sub in ("s2", "scl"):
        (dest / sub).mkdir(parents=True)
        for d in dates:
            shutil.copy(flanders / sub / f"{d}.tif", dest / sub / f"{d}.tif")
    shutil.copy(flanders / "labels.tif", dest / "labels.tif")
    shutil.copy(flanders / "classes.csv", dest / "classes.csv")
    return dest


def _rewrite(f: Path, fn, dest: Path | None = None, **kw) -> None:
    """Replace raster ``f`` by ``fn(data)`` (same georeferencing unless ``transform`` given), maybe renamed."""
    with rasterio.open(f) as src:
        data, prof, desc = src.read(), src.profile, src.descriptions
    out = np.asarray(fn(data))
    prof.update(count=out.shape[0], dtype=out.dtype, **{k: v for k, v in kw.items() if k != "descriptions"})
    f.unlink()
    with rasterio.open(dest or f, "w", **prof) as dst:
        dst.write(out)
        d = kw.get("descriptions", desc if out.shape[0] == len(desc) else None)
        if d:
            dst.descriptions = tuple(d)


def _s2(site: Path, d: str) -> Path:
    return site / "s2" / f"{d}.tif"


def _shift(t):
    return rasterio.Affine(t.a, t.b, t.c + 20, t.d, t.e, t.f)


def _redate(site: Path, fn, year: str = "2022") -> None:
    """Move every date to ``year`` (keeping month/day) with values ``fn(data)``."""
    for d in CLEAR5:
        new = year + d[4:]
        _rewrite(_s2(site, d), fn, site / "s2" / f"{new}.tif")
        (site / "scl" / f"{d}.tif").rename(site / "scl" / f"{new}.tif")


def _truncate(site):
    f = _s2(site, CLEAR5[2])
    f.write_bytes(f.read_bytes()[:300])


def _grid(site, f):
    with rasterio.open(f) as s:
        t = s.transform
    _rewrite(f, lambda x: x, transform=_shift(t))


def _never_clear(site):
    for d in CLEAR5:
        _rewrite(site / "scl" / f"{d}.tif", lambda x: np.full_like(x, 9))


def _rename(site, old, new):
    _s2(site, old).rename(site / "s2" / new)
    (site / "scl" / f"{old}.tif").rename(site / "scl" / new)


BAD = {
    "empty folder": (lambda s: [shutil.rmtree(s), s.mkdir()], "no Sentinel-2 series found"),
    "truncated GeoTIFF": (_truncate, f"{CLEAR5[2]}.tif"),
    "wrong band count": (lambda s: _rewrite(_s2(s, CLEAR5[1]), lambda x: x[:8]), f"{CLEAR5[1]}.tif: 8 bands, expected 10"),
    "float reflectance 0-1": (lambda s: [_rewrite(_s2(s, d), lambda x: (x / 1e4).astype(np.float32)) for d in CLEAR5],
                              "multiply the data by 10000"),
    "pre-2022 +1000 offset": (lambda s: [_rewrite(_s2(s, d), lambda x: x + 1000) for d in CLEAR5], "before 2022-01-25"),
    "duplicate dates": (lambda s: shutil.copy(_s2(s, CLEAR5[0]), s / "s2" / "20180628.tif"), "duplicate date 2018-06-28"),
    "unparseable date": (lambda s: _rename(s, CLEAR5[0], "scene_1.tif"), "cannot parse date 'scene_1'"),
    "grid differs between dates": (lambda s: _grid(s, _s2(s, CLEAR5[3])), f"{CLEAR5[3]}.tif: grid"),
    "mask on another grid": (lambda s: _grid(s, s / "scl" / f"{CLEAR5[4]}.tif"), "scl grid"),
    "labels on another grid": (lambda s: _grid(s, s / "labels.tif"), "labels.tif: labels grid"),
    "never clear": (_never_clear, "no clear pixel on any of the 5 dates"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_exit_2(case, flanders, tmp_path, capsys):
    spoil, expected = BAD[case]
    site = _copy(flanders, tmp_path / "site")
    spoil(site)
    code = main(["check", str(site)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("alise check: error:") and expected in err[0], err
    assert "Traceback" not in err[0]


GOOD = {
    "band descriptions in another order": (
        lambda s: _rewrite(_s2(s, CLEAR5[0]), lambda x: x[::-1], descriptions=BANDS[::-1]), "reordered by name"),
    "2022 dates with the offset": (lambda s: _redate(s, lambda x: x + 1000), "1000 DN subtracted (values"),
    "2022 dates without the offset": (lambda s: _redate(s, lambda x: x), "show no +1000 offset"),
    "NaN and inf": (lambda s: _rewrite(_s2(s, CLEAR5[0]), lambda x: np.where(
        np.arange(64)[None, :, None] < 2, np.nan, np.where(np.arange(64) < 1, np.inf, x)).astype(np.float32), nodata=None),
        "1 date(s) have nodata pixels (0, NaN or inf; treated as invalid), e.g. 2018-06-28 (4.6%)"),
    "single date": (lambda s: [_s2(s, d).unlink() for d in CLEAR5[1:]], "only one date"),
}


@pytest.mark.parametrize("case", list(GOOD))
def test_questionable_input_is_reported(case, flanders, tmp_path, capsys):
    change, expected = GOOD[case]
    site = _copy(flanders, tmp_path / "site")
    change(site)
    assert main(["check", str(site)]) == 0, capsys.readouterr().err
    assert expected in capsys.readouterr().out


@pytest.mark.slow
def test_check_real_folder_text_and_json(flanders, capsys):
    assert main(["check", str(flanders)]) == 0
    out = capsys.readouterr().out
    assert "118, 2017-08-04 → 2018-11-27 (480 days)" in out
    assert "EPSG:32631" in out and "10 m pixels" in out and "47 fully cloudy" in out
    assert "2017-12-12 (12%), 2018-09-23 (99%)" in out  # SCL 11 that is bright cloud (data README)
    assert "SCL 7 (unclassified)" in out and "76% of all SCL 7" in out
    assert main(["check", str(flanders), "--json", "--clear-scl", "4,5,6,7"]) == 0
    (s,) = json.loads(capsys.readouterr().out)["sources"]
    assert (s["n_dates"], s["first_date"], s["last_date"]) == (118, "2017-08-04", "2018-11-27")
    assert s["grid"]["crs"] == "EPSG:32631" and s["bands"] == list(BANDS)
    assert {c["id"]: c["pixels"] for c in s["labels"]["classes"]} == {0: 1860, 2: 1249, 5: 31, 6: 25, 7: 96, 9: 835}
    assert not any("SCL 7" in w for w in s["warnings"])  # 7 counted clear: no warning
    assert s["offset"][0]["subtracted"] == 0


def test_check_bad_option_and_date_range(flanders, capsys):
    assert main(["check", str(flanders), "--clear-scl", "4,x"]) == 2
    assert "--clear-scl" in capsys.readouterr().err
    assert main(["check", str(flanders), "--start", "2018-06-01", "--end", "2018-06-30"]) == 0
    assert "→ 2018-06-30" in capsys.readouterr().out
