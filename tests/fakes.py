"""Fakes shared by the tests: the one GeoTIFF writer of every test folder and the tiny model
configuration (the named preset ``tiny`` of :mod:`alise.model.presets`, which every test model
derives from, stating only what it changes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio

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
