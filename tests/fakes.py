"""Fakes shared by the tests: the one GeoTIFF writer of every test folder and the tiny model
configuration (the named preset ``tiny`` of :mod:`alise.model.presets`, which every test model
derives from, stating only what it changes)."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

from alise.model.config import ALISEConfig
from alise.model.presets import preset

#: The ``tiny`` preset's architecture: seconds per epoch on one CPU thread.
TINY: ALISEConfig = preset("tiny").config


def tiny_config(**overrides) -> ALISEConfig:
    """The tiny preset with ``overrides`` (validated)."""
    return TINY.replace(**overrides) if overrides else TINY


def set_items(config: ALISEConfig = TINY, skip: tuple[str, ...] = ()) -> list[str]:
    """``--set KEY=VALUE`` items giving ``config``'s architecture (the keys that differ from the paper's)."""
    paper = ALISEConfig().to_dict()
    items = []
    for k, v in config.to_dict().items():
        if v != paper[k] and k not in skip:
            items.append(f"{k}=" + (",".join(map(str, v)) if isinstance(v, list) else str(v)))
    return items


def write_tif(path: Path, data: np.ndarray, *, like: Path | None = None, crs=None, transform=None,
              descriptions=None, tags: dict | None = None, **profile) -> Path:
    """Write ``data`` (``(C, H, W)`` or ``(H, W)``) as a GeoTIFF at ``path`` (parents created).

    Georeferencing: ``crs`` / ``transform`` when given, else copied from the raster ``like``, else
    none. ``profile``: any other rasterio creation option (``nodata``, ``driver``, ``compress`` …).
    """
    a = np.asarray(data)
    a = a if a.ndim == 3 else a[None]
    base = {"driver": "GTiff", "count": a.shape[0], "height": a.shape[1], "width": a.shape[2], "dtype": a.dtype.name}
    if like is not None:
        with rasterio.open(like) as src:
            base.update(crs=src.crs, transform=src.transform)
    base.update({k: v for k, v in (("crs", crs), ("transform", transform)) if v is not None}, **profile)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **base) as dst:
        dst.write(a)
        if descriptions:
            dst.descriptions = tuple(descriptions)
        if tags:
            dst.update_tags(**tags)
    return path


#: Where :func:`make_site` puts its sites unless told otherwise (UTM 31N, 10 m).
SITE_CRS = "EPSG:32631"
SITE_TRANSFORM = Affine(10.0, 0.0, 501360.0, 0.0, -10.0, 5629680.0)


def make_site(root: Path, years=(2018, 2019), size: int = 32, dates_per_year: int = 6, seed: int = 0, *,
              dates=None, clouds: bool = False, transform=SITE_TRANSFORM, crs=SITE_CRS) -> Path:
    """A site folder: ``s2/DATE.tif`` (uint16 DN, nodata 0), ``labels/YYYY.tif``, ``labels.tif``,
    ``classes.csv``, ``change/Y1_Y2.tif`` (1 changed, 0 unchanged, 255 background), and with
    ``clouds`` ``scl/DATE.tif`` holding a moving cloud (SCL 9).

    Two crops with distinct phenologies; the right half of the left field rotates crop in the second
    year (the changed pixels); columns 0…3 are background (label 0). Dates: ``dates_per_year``
    a month apart in each of ``years``, or the given ``dates``.
    """
    rng = np.random.default_rng(seed)

    def schedule():  # (date, phase in its season); the jitter is drawn date by date, between the noise draws
        if dates is None:
            for y in years:
                for k in range(dates_per_year):
                    yield dt.date(y, 3, 1) + dt.timedelta(days=30 * k + int(rng.integers(0, 5))), \
                        k / max(dates_per_year - 1, 1)
        else:
            for d in dates:
                same_year = [e for e in dates if e.year == d.year]
                yield d, same_year.index(d) / max(len(same_year) - 1, 1)

    years = sorted(set(years) if dates is None else {d.year for d in dates})
    lab1 = np.ones((size, size), np.uint8)
    lab1[:, size // 2:] = 2
    lab1[:, :4] = 0
    lab2 = lab1.copy()
    lab2[: size // 2, 4:size // 2] = 2  # rotation: crop 1 → crop 2 in the top-left quarter
    labels = {y: (lab1 if i == 0 else lab2) for i, y in enumerate(years)}
    base = np.array([400, 700, 600, 1100, 2300, 2700, 2900, 3000, 2000, 1100], np.float32)
    yy, xx = np.mgrid[0:size, 0:size]
    put = functools.partial(write_tif, crs=crs, transform=transform)
    for i, (d, phase) in enumerate(schedule()):
        g1, g2 = np.sin(np.pi * phase), np.cos(np.pi * phase) ** 2  # crop 1 peaks mid-season, crop 2 early/late
        lab = labels[d.year]
        img = np.empty((10, size, size), np.float32)
        for b in range(10):
            nir = b >= 4
            v1 = base[b] * (1 + (0.8 if nir else -0.4) * g1)
            v2 = base[b] * (1 + (0.8 if nir else -0.4) * g2)
            img[b] = np.where(lab == 2, v2, np.where(lab == 1, v1, base[b] * 1.3))
        img += rng.normal(0, 30, img.shape)
        put(root / "s2" / f"{d.isoformat()}.tif", np.clip(img, 1, 10000).astype(np.uint16), nodata=0)
        if clouds:
            scl = np.full((size, size), 4, np.uint8)
            scl[(yy - 5 * i) ** 2 + (xx - 4 * i) ** 2 < 30] = 9
            put(root / "scl" / f"{d.isoformat()}.tif", scl)
    for y in years:
        put(root / "labels" / f"{y}.tif", labels[y])
    put(root / "labels.tif", labels[years[0]])
    (root / "classes.csv").write_text("id,name\n0,background\n1,crop_a\n2,crop_b\n")
    for a, b in zip(years[:-1], years[1:]):
        change = (labels[a] != labels[b]).astype(np.uint8)
        change[(labels[a] == 0) | (labels[b] == 0)] = 255
        put(root / "change" / f"{a}_{b}.tif", change)
    return root
