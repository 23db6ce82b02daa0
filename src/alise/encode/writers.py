"""From per-tile pieces to one georeferenced embedding raster: COG GeoTIFF or zarr.

Encoding writes one *piece* per tile (``runner.py``): the raw model output of the tile plus the
number of clear observations of each pixel, a ``(Q·D + 1, h, w)`` float32 ``.npy`` file written
atomically. Assembly then walks the output in blocks; each block is the sum, in tile-index order,
of the covering pieces times their normalised blending weights (``tiling.py``). The summation order
is fixed, so the result is bit-identical however the tiles were scheduled (one process, shards on
many nodes, a run resumed after a kill).

Outputs
    * **COG** (``--format cog``): a tiled (256 × 256), band-interleaved, DEFLATE-compressed GeoTIFF
      with internal overviews (average), written in the Cloud-Optimized layout (overviews copied
      from a scratch GeoTIFF with ``COPY_SRC_OVERVIEWS``). Q·D bands described ``q03_d17``
      (query 3, channel 17), the input's CRS and transform, nodata NaN where a pixel had no clear
      observation in the period. ``float16`` is stored as 16-bit floats (``NBITS=16``) and reads
      back as float32. The count of clear observations goes to a sidecar ``<stem>.n_clear.tif``
      (uint16 COG).
    * **zarr** (``--format zarr``): a zarr v3 store with ``embedding (band, y, x)`` (chunks
      64 × 256 × 256, fill NaN), ``n_clear (y, x)`` uint16, coordinates ``band`` (names), ``y``,
      ``x`` (pixel centres) and ``spatial_ref`` (CRS and GeoTransform, as written by rioxarray):
      ``xr.open_zarr(OUT).rio.crs`` works.

Memory: one block (``256² × Q·D`` float32 = 168 MB for the paper model) plus the memory-mapped
slices of ≤ 4 pieces.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alise.encode.tiling import Tile, TileGrid
from alise.outputs import atomic_dir, atomic_file, atomic_path

#: Output block (and GeoTIFF tile / zarr chunk) size in pixels.
BLOCK = 256
#: zarr chunk length along the band axis.
BAND_CHUNK = 64

FORMATS = ("cog", "zarr")
DTYPES = ("float32", "float16")
#: Output suffix → format: the path says what is written.
SUFFIXES = {".tif": "cog", ".tiff": "cog", ".zarr": "zarr"}


def format_of(out: str | Path, fmt: str | None = None) -> str:
    """The output format of ``out``, from its suffix (``.tif``/``.tiff`` → ``cog``, ``.zarr`` →
    ``zarr``); an explicit ``fmt`` must agree with it. Raises :class:`AliseError` for an unknown or
    missing suffix (naming the known ones) and for a contradiction."""
    from alise.errors import AliseError

    suffix = Path(out).suffix.lower()
    known = ", ".join(f"{k} ({v})" for k, v in SUFFIXES.items())
    if suffix not in SUFFIXES:
        what = f"suffix {suffix!r}" if suffix else "no suffix"
        raise AliseError(f"{out}: {what}; the output format follows the suffix: {known}")
    if fmt is not None and fmt != SUFFIXES[suffix]:
        raise AliseError(f"{out}: --format {fmt} contradicts the suffix {suffix} ({SUFFIXES[suffix]}); "
                         f"name the output {Path(out).stem}{'.zarr' if fmt == 'zarr' else '.tif'}")
    return SUFFIXES[suffix]


def band_names(n_q: int, d_model: int) -> list[str]:
    """``q03_d17``-style names of the ``n_q · d_model`` output bands, query-major."""
    wq, wd = max(2, len(str(n_q - 1))), max(2, len(str(d_model - 1)))
    return [f"q{q:0{wq}d}_d{d:0{wd}d}" for q in range(n_q) for d in range(d_model)]


def n_clear_path(out: str | Path) -> Path:
    """Sidecar of a COG output holding the clear-observation count: ``emb.tif`` → ``emb.n_clear.tif``."""
    out = Path(out)
    return out.with_name(f"{out.stem}.n_clear{out.suffix or '.tif'}")


@dataclass(frozen=True)
class Georef:
    """Where the raster lies: CRS as WKT (may be empty) and the affine transform's 6 coefficients."""

    crs_wkt: str
    transform: tuple[float, float, float, float, float, float]

    def affine(self):
        from affine import Affine

        return Affine(*self.transform)

    def crs(self):
        from rasterio.crs import CRS

        return CRS.from_wkt(self.crs_wkt) if self.crs_wkt else None


# ---------------------------------------------------------------------------------------------
# Pieces: the per-tile intermediate format (the resume ledger is "which pieces exist").


