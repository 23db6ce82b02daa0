"""A look at a whole embedding raster: its first three principal components as colours.

Embeddings are judged by eye before any number: parcels, roads and water should stand out as
regions of one colour, and a tile grid or stripes are a bug whatever a loss says. ``alise preview``
(and :func:`pca_preview`) paints every pixel of an embedding ``(query, feature, y, x)`` with the
first three principal components of its features, the same colours as the demo's figures
(:class:`alise.plots.PCAColours`), for rasters of any size:

1. **Fit** on a regular subsample of pixels (every ``step``-th row and column, ``step`` chosen so
   that about ``sample`` pixels are read): the mean, the three principal axes (from at most
   ``sample`` pixels) and each component's 2–98 % stretch.
2. **Paint** block by block (``block`` px square) with that one fit, so that blocks agree and
   memory is one block of features (``block² × Q·D`` float32: 168 MB at 256² and 640 features).

Outputs: ``.png`` — an RGBA picture, decimated (every ``k``-th pixel) so that its longer side is at
most ``max_size`` px, transparent where a pixel had no clear observation; ``.tif`` — a 3-band uint8
RGB GeoTIFF at full resolution on the embedding's grid (tiled, DEFLATE, internal overviews) with a
mask (transparent in QGIS) where a pixel had no clear observation, tagged with the fit.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from alise.encode.readers import embedding_grid
from alise.encode.writers import BLOCK, _overview_factors, blocks
from alise.errors import AliseError
from alise.plots import PCA_FIT_PIXELS, PICTURE_MAX_SIDE

#: Preview outputs by suffix.
PREVIEW_SUFFIXES = {".png": "png", ".tif": "tif", ".tiff": "tif"}


def _features(emb, query: int | None):
    """``(F, H, W)`` array (dask or numpy) of the features to colour: every query or one."""
    if emb.dims != ("query", "feature", "y", "x"):
        raise AliseError(f"a preview needs an embedding (query, feature, y, x), got dims {emb.dims}")
    n_q, n_d, h, w = emb.shape
    if query is not None:
        if not 0 <= query < n_q:
            raise AliseError(f"--query {query}: the embedding has queries 0 to {n_q - 1}")
        return emb.data[query]
    return emb.data.reshape(n_q * n_d, h, w)


def _read(feats, rows: slice, cols: slice) -> np.ndarray:
    """``feats[:, rows, cols]`` as ``(F, h, w)`` float numpy (computes a dask slice)."""
    return np.asarray(feats[:, rows, cols], dtype=np.float32)


def _paint(colours, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(F, h, w)`` features → ``(h, w, 3)`` uint8 colours and the ``(h, w)`` mask of pixels
    whose features are all finite."""
    f, h, w = block.shape
    rows = block.reshape(f, h * w).T
    return colours.colours(rows).reshape(h, w, 3), np.isfinite(rows).all(1).reshape(h, w)


def fit_colours(feats, sample: int = PCA_FIT_PIXELS):
    """:class:`~alise.plots.PCAColours` of ``feats (F, H, W)`` fitted on every ``step``-th row and
    column (about ``sample`` pixels). Returns the fit and ``step``."""
    from alise.plots import PCAColours

    if sample < 2:
        raise AliseError(f"--sample {sample}: fit the colours on at least 2 pixels")
    _, h, w = feats.shape
    step = max(1, math.ceil(math.sqrt(h * w / sample)))
    sub = _read(feats, slice(None, None, step), slice(None, None, step))
    return PCAColours.fit(sub.reshape(sub.shape[0], -1).T, max_fit=sample), step


