"""Smooth random fields: the one source of spatial correlation in the simulator.

Clouds, haze, within-field texture and the land-use zoning all come from the same recipe: white
noise on a coarse grid (one node every ``cell`` pixels), smoothed with a small Gaussian kernel,
then sampled *bilinearly* at arbitrary pixel positions. Sampling at positions rather than
upsampling a whole image is what lets :mod:`alise.synth.clouds` read one field at two places (the
cloud over the pixel, and the cloud that casts a shadow on it from hundreds of metres away)
without ever building a full-resolution padded image.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def coarse_noise(rng: np.random.Generator, n: int, h: int, w: int, cell: float) -> np.ndarray:
    """Smoothed white noise on a coarse grid covering ``h × w`` pixels.

    Returns ``(N, h/cell + 4, w/cell + 4)`` float32, each slice with mean 0 and std 1. Node
    ``(i, j)`` sits at pixel position ``((i − 1)·cell, (j − 1)·cell)``, so pixel coordinates from
    ``−cell`` to ``h + 2·cell`` are covered (see :func:`sample`).
    """
    gh, gw = int(np.ceil(h / cell)) + 4, int(np.ceil(w / cell)) + 4
    g = rng.standard_normal((n, gh, gw), dtype=np.float32)
    g = ndimage.gaussian_filter(g, sigma=(0, 0.8, 0.8), mode="wrap")  # (N, gh, gw)
    g -= g.mean(axis=(1, 2), keepdims=True)
    g /= g.std(axis=(1, 2), keepdims=True) + 1e-6
    return g


def sample(grid: np.ndarray, rows: np.ndarray, cols: np.ndarray, cell: float) -> np.ndarray:
    """Bilinear sample of a :func:`coarse_noise` grid at a separable set of pixel positions.

    ``grid`` is ``(N, gh, gw)``; ``rows`` is ``(N, h, 1)`` and ``cols`` ``(N, 1, w)`` float pixel
    positions (one row/column offset per slice, as for a shifted window). Returns ``(N, h, w)``
    float32. Separable interpolation (rows, then columns) with clamped edges: two gathers.
    """
    n, gh, gw = grid.shape
    r = np.broadcast_to(np.asarray(rows, np.float32), (n, rows.shape[1], 1))[:, :, 0] / cell + 1.0  # (N, h)
    c = np.broadcast_to(np.asarray(cols, np.float32), (n, 1, cols.shape[2]))[:, 0, :] / cell + 1.0  # (N, w)
    r = np.clip(r, 0, gh - 1.001)
    c = np.clip(c, 0, gw - 1.001)
    r0, c0 = r.astype(np.intp), c.astype(np.intp)
    fr, fc = (r - r0)[:, :, None], (c - c0)[:, None, :]
    top = np.take_along_axis(grid, r0[:, :, None], axis=1)  # (N, h, gw)
    bot = np.take_along_axis(grid, r0[:, :, None] + 1, axis=1)
    g = top + fr * (bot - top)  # (N, h, gw)
    left = np.take_along_axis(g, c0[:, None, :], axis=2)  # (N, h, w)
    right = np.take_along_axis(g, c0[:, None, :] + 1, axis=2)
    return (left + fc * (right - left)).astype(np.float32)


def smooth_field(rng: np.random.Generator, n: int, h: int, w: int, cell: float) -> np.ndarray:
    """``n`` independent smooth fields over an ``h × w`` image, correlation length ≈ ``cell`` px.

    Returns ``(N, h, w)`` float32, approximately standardised (mean 0, std 1 per slice).
    """
    grid = coarse_noise(rng, n, h, w, cell)
    rows = np.arange(h, dtype=np.float32).reshape(1, h, 1)
    cols = np.arange(w, dtype=np.float32).reshape(1, 1, w)
    f = sample(grid, np.broadcast_to(rows, (n, h, 1)), np.broadcast_to(cols, (n, 1, w)), cell)
    f -= f.mean(axis=(1, 2), keepdims=True)
    f /= f.std(axis=(1, 2), keepdims=True) + 1e-6
    return f


def fine_noise(rng: np.random.Generator, n: int, h: int, w: int, amount: float = 0.6) -> np.ndarray:
    """Texture at the 10–30 m scale: white noise blurred by a 1-pixel Gaussian.

    Returns ``(N, h, w)`` float32 with std ≈ 1; ``amount`` ∈ [0, 1] mixes in unblurred noise.
    """
    white = rng.standard_normal((n, h, w), dtype=np.float32)
    blur = ndimage.gaussian_filter(white, sigma=(0, 1.0, 1.0), mode="reflect")
    blur /= blur.std() + 1e-6
    out = amount * blur + (1 - amount) * white
    return out / (out.std() + 1e-6)