def write_piece(path: Path, embedding: np.ndarray, n_clear: np.ndarray) -> None:
    """Store ``embedding (Q·D, h, w)`` float32 and ``n_clear (h, w)`` atomically as one ``.npy``."""
    arr = np.concatenate([embedding.astype(np.float32, copy=False), n_clear[None].astype(np.float32)], axis=0)
    with atomic_file(path) as f:
        np.save(f, arr, allow_pickle=False)


def read_piece(path: Path) -> np.ndarray:
    """Memory-map a piece: ``(Q·D + 1, h, w)`` float32, last channel = clear-observation count."""
    return np.load(path, mmap_mode="r", allow_pickle=False)


def blocks(height: int, width: int, block: int = BLOCK) -> Iterator[tuple[int, int, int, int]]:
    """Row-major windows ``(row_off, col_off, h, w)`` of ``block`` pixels covering the raster."""
    for r in range(0, height, block):
        for c in range(0, width, block):
            yield (r, c, min(block, height - r), min(block, width - c))


def blend_window(grid: TileGrid, piece: Callable[[Tile], np.ndarray], window: tuple[int, int, int, int],
                 n_bands: int) -> tuple[np.ndarray, np.ndarray]:
    """The final values of one output window.

    Args:
        grid: the tile grid the pieces come from.
        piece: tile → its piece array ``(n_bands + 1, h_t, w_t)``.
        window: ``(row_off, col_off, h, w)`` in raster pixels.

    Returns:
        ``embedding (n_bands, h, w)`` float32 — NaN where no clear observation — and
        ``n_clear (h, w)`` uint16.
    """
    r0, c0, h, w = window
    emb = np.zeros((n_bands, h, w), np.float32)
    n_clear = np.zeros((h, w), np.uint16)
    for t in grid.tiles_in(*window):  # fixed order → bit-identical sums
        a0, a1 = max(r0, t.row_off), min(r0 + h, t.row_off + t.height)
        b0, b1 = max(c0, t.col_off), min(c0 + w, t.col_off + t.width)
        src = (slice(a0 - t.row_off, a1 - t.row_off), slice(b0 - t.col_off, b1 - t.col_off))
        dst = (slice(a0 - r0, a1 - r0), slice(b0 - c0, b1 - c0))
        p = piece(t)
        emb[:, dst[0], dst[1]] += p[:n_bands, src[0], src[1]] * grid.weight(t)[src]
        n_clear[dst] = p[n_bands][src]  # identical in every covering tile
    emb[:, n_clear == 0] = np.nan
    return emb, n_clear


# ---------------------------------------------------------------------------------------------
# Sinks: a context manager yielding ``write(window, embedding, n_clear)``; the output appears
# under its final name only when the block loop finished.

_GDAL_ENV = dict(GDAL_CACHEMAX=256, GDAL_NUM_THREADS="ALL_CPUS")


def _overview_factors(height: int, width: int, block: int = BLOCK) -> list[int]:
    factors, f = [], 2
    while max(height, width) / f >= block / 2:
        factors.append(f)
        f *= 2
    return factors


def _scratch_tiff(path: Path, georef: Georef, height: int, width: int, count: int, dtype: str, nodata):
    import rasterio

    return rasterio.open(
        path, "w", driver="GTiff", height=height, width=width, count=count, dtype=dtype,
        crs=georef.crs(), transform=georef.affine(), nodata=nodata, tiled=True,
        blockxsize=BLOCK, blockysize=BLOCK, interleave="band", compress="zstd", zstd_level=1,
        bigtiff="if_safer",
    )


def _to_cog(scratch: Path, out: Path, float_dtype: str | None) -> None:
    """Copy a scratch GeoTIFF (with overviews) to ``out`` in the cloud-optimised layout."""
    from rasterio.shutil import copy

    opts = dict(TILED="YES", BLOCKXSIZE=BLOCK, BLOCKYSIZE=BLOCK, INTERLEAVE="BAND", COMPRESS="DEFLATE",
                COPY_SRC_OVERVIEWS="YES", BIGTIFF="IF_SAFER")
    if float_dtype is not None:
        opts["PREDICTOR"] = 3
        if float_dtype == "float16":
            opts["NBITS"] = 16
    else:
        opts["PREDICTOR"] = 2
    with atomic_path(out) as tmp:
        copy(scratch, tmp, driver="GTiff", **opts)