def pca_preview(emb, out: str | os.PathLike, *, query: int | None = None, max_size: int = PICTURE_MAX_SIDE,
                sample: int = PCA_FIT_PIXELS, block: int = BLOCK, overwrite: bool = False,
                progress: bool = True) -> dict:
    """Write the PCA-colour preview of an embedding (module docstring).

    Args:
        emb: ``xarray.DataArray (query, feature, y, x)`` (e.g. :func:`alise.encode.readers.open_embedding`
            or a lazy ``alise.xarray.encode``, which is then computed twice: fit and paint).
        out: ``.png`` (decimated to ``max_size``) or ``.tif`` (full resolution, georeferenced).
        query: colour one query's features only (default: all queries together).

    Returns:
        what was written: ``out``, its ``size`` (h, w), the ``step`` between painted pixels, the
        fit's ``sample_step`` and ``explained`` variance fractions, ``clear_fraction``.
    """
    from tqdm.auto import tqdm

    from alise.outputs import check_output

    out = Path(out)
    kind = PREVIEW_SUFFIXES.get(out.suffix.lower())
    if kind is None:
        raise AliseError(f"{out}: a preview is a .png picture or a .tif GeoTIFF")
    if max_size < 1:
        raise AliseError(f"--max-size {max_size}: give the longest side of the picture in pixels (≥ 1)")
    check_output(out, overwrite)
    feats = _features(emb, query)
    _, h, w = feats.shape
    colours, sample_step = fit_colours(feats, sample)
    if colours.axes.shape[0] == 0:
        raise AliseError("the embedding has fewer than 2 pixels with a clear observation: nothing to colour")
    step = max(1, math.ceil(max(h, w) / max_size)) if kind == "png" else 1
    oh, ow = math.ceil(h / step), math.ceil(w / step)
    bar = tqdm(total=oh * ow, desc="preview", unit="px", unit_scale=True, disable=not progress)
    clear = 0

    def painted():
        nonlocal clear
        for r, c, bh, bw in blocks(oh, ow, block):
            rgb, ok = _paint(colours, _read(feats, slice(r * step, (r + bh) * step, step),
                                            slice(c * step, (c + bw) * step, step)))
            clear += int(ok.sum())
            bar.update(bh * bw)
            yield (r, c, bh, bw), rgb, ok

    with bar:
        if kind == "png":
            _write_png(out, oh, ow, painted())
        else:
            _write_tif(out, embedding_grid(emb), painted(), colours, query)
    return {"out": str(out), "size": [oh, ow], "step": step, "sample_step": sample_step,
            "query": query, "explained": [round(float(v), 4) for v in colours.explained],
            "clear_fraction": round(clear / (oh * ow), 4)}


def _write_png(out: Path, oh: int, ow: int, blocks) -> None:
    from matplotlib.image import imsave

    from alise.outputs import atomic_path

    rgba = np.zeros((oh, ow, 4), np.uint8)
    for (r, c, bh, bw), rgb, ok in blocks:
        rgba[r:r + bh, c:c + bw, :3] = rgb
        rgba[r:r + bh, c:c + bw, 3] = np.where(ok, 255, 0)
    with atomic_path(out) as tmp:
        imsave(tmp, rgba, format="png")


def _write_tif(out: Path, grid, blocks, colours, query) -> None:
    import json

    import rasterio
    from rasterio.enums import Resampling
    from rasterio.windows import Window

    from alise.outputs import atomic_path, open_geotiff

    tags = {"ALISE_PREVIEW": "PCA colours of " + ("every query" if query is None else f"query {query}")
            + ": red, green, blue = principal components 1, 2, 3 stretched 2-98 %",
            "ALISE_PREVIEW_EXPLAINED": json.dumps([round(float(v), 4) for v in colours.explained])}
    with atomic_path(out) as tmp:
        with open_geotiff(tmp, grid.height, grid.width, 3, "uint8", grid, tags=tags, photometric="RGB") as dst:
            for i, name in enumerate(("PC1", "PC2", "PC3"), start=1):
                dst.set_band_description(i, name)
            for (r, c, bh, bw), rgb, ok in blocks:
                win = Window(c, r, bw, bh)
                dst.write(np.moveaxis(rgb, -1, 0), window=win)
                dst.write_mask(np.where(ok, 255, 0).astype(np.uint8), window=win)
            factors = _overview_factors(grid.height, grid.width)
            if factors:
                with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
                    dst.build_overviews(factors, Resampling.average)
