"""Writing synthetic sites in the folder-of-dates layout of the shipped real data.

::

    OUT/
      README.md                what was generated, options, seed, class table, per-site summary
      classes.csv              id,name (0 = background)
      site_000/
        s2/YYYY-MM-DD.tif      10 bands uint16 DN = reflectance × 10 000, nodata 0, DEFLATE,
                               band descriptions B02 … B12, tags DATE, ACQUISITION_TIME_UTC,
                               SUN_ZENITH, SUN_AZIMUTH, CLOUD_COVER, UNITS, SOURCE
        scl/YYYY-MM-DD.tif     1 band uint8 Sen2Cor SCL, nodata 0
        labels/YYYY.tif        1 band uint8 class per year (no nodata value; 0 = background)
        labels.tif             copy of the last year's labels
        classes.csv            same as above
        change/YYYY_YYYY.tif   1 band uint8, 1 changed / 0 unchanged / 255 excluded (nodata 255)
        dates.csv              date, time, drawn cloud cover, clear fraction (SCL 4/5/6), sun angles

All files of a site share one grid: EPSG:32631 (UTM 31N), 10 m pixels, north-up; sites sit side
by side on a 2 km-spaced grid of tiles so their footprints never overlap. The whole ``OUT`` is
built under a temporary name and renamed at the end (:func:`alise.outputs.atomic_dir`).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rasterio.crs import CRS
from rasterio.transform import Affine

from alise.data.change_truth import EXCLUDED
from alise.data.source import RasterGrid
from alise.errors import AliseError
from alise.normalise import S2_BANDS
from alise.outputs import atomic_dir, check_output, write_geotiff
from alise.synth import classes as C
from alise.synth.generator import SiteSimulator, check_options, draw_dates

CRS_EPSG = 32631
#: Upper-left corner of site 0 (m, UTM 31N) — farmland between Lille and Ghent; sites go 8 per row.
ORIGIN = (480000.0, 5650000.0)
SITES_PER_ROW = 8
UNITS = "surface reflectance x 10000 (synthetic L2A BOA), 0 = nodata"


def site_transform(index: int, size: int) -> Affine:
    """10 m north-up transform of site ``index``; neighbours are ≥ 2 km apart (multiples of 20 m)."""
    stride = int(np.ceil((size * 10 + 2000) / 20.0)) * 20
    col, row = index % SITES_PER_ROW, index // SITES_PER_ROW
    return Affine(10.0, 0.0, ORIGIN[0] + col * stride, 0.0, -10.0, ORIGIN[1] - row * stride)


def _write(path: Path, data: np.ndarray, grid, nodata, descriptions: Sequence[str], tags: dict) -> None:
    """Write ``data`` ``(B, H, W)`` as one GeoTIFF with band descriptions and dataset tags
    (:func:`alise.outputs.write_geotiff`, the package's one GeoTIFF writer)."""
    write_geotiff(path, data, grid, nodata=nodata, descriptions=descriptions, tags=tags)


def _write_site(sim: SiteSimulator, root: Path, transform: Affine, source: str) -> dict:
    """Write every file of one site under ``root``; return a small summary for the README."""
    size = sim.size
    for sub in ("s2", "scl", "labels", "change"):
        (root / sub).mkdir(parents=True)
    grid = RasterGrid(CRS.from_epsg(CRS_EPSG), transform, size, size)
    rows, clear = [], []
    i = 0
    for part in sim.render_all():
        for k in range(len(part["dn"])):
            d = sim.dates[i].isoformat()
            tags = dict(DATE=d, ACQUISITION_TIME_UTC=f"{d}T{sim.times[i]}Z", SUN_ZENITH=f"{sim.zenith[i]:.4f}",
                        SUN_AZIMUTH=f"{sim.azimuth[i]:.4f}", CLOUD_COVER=f"{part['cover'][k]:.4f}",
                        UNITS=UNITS, SOURCE=source)
            _write(root / "s2" / f"{d}.tif", part["dn"][k], grid, 0, S2_BANDS, tags)
            _write(root / "scl" / f"{d}.tif", part["scl"][k][None], grid, 0, ("SCL",),
                   dict(DATE=d, SOURCE=source))
            frac = float(np.isin(part["scl"][k], (4, 5, 6)).mean())
            clear.append(frac)
            rows.append(f"{d},{sim.times[i]},{part['cover'][k]:.4f},{frac:.4f},{sim.zenith[i]:.2f},{sim.azimuth[i]:.2f}")
            i += 1
    (root / "dates.csv").write_text("date,time_utc,cloud_cover,clear_fraction,sun_zenith,sun_azimuth\n"
                                    + "".join(r + "\n" for r in rows))

    table = ";".join(f"{k}={n}" for k, n in C.CLASSES)
    for y in sim.years:
        _write(root / "labels" / f"{y}.tif", sim.labels(y)[None], grid, None, ("crop_class",),
               dict(CLASSES=table, YEAR=y, SOURCE=source))
    shutil.copyfile(root / "labels" / f"{sim.years[-1]}.tif", root / "labels.tif")
    for a, b in zip(sim.years[:-1], sim.years[1:]):
        _write(root / "change" / f"{a}_{b}.tif", sim.change(a, b)[None], grid, EXCLUDED, ("change",),
               dict(YEARS=f"{a}_{b}", MEANING="1 = class changed, 0 = unchanged, 255 = background in either year",
                    SOURCE=source))
    (root / "classes.csv").write_text(C.classes_csv())
    last = sim.labels(sim.years[-1])
    changed = [float((sim.change(a, b) == 1).sum() / max((sim.change(a, b) != 255).sum(), 1))
               for a, b in zip(sim.years[:-1], sim.years[1:])]
    return dict(n_dates=len(sim.dates), first=sim.dates[0], last=sim.dates[-1], clear=float(np.mean(clear)),
                transform=transform, counts=np.bincount(last.ravel(), minlength=C.N_CLASSES), changed=changed)


def write_synthetic(out: str | os.PathLike, *, size: int = 64, sites: int = 2, years: Sequence[int] | None = None,
                    start: dt.date | None = None, end: dt.date | None = None, cloudiness: float = 0.3,
                    revisit: int = 5, seed: int = 0, overwrite: bool = False, progress: bool = False) -> Path:
    """Write ``sites`` synthetic SITS of ``size × size`` pixels under ``out`` (layout in the module docstring).

    Dates: all of ``years`` (default 2018, 2019), or ``[start, end]`` (then the years are those
    touched). Site ``i`` is seeded by ``(seed, i)``: adding sites never changes the earlier ones.
    Returns the output path. Raises :class:`AliseError` if ``out`` exists (unless ``overwrite``).
    """
    from tqdm import tqdm

    if (start is None) != (end is None):
        raise AliseError("give both --start and --end (or neither, and use --years)")
    if start is not None:
        if years:
            raise AliseError("give either --years or --start/--end, not both")
        if end < start:
            raise AliseError(f"--end {end} is before --start {start}")
        years = tuple(range(start.year, end.year + 1))
    years = tuple(sorted(set(int(y) for y in (years or (2018, 2019)))))
    check_options(size, cloudiness, revisit, years)
    if sites < 1:
        raise AliseError(f"--sites {sites}: need at least one site")
    out = check_output(out, overwrite)

    summaries = []
    with atomic_dir(out, overwrite=overwrite) as tmp:
        (tmp / "classes.csv").write_text(C.classes_csv())
        for i in tqdm(range(sites), desc="synth", unit="site", file=sys.stderr, disable=not progress):
            key = (int(seed), i)
            dates = draw_dates(years, revisit, key, start, end)
            if not dates:
                raise AliseError(f"no acquisition date between {start} and {end}: give a longer period")
            sim = SiteSimulator(size, dates, years, key, cloudiness)
            source = f"alise synth seed={seed} site={i}"
            summaries.append(_write_site(sim, tmp / f"site_{i:03d}", site_transform(i, size), source))
        options = dict(size=size, sites=sites, years=",".join(map(str, years)), start=start, end=end,
                       cloudiness=cloudiness, revisit=revisit, seed=seed)
        (tmp / "README.md").write_text(_readme(options, summaries))
    return out


def _readme(options: dict, summaries: list[dict]) -> str:
    """The ``OUT/README.md`` text."""
    opts = " ".join(f"--{k} {v}" for k, v in options.items() if v is not None)
    lines = [
        "# Synthetic Sentinel-2 image time series (alise synth)",
        "",
        "Simulated data, not observations: agricultural landscapes with crop rotations, forest clear-cuts,",
        "class-specific phenology, endmember-mixed 10-band L2A reflectance, irregular dates, clouds with",
        "displaced shadows, cirrus and a Sen2Cor-like SCL. How: `docs/synthetic-data.md` of the alise package.",
        "",
        f"Generated by `alise synth OUT {opts}`; the same options give identical files.",
        "",
        "Layout per site: `s2/YYYY-MM-DD.tif` (10 bands B02 B03 B04 B05 B06 B07 B08 B8A B11 B12, uint16",
        "reflectance x 10000, nodata 0), `scl/YYYY-MM-DD.tif` (uint8 Sen2Cor SCL; clear = 4, 5, 6),",
        "`labels/YYYY.tif` (uint8 class per year), `labels.tif` (last year), `classes.csv`,",
        "`change/YYYY_YYYY.tif` (1 changed, 0 unchanged, 255 background in either year), `dates.csv`.",
        f"CRS EPSG:{CRS_EPSG}, 10 m pixels.",
        "",
        "## Classes",
        "",
        "| id | name | pixels in the last year (all sites) |",
        "|---:|---|---:|",
    ]
    total = np.sum([s["counts"] for s in summaries], axis=0)
    lines += [f"| {k} | {n} | {int(total[k])} |" for k, n in C.CLASSES]
    lines += ["", "## Sites", "", "| site | dates | first | last | mean clear fraction | changed share | upper-left (x, y) |",
              "|---|---:|---|---|---:|---|---|"]
    for i, s in enumerate(summaries):
        chg = ", ".join(f"{c:.2f}" for c in s["changed"]) or "-"
        lines.append(f"| site_{i:03d} | {s['n_dates']} | {s['first']} | {s['last']} | {s['clear']:.2f} | {chg} | "
                     f"({s['transform'].c:.0f}, {s['transform'].f:.0f}) |")
    return "\n".join(lines) + "\n"
