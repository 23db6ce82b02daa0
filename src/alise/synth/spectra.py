"""Surface reflectance by linear mixing of endmember spectra.

Every pixel at every date is a mixture of seven materials whose fractions come from
:mod:`alise.synth.phenology`. The spectra below are typical Sentinel-2 L2A surface reflectances
(B02 B03 B04 B05 B06 B07 B08 B8A B11 B12) read off standard library shapes:

* **green vegetation**: chlorophyll absorbs blue and red (B02, B04 ≈ 0.03), a green peak (B03),
  the red-edge ramp B05 < B06 < B07, a high NIR plateau (B08, B8A ≈ 0.42–0.44) and water
  absorption in the SWIR (B11 > B12). A dense canopy has NDVI ≈ 0.85.
* **senescent vegetation** (straw, dry leaves): bright and flat, high SWIR (cellulose, lignin).
* **soil**: reflectance rising slowly with wavelength, B11 the brightest band; its brightness
  varies per field (texture, organic matter) and per date (moisture after rain darkens it).
* **water**: low everywhere, falling to almost nothing in the NIR and SWIR (NDVI < 0).
* **built-up**: grey, flat, slightly higher SWIR.
* **flowers**: rapeseed and sunflower petals (yellow: high green *and* red reflectance).
* **woody/shade**: bark and canopy shadow, dark in all bands (forests are darker than crops).

A class-dependent gain on the green spectrum's red-edge/NIR bands mimics canopy structure
(broad-leaved beet and potato reflect more NIR than erect cereals or needle-leaved conifers).
"""

from __future__ import annotations

import numpy as np

from alise.normalise import S2_BANDS

ENDMEMBERS: tuple[str, ...] = ("soil", "green", "dry", "water", "built", "flower", "woody")
SOIL, GREEN, DRY, WATER, BUILT, FLOWER, WOODY = range(len(ENDMEMBERS))

#: Endmember reflectances ``(E, C)`` (unitless, 0–1), bands in :data:`alise.normalise.S2_BANDS` order.
SPECTRA = np.array([
    #  B02    B03    B04    B05    B06    B07    B08    B8A    B11    B12
    [0.070, 0.100, 0.140, 0.165, 0.180, 0.190, 0.200, 0.215, 0.300, 0.260],  # soil
    [0.030, 0.070, 0.035, 0.100, 0.280, 0.370, 0.420, 0.440, 0.210, 0.100],  # green vegetation
    [0.080, 0.110, 0.140, 0.175, 0.220, 0.250, 0.270, 0.290, 0.380, 0.280],  # senescent vegetation
    [0.060, 0.055, 0.035, 0.025, 0.018, 0.015, 0.012, 0.012, 0.006, 0.004],  # water
    [0.100, 0.110, 0.120, 0.130, 0.140, 0.150, 0.160, 0.165, 0.190, 0.170],  # built-up
    [0.040, 0.150, 0.140, 0.200, 0.300, 0.350, 0.380, 0.400, 0.250, 0.130],  # yellow flowers
    [0.020, 0.030, 0.030, 0.045, 0.080, 0.100, 0.120, 0.125, 0.090, 0.050],  # bark / canopy shade
], dtype=np.float32)
assert SPECTRA.shape == (len(ENDMEMBERS), len(S2_BANDS))

#: Bands whose green-vegetation reflectance scales with canopy structure (B06 B07 B08 B8A).
_STRUCTURE_BANDS = np.array([0, 0, 0, 0.5, 1, 1, 1, 1, 0.3, 0], np.float32)

#: Green-canopy NIR gain per class id (index = class id; 1.0 where irrelevant).
NIR_GAIN = np.array([1.0, 0.94, 0.90, 1.00, 1.06, 0.98, 1.15, 1.10, 1.04, 0.95, 0.88, 0.95, 1.0, 1.0],
                    np.float32)

#: Std of the static per-pixel brightness texture per class id (built-up is the most heterogeneous).
TEXTURE = np.array([0.06, 0.03, 0.03, 0.035, 0.03, 0.035, 0.03, 0.035, 0.03, 0.04, 0.07, 0.08, 0.015, 0.16],
                   np.float32)


def ndvi(refl: np.ndarray, axis: int = -3) -> np.ndarray:
    """NDVI = (B08 − B04) / (B08 + B04) of reflectance with bands on ``axis`` (default ``(…, C, H, W)``)."""
    red = np.take(refl, 2, axis=axis).astype(np.float32)
    nir = np.take(refl, 6, axis=axis).astype(np.float32)
    return (nir - red) / np.maximum(nir + red, 1e-6)


def mix(frac: np.ndarray, nir_gain: np.ndarray, brightness: np.ndarray) -> np.ndarray:
    """Mix endmembers into surface reflectance.

    ``frac``: ``(T, E, N)`` endmember amounts over the N = H·W pixels (fractions, the soil one
    already scaled by its brightness); ``nir_gain``: ``(N,)`` canopy-structure gain; ``brightness``:
    ``(N,)`` static multiplicative texture. Returns ``(T, C, N)`` float32 reflectance (0–1, unclipped).
    """
    t, _, n = frac.shape
    refl = np.empty((t, SPECTRA.shape[1], n), np.float32)
    structure = (SPECTRA[GREEN] * _STRUCTURE_BANDS)[:, None]  # (C, 1)
    extra = nir_gain - 1.0  # (N,)
    for i in range(t):  # one BLAS product per date: cache-friendly, far faster than a broadcast matmul
        np.matmul(SPECTRA.T, frac[i], out=refl[i])  # (C, E) @ (E, N) -> (C, N)
        refl[i] += structure * (frac[i, GREEN] * extra)
        refl[i] *= brightness
    return refl
