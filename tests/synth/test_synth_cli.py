"""``alise synth`` end to end: the folder layout on disk, read back with rasterio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from alise.cli import main
from alise.normalise import S2_BANDS
from alise.synth import generate_site, write_synthetic
from alise.synth.classes import classes_csv

ARGS = ["--sites", "2", "--size", "24", "--years", "2018,2019", "--revisit", "15", "--seed", "4"]


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("synth") / "data"
    assert main(["synth", str(path), *ARGS]) == 0
    return path


def _read(path: Path):
    with rasterio.open(path) as src:
        return src.read(), src.profile, src.descriptions, src.tags()


def test_layout(out):
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "classes.csv", "site_000", "site_001"]
    assert (out / "classes.csv").read_text() == classes_csv()
    for site in ("site_000", "site_001"):
        root = out / site
        s2 = sorted(p.name for p in (root / "s2").glob("*.tif"))
        assert s2 and s2 == sorted(p.name for p in (root / "scl").glob("*.tif"))
        assert sorted(p.name for p in (root / "labels").iterdir()) == ["2018.tif", "2019.tif"]
        assert [p.name for p in (root / "change").iterdir()] == ["2018_2019.tif"]
        assert (root / "classes.csv").read_text() == classes_csv()
        assert (root / "labels.tif").read_bytes() == (root / "labels" / "2019.tif").read_bytes()
        assert len((root / "dates.csv").read_text().splitlines()) == len(s2) + 1
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary left behind
    readme = (out / "README.md").read_text()
    assert "--seed 4" in readme and "winter_wheat" in readme


def test_rasters_match_the_real_data_conventions(out):
    root = out / "site_000"
    first = sorted((root / "s2").glob("*.tif"))[0]
    dn, prof, desc, tags = _read(first)
    assert dn.shape == (10, 24, 24) and prof["dtype"] == "uint16" and prof["nodata"] == 0
    assert desc == S2_BANDS and tags["DATE"] == first.stem and prof["compress"] == "deflate"
    assert {"SUN_ZENITH", "SUN_AZIMUTH", "ACQUISITION_TIME_UTC"} <= set(tags)
    assert prof["crs"].to_epsg() == 32631 and prof["transform"].a == 10 and prof["transform"].e == -10
    scl, sprof, _, _ = _read(root / "scl" / first.name)
    assert scl.shape == (1, 24, 24) and sprof["dtype"] == "uint8" and sprof["nodata"] == 0
    assert sprof["transform"] == prof["transform"]
    lab, lprof, _, ltags = _read(root / "labels.tif")
    assert lprof["dtype"] == "uint8" and lprof["nodata"] is None and "CLASSES" in ltags
    chg, cprof, _, _ = _read(root / "change" / "2018_2019.tif")
    l18, _, _, _ = _read(root / "labels" / "2018.tif")
    assert cprof["nodata"] == 255
    both = (l18 != 0) & (lab != 0)
    assert np.array_equal(chg[both] == 1, (l18 != lab)[both]) and (chg[~both] == 255).all()


def test_sites_differ_and_do_not_overlap(out):
    bounds, dates = [], []
    for site in ("site_000", "site_001"):
        first = sorted((out / site / "s2").glob("*.tif"))
        with rasterio.open(first[0]) as src:
            bounds.append(src.bounds)
        dates.append([p.stem for p in first])
    a, b = bounds
    assert a.right <= b.left or b.right <= a.left or a.top <= b.bottom or b.top <= a.bottom
    assert dates[0] != dates[1]


def test_files_hold_what_generate_site_returns(out):
    root = out / "site_001"
    files = sorted((root / "s2").glob("*.tif"))
    s = generate_site(24, [__import__("datetime").date.fromisoformat(p.stem) for p in files], years=(2018, 2019),
                      rng=(4, 1))
    dn, *_ = _read(files[3])
    assert np.array_equal(dn, s["dn"][3])
    lab, *_ = _read(root / "labels" / "2018.tif")
    assert np.array_equal(lab[0], s["labels"][2018])


def test_same_seed_same_files(out, tmp_path):
    again = tmp_path / "again"
    assert main(["synth", str(again), *ARGS]) == 0
    names = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert names == sorted(str(p.relative_to(again)) for p in again.rglob("*") if p.is_file())
    for n in names:
        assert (out / n).read_bytes() == (again / n).read_bytes(), n


def test_existing_output_is_refused_in_one_line(out, capsys):
    before = sorted(out.rglob("*"))
    assert main(["synth", str(out), *ARGS]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("alise synth: error:") and "--overwrite" in err and len(err.splitlines()) == 1
    assert sorted(out.rglob("*")) == before


def test_overwrite_and_start_end(tmp_path, capsys):
    path = tmp_path / "short"
    path.mkdir()
    (path / "stale.txt").write_text("old")
    assert main(["synth", str(path), "--overwrite", "--sites", "1", "--size", "16", "--start", "2019-05-01",
                 "--end", "2019-06-30", "--cloudiness", "0"]) == 0
    assert not (path / "stale.txt").exists()
    stems = [p.stem for p in (path / "site_000" / "s2").glob("*.tif")]
    assert stems and all("2019-05-01" <= s <= "2019-06-30" for s in stems)
    assert [p.name for p in (path / "site_000" / "labels").iterdir()] == ["2019.tif"]
    assert not list((path / "site_000" / "change").iterdir())  # one year: no pair to compare


@pytest.mark.parametrize("bad, word", [
    (["--cloudiness", "2"], "cloudiness"),
    (["--years", "twenty"], "--years"),
    (["--start", "2019-01-01"], "--end"),
    (["--years", "2019", "--start", "2019-01-01", "--end", "2019-02-01"], "either"),
    (["--sites", "0"], "sites"),
    (["--start", "2019-13-01", "--end", "2019-12-01"], "date"),
])
def test_bad_options_exit_2_with_one_line(tmp_path, capsys, bad, word):
    assert main(["synth", str(tmp_path / "x"), "--size", "16", *bad]) == 2
    err = capsys.readouterr().err.strip()
    assert word in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_python_api_returns_the_path(tmp_path):
    p = write_synthetic(tmp_path / "api", size=16, sites=1, years=(2019,), revisit=30, seed=1)
    assert p == tmp_path / "api" and (p / "site_000" / "labels.tif").is_file()


def test_docs_examples_run(tmp_path, monkeypatch, capsys):
    """docs/synthetic-data.md is runnable: its `alise synth` command and its Python example."""
    import re
    import shlex

    doc = (Path(__file__).resolve().parents[2] / "docs" / "synthetic-data.md").read_text()
    monkeypatch.chdir(tmp_path)
    bash = re.findall(r"```bash\n(.*?)```", doc, flags=re.S)[0]
    commands = [shlex.split(line)[1:] for line in bash.splitlines() if line.startswith("alise ")]
    assert commands[0][0] == "synth" and all(main(argv) == 0 for argv in commands)  # synth, then check reads it
    assert (tmp_path / "synthetic" / "site_001" / "labels" / "2019.tif").is_file()
    scope: dict = {}
    exec(compile(re.findall(r"```python\n(.*?)```", doc, flags=re.S)[0], "synthetic-data.md", "exec"), scope)
    assert scope["dn"].shape[1:] == (10, 64, 64) and scope["change"].shape == (64, 64)
    assert 0 < scope["clear"].mean() < 1
