"""The atmosphere between the fields and the sensor: clouds, their shadows, cirrus, and SCL.

* **Cover per date.** The cloud fraction ``c_t`` of a date is drawn from a U-shaped Beta law
  whose mean is the requested ``cloudiness`` (modulated ±40 % by season, cloudier in winter), so
  most dates are nearly clear or nearly overcast, with broken skies in between — as in the real
  Flanders patch, where 47 of 118 dates have no clear pixel and 30 are ≥ 90 % clear.
* **Shape.** A smooth random field (two octaves, ≈ 200 m and 50 m) is thresholded at its
  ``1 − c_t`` quantile over the image, so the covered fraction is exactly ``c_t``. Opacity rises
  from thin edges to opaque cores; overcast dates are opaque everywhere.
* **Shadows.** A cloud at height h (0.6–2 km) casts its shadow ``h·tan(sun zenith)`` away from the
  sun (north-west in the morning overpass): the shadow at a pixel is the *same field* sampled at
  the displaced position, so shadows keep the cloud's shape and clouds outside the tile cast
  shadows into it. Shadowed surface keeps only diffuse light (darker, least so in the blue).
* **Cirrus and haze.** On some dates a faint, very smooth additive layer; where it is thick
  enough Sen2Cor flags it (SCL 10), thinner haze stays unflagged, as in real products.
* **Oddities of real L2A data.** A few percent of the cloudy dates have their bright cores
  classified as snow (SCL 11, seen in the real patch in September); a few dates lie on the swath
  edge and are partly no-data (DN 0, SCL 0).

The scene classification follows Sen2Cor's codes: 9/8 cloud high/medium probability, 3 cloud
shadow, 10 thin cirrus, 6 water, 4 vegetation (NDVI ≥ 0.4), 5 not vegetated, 11 snow, 0 no data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alise.synth.fields import coarse_noise, sample
from alise.synth.spectra import ndvi

#: Reflectance of an opaque cloud top (×0.75–1.25 per date).
CLOUD_SPECTRUM = np.array([0.45, 0.43, 0.42, 0.43, 0.44, 0.44, 0.45, 0.45, 0.33, 0.22], np.float32)
#: Spectral shape of cirrus/haze path radiance (multiplied by its optical amount).
CIRRUS_SPECTRUM = np.array([1.0, 0.95, 0.9, 0.85, 0.85, 0.8, 0.8, 0.8, 0.6, 0.5], np.float32)
#: Fraction of direct light a full shadow removes, per band (diffuse skylight is bluer).
SHADOW_DEPTH = 0.7 * np.array([0.75, 0.82, 0.9, 0.95, 1, 1, 1, 1, 1, 1], np.float32)
#: Cirrus amount above which Sen2Cor flags SCL 10.
CIRRUS_FLAG = 0.035
#: Longest shadow displacement simulated, pixels (3 km).
MAX_SHADOW_PX = 300.0


@dataclass
class Sky:
    """The atmosphere of ``T`` dates over an ``H × W`` tile.

    ``opacity``: ``(T, H, W)`` cloud opacity in [0, 1] (> 0 = cloud). ``shadow``: ``(T, H, W)``
    shadow strength in [0, 1] (only where no cloud). ``cirrus``: ``(T, H, W)`` additive haze amount.
    ``nodata``: ``(T, H, W)`` bool, True outside the swath. ``brightness``: ``(T,)`` cloud-top gain.
    ``snow_quirk``: ``(T,)`` bool, cloud cores labelled snow. ``cover``: ``(T,)`` drawn cloud fraction.
    """

    opacity: np.ndarray
    shadow: np.ndarray
    cirrus: np.ndarray
    nodata: np.ndarray
    brightness: np.ndarray
    snow_quirk: np.ndarray
    cover: np.ndarray


def cloud_cover(doy: np.ndarray, cloudiness: float, rng: np.random.Generator) -> np.ndarray:
    """Cloud fraction of each date ``(T,)`` in [0, 1], mean ≈ ``cloudiness`` over whole years."""
    t = len(doy)
    if cloudiness <= 0:
        return np.zeros(t, np.float32)
    if cloudiness >= 1:
        return np.ones(t, np.float32)
    mean = np.clip(cloudiness * (1 + 0.4 * np.cos(2 * np.pi * (doy - 15) / 365.25)), 0.01, 0.99)
    k = 0.5  # a + b < 2: U-shaped, mostly clear or overcast
    c = rng.beta(mean * k, (1 - mean) * k).astype(np.float32)
    c[c < 0.01] = 0.0
    c[c > 0.97] = 1.0
    return c


def _thresholds(field: np.ndarray, cover: np.ndarray) -> np.ndarray:
    """Per-date level above which ``field`` ``(T, H, W)`` is cloud, so that a fraction ``cover`` is: ``(T, 1, 1)``."""
    flat = np.sort(field.reshape(len(field), -1), axis=1)
    n = flat.shape[1]
    idx = np.clip(np.round((1 - cover) * n).astype(int), 0, n - 1)
    thr = flat[np.arange(len(field)), idx] - 1e-6
    thr = np.where(cover <= 0, np.inf, np.where(cover >= 1, -np.inf, thr))
    return thr.astype(np.float32)[:, None, None]


def draw_sky(size: int, doy: np.ndarray, zenith: np.ndarray, azimuth: np.ndarray, cloudiness: float,
             rng: np.random.Generator) -> Sky:
    """Draw clouds, shadows, cirrus and swath edges for ``T`` dates of a ``size × size`` tile.

    ``doy``, ``zenith``, ``azimuth``: ``(T,)`` day of year and sun angles in degrees.
    """
    t, h, w = len(doy), size, size
    cover = cloud_cover(doy, cloudiness, rng)
    height = rng.uniform(600, 2000, size=t)  # m
    length = np.minimum(height * np.tan(np.radians(np.minimum(zenith, 80))) / 10.0, MAX_SHADOW_PX)  # px
    az = np.radians(azimuth)
    d_row, d_col = np.cos(az) * length, -np.sin(az) * length  # shadow lies at cloud + d
    pad = float(np.ceil(length.max())) if t else 0.0

    rows = np.arange(h, dtype=np.float32)[None, :, None] + pad
    cols = np.arange(w, dtype=np.float32)[None, None, :] + pad
    s_rows = rows - d_row[:, None, None].astype(np.float32)  # the cloud that shades each pixel
    s_cols = cols - d_col[:, None, None].astype(np.float32)
    rows, cols = np.broadcast_to(rows, (t, h, 1)), np.broadcast_to(cols, (t, 1, w))
    field = np.zeros((t, h, w), np.float32)
    shade_field = np.zeros((t, h, w), np.float32)
    for cell, weight in ((20.0, 1.0), (5.0, 0.45)):  # two octaves
        grid = coarse_noise(rng, t, h + 2 * int(pad), w + 2 * int(pad), cell)
        field += weight * sample(grid, rows, cols, cell)
        shade_field += weight * sample(grid, s_rows, s_cols, cell)

    thr = _thresholds(field, cover)
    overcast = (cover >= 1)[:, None, None]
    floor = np.where(overcast, 0.75, 0.12).astype(np.float32)
    opacity = np.where(field > thr, np.clip((field - thr) / 0.6 + floor, 0, 1), 0).astype(np.float32)
    core = thr + 0.3  # thin cloud edges cast no visible shadow
    shadow = np.where(shade_field > core, np.clip((shade_field - core) / 0.4 + 0.3, 0, 1), 0).astype(np.float32)
    shadow[opacity > 0] = 0.0

    p_cirrus = min(0.1 + 0.3 * cloudiness, 0.4) if cloudiness > 0 else 0.0
    has_cirrus = rng.random(t) < p_cirrus
    amount = rng.uniform(0.01, 0.1, size=t) * has_cirrus
    haze = coarse_noise(rng, t, h, w, 40.0)
    cirrus = amount[:, None, None] * np.clip(0.5 + 0.35 * sample(haze, rows - pad, cols - pad, 40.0), 0, 1)

    nodata = np.zeros((t, h, w), bool)
    edge = np.flatnonzero(rng.random(t) < 0.04)  # dates on the swath edge
    if edge.size:
        ang = rng.uniform(0, 2 * np.pi, size=edge.size)[:, None, None]
        proj = np.arange(h)[None, :, None] * np.cos(ang) + np.arange(w)[None, None, :] * np.sin(ang)
        lo, hi = proj.min(axis=(1, 2), keepdims=True), proj.max(axis=(1, 2), keepdims=True)
        cut = lo + (hi - lo) * rng.uniform(0.4, 0.9, size=edge.size)[:, None, None]
        nodata[edge] = proj > cut

    snow = (cover > 0.3) & (rng.random(t) < 0.06)
    return Sky(opacity=opacity, shadow=shadow, cirrus=cirrus.astype(np.float32), nodata=nodata,
               brightness=rng.uniform(0.75, 1.25, size=t).astype(np.float32), snow_quirk=snow, cover=cover)


def observe(surface: np.ndarray, sky: Sky) -> np.ndarray:
    """Top-of-canopy reflectance seen through the sky: ``(T, C, H, W)`` float32 → same shape.

    Order of effects: shadow darkens the surface, cirrus adds path radiance, the cloud occludes.
    """
    clear = 1 - sky.opacity[:, None]  # (T, 1, H, W)
    keep = (1 - sky.shadow[:, None] * SHADOW_DEPTH[None, :, None, None]) * clear  # (T, C, H, W)
    out = surface * keep
    out += (sky.cirrus[:, None] * clear) * CIRRUS_SPECTRUM[None, :, None, None]
    cloud = CLOUD_SPECTRUM[None, :, None, None] * sky.brightness[:, None, None, None]
    out += cloud * sky.opacity[:, None]
    return out.astype(np.float32, copy=False)


def scene_classification(surface: np.ndarray, water: np.ndarray, sky: Sky) -> np.ndarray:
    """Sen2Cor-like SCL ``(T, H, W)`` uint8 from the cloud-free ``surface`` ``(T, C, H, W)``.

    ``water``: ``(H, W)`` bool, the water bodies. Priority: no data > cloud > shadow > cirrus > surface.
    """
    scl = np.where(ndvi(surface, axis=1) >= 0.4, 4, 5).astype(np.uint8)
    scl[:, water] = 6
    scl[sky.cirrus > CIRRUS_FLAG] = 10
    scl[sky.shadow > 0] = 3
    scl[sky.opacity > 0] = 8
    core = sky.opacity >= 0.5
    scl[core] = 9
    scl[core & sky.snow_quirk[:, None, None]] = 11
    scl[sky.nodata] = 0
    return scl