@contextlib.contextmanager
def cog_sink(out: Path, georef: Georef, height: int, width: int, bands: list[str], dtype: str,
             metadata: dict | None = None):
    """Write ``out`` (COG, float ``dtype``) and its ``.n_clear.tif`` sidecar; yields ``write``.

    Blocks go to scratch GeoTIFFs beside ``out`` (removed at the end, also on failure); the
    sidecar, then ``out``, appear under their final names only once complete.
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.windows import Window

    out, side = Path(out), n_clear_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    s_emb, s_cnt = (p.with_name(f".{p.name}.scratch.tif") for p in (out, side))
    try:
        with rasterio.Env(**_GDAL_ENV):
            with _scratch_tiff(s_emb, georef, height, width, len(bands), "float32", float("nan")) as de, \
                    _scratch_tiff(s_cnt, georef, height, width, 1, "uint16", None) as dc:
                for i, name in enumerate(bands, start=1):
                    de.set_band_description(i, name)
                dc.set_band_description(1, "n_clear")
                if metadata:
                    de.update_tags(**{k: str(v) for k, v in metadata.items()})

                def write(window, emb, n_clear):
                    win = Window(window[1], window[0], window[3], window[2])
                    de.write(emb, window=win)
                    dc.write(n_clear[None], window=win)

                yield write
                factors = _overview_factors(height, width)
                if factors:
                    de.build_overviews(factors, Resampling.average)
                    dc.build_overviews(factors, Resampling.nearest)
            _to_cog(s_cnt, side, None)
            _to_cog(s_emb, out, dtype)
    finally:
        s_emb.unlink(missing_ok=True)
        s_cnt.unlink(missing_ok=True)


@contextlib.contextmanager
def _quiet_zarr():
    """Silence zarr's notices that string band names and consolidated metadata are not in the v3 spec yet."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Zarr V3 specification.*")
        warnings.filterwarnings("ignore", message=".*Consolidated metadata.*")
        yield


@contextlib.contextmanager
def zarr_sink(out: Path, georef: Georef, height: int, width: int, bands: list[str], dtype: str, metadata: dict | None = None,
              overwrite: bool = False):
    """Write a zarr v3 store at ``out`` (see the module docstring); yields ``write``."""
    import rioxarray  # noqa: F401  (registers the .rio accessor)
    import xarray as xr
    import zarr

    tr = georef.affine()
    a, b, c, d, e, f = georef.transform
    x = c + a * (np.arange(width) + 0.5) + b * 0.5  # pixel centres of the first row (north-up: b = d = 0)
    y = f + d * 0.5 + e * (np.arange(height) + 0.5)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        coords = xr.Dataset(coords=dict(band=np.array(bands), y=y, x=x))
        if georef.crs_wkt:
            coords = coords.rio.write_crs(georef.crs_wkt)
        coords = coords.rio.write_transform(tr)
        with _quiet_zarr():
            coords.to_zarr(tmp, mode="w", consolidated=False, zarr_format=3)
        g = zarr.open_group(tmp, mode="a")
        if metadata:
            g.attrs.update({k: str(v) for k, v in metadata.items()})
        attrs = {"grid_mapping": "spatial_ref"}
        emb = g.create_array("embedding", shape=(len(bands), height, width), dtype=dtype, fill_value=np.nan,
                             chunks=(min(BAND_CHUNK, len(bands)), BLOCK, BLOCK), dimension_names=("band", "y", "x"),
                             attributes={**attrs, "long_name": "ALISE aligned embedding"})
        cnt = g.create_array("n_clear", shape=(height, width), dtype="uint16", fill_value=0,
                             chunks=(BLOCK, BLOCK), dimension_names=("y", "x"),
                             attributes={**attrs, "long_name": "clear observations used"})

        def write(window, e, n):
            r, c, h, w = window
            emb[:, r : r + h, c : c + w] = e.astype(dtype, copy=False)
            cnt[r : r + h, c : c + w] = n

        yield write
        with _quiet_zarr():
            zarr.consolidate_metadata(tmp)


def assemble(grid: TileGrid, piece_path: Callable[[Tile], Path], out: Path, *, fmt: str, dtype: str,
             georef: Georef, bands: list[str], overwrite: bool = False,
             progress: Callable[[int], None] | None = None, metadata: dict | None = None) -> None:
    """Blend every piece into the final ``out`` (``fmt`` ∈ {cog, zarr}, float ``dtype``).

    ``progress(n_pixels)`` is called after each written block.
    """
    cache: dict[int, np.ndarray] = {}

    def piece(t: Tile) -> np.ndarray:
        # A few recent memory maps only: their touched pages count in RSS, so keep RSS per block.
        if t.index not in cache:
            if len(cache) >= 8:
                del cache[next(iter(cache))]
            cache[t.index] = read_piece(piece_path(t))
        return cache[t.index]

    if fmt == "cog":
        sink = cog_sink(out, georef, grid.height, grid.width, bands, dtype, metadata)
    else:
        sink = zarr_sink(out, georef, grid.height, grid.width, bands, dtype, metadata, overwrite=overwrite)
    with sink as write:
        for window in blocks(grid.height, grid.width):
            emb, n = blend_window(grid, piece, window, len(bands))
            write(window, emb, n)
            if progress is not None:
                progress(window[2] * window[3])
