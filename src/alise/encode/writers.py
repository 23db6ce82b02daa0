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
      (query 3, feature 17), the input's CRS and transform, nodata NaN where a pixel had no clear
      observation in the period. ``float16`` is stored as 16-bit floats (``NBITS=16``) and reads
      back as float32; ``int8`` stores ``round((value − offset) / scale)`` with a per-band scale
      and offset (GDAL band scale/offset: ``rasterio`` ``.scales``/``.offsets``) and nodata −128.
      The count of clear observations goes to a sidecar ``<stem>.n_clear.tif`` (uint16 COG).
    * **zarr** (``--format zarr``): a zarr **format 2** store (Blosc-zstd chunks, consolidated
      metadata) — the version GDAL ≥ 3.4 reads (GDAL 3.10 refuses zarr v3's ``bytes`` codec) —
      with ``embedding (query, feature, y, x)`` (chunks ``(64 // D or 1, min(D, 64), 256, 256)``,
      ``_FillValue`` NaN), ``n_clear (y, x)`` uint16, coordinates ``query``, ``feature``, ``y``,
      ``x`` (pixel centres) and ``spatial_ref`` (CF grid mapping with CRS WKT and GeoTransform, as
      written by rioxarray). ``xr.open_zarr(OUT).rio.crs`` works, and so does GDAL:
      ``rasterio.open('ZARR:"OUT.zarr":/embedding')`` sees Q·D bands (query-major, as in the COG)
      with CRS and transform. ``int8`` has one scale and offset per (query, feature), as the
      variables ``embedding_scale``/``embedding_offset (query, feature)`` and as the attributes
      ``ALISE_SCALE``/``ALISE_OFFSET`` of ``embedding`` (lists in GDAL band order), with
      ``_FillValue`` −128: ``value = embedding * embedding_scale + embedding_offset``
      (:func:`dequantise_embedding`). Not CF ``scale_factor``/``add_offset``: CF allows only a scalar,
      about 3× coarser than per-band ranges, and it cost 0.013 of macro-F1 (docs/encode.md).

Both carry the :func:`alise.encode.runner.output_metadata` fields (GeoTIFF tags as strings; zarr
attributes of the group and of ``embedding``, typed JSON), plus the quantisation when ``int8``.

Quantisation (``int8``) needs each band's value range before the first block is written: it is
taken over the pieces (:func:`piece_ranges`) — a blended value is a convex combination of the
pieces' values at that pixel, so the pieces' min/max over pixels with a clear observation bound
the output exactly. The range ``[lo, hi]`` maps to −127…127: ``scale = (hi − lo) / 254``,
``offset = (hi + lo) / 2``; the round-trip error is at most ``scale / 2``.

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

from alise.data.source import RasterGrid
from alise.encode.tiling import Tile, TileGrid
from alise.outputs import atomic_dir, atomic_file, atomic_path

#: Output block (and GeoTIFF tile / zarr chunk) size in pixels.
BLOCK = 256
#: Bands (query × feature values) per zarr chunk: (BAND_CHUNK // D or 1) queries × min(D, BAND_CHUNK) features.
BAND_CHUNK = 64

FORMATS = ("cog", "zarr")
DTYPES = ("float32", "float16", "int8")
#: The stored value of a pixel without a clear observation in an ``int8`` output.
INT8_NODATA = -128
#: Quantised values span −INT8_MAX…INT8_MAX (symmetric around the offset).
INT8_MAX = 127
#: zarr compressor: Blosc-zstd with byte shuffle (GDAL's Zarr driver and numcodecs both read it).
ZARR_CLEVEL = 5
#: zarr variables of an int8 store's per-(query, feature) scale and offset.
ZARR_SCALE, ZARR_OFFSET = "embedding_scale", "embedding_offset"
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
class Quantisation:
    """``int8`` storage of float values: ``stored = round((value − offset) / scale)`` in
    −127…127, ``value ≈ stored · scale + offset`` (error ≤ ``scale / 2``), NaN ↔ −128.

    ``scale``, ``offset``: float64 arrays of one value per band (all equal for a global one).
    """

    scale: np.ndarray
    offset: np.ndarray

    @classmethod
    def from_range(cls, lo: np.ndarray, hi: np.ndarray, per_band: bool = True) -> "Quantisation":
        """The symmetric mapping of ``[lo, hi]`` (per band) onto −127…127; ``per_band=False``:
        one mapping of the overall range for every band."""
        lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
        if not per_band:
            lo, hi = np.full_like(lo, lo.min(initial=0.0)), np.full_like(hi, hi.max(initial=0.0))
        scale = (hi - lo) / (2 * INT8_MAX)
        scale = np.where(scale > 0, scale, 1.0)  # a constant band: exact at the offset
        return cls(scale, (hi + lo) / 2)

    def quantise(self, emb: np.ndarray) -> np.ndarray:
        """``(n_bands, h, w)`` float → int8, NaN → :data:`INT8_NODATA`."""
        s, o = self.scale[:, None, None], self.offset[:, None, None]
        with np.errstate(invalid="ignore"):
            q = np.clip(np.rint((emb.astype(np.float64) - o) / s), -INT8_MAX, INT8_MAX)
        return np.where(np.isnan(emb), INT8_NODATA, q).astype(np.int8)

    def dequantise(self, q: np.ndarray) -> np.ndarray:
        """int8 ``(n_bands, h, w)`` → float32, :data:`INT8_NODATA` → NaN."""
        v = q.astype(np.float64) * self.scale[:, None, None] + self.offset[:, None, None]
        return np.where(q == INT8_NODATA, np.nan, v).astype(np.float32)

    @property
    def is_global(self) -> bool:
        return bool(np.all(self.scale == self.scale[0]) and np.all(self.offset == self.offset[0]))


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


def tile_ranges(tiles, piece: Callable[[Tile], np.ndarray], n_bands: int,
                band_chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Per-band ``(lo, hi)`` float64 over the pixels with a clear observation of the pieces of
    ``tiles``; ``(+inf, −inf)`` for a band without any such pixel (so that ranges of disjoint sets
    of tiles combine by min/max into exactly the range of their union). Reads each piece once,
    ``band_chunk`` bands at a time."""
    lo, hi = np.full(n_bands, np.inf), np.full(n_bands, -np.inf)
    for t in tiles:
        p = piece(t)
        mask = np.asarray(p[n_bands]) > 0
        if not mask.any():
            continue
        for b in range(0, n_bands, band_chunk):
            v = np.asarray(p[b : min(b + band_chunk, n_bands)])[:, mask]
            lo[b : b + band_chunk] = np.minimum(lo[b : b + band_chunk], v.min(axis=1))
            hi[b : b + band_chunk] = np.maximum(hi[b : b + band_chunk], v.max(axis=1))
    return lo, hi


def finite_ranges(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(0, 0)`` for the bands :func:`tile_ranges` found empty."""
    lo, hi = np.array(lo, np.float64), np.array(hi, np.float64)
    empty = ~np.isfinite(lo)
    lo[empty], hi[empty] = 0.0, 0.0
    return lo, hi


def piece_ranges(grid: TileGrid, piece: Callable[[Tile], np.ndarray], n_bands: int,
                 band_chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Per-band ``(lo, hi)`` float64 of every piece over its pixels with a clear observation: exact
    bounds of the blended output (a convex combination of those values); ``(0, 0)`` for a band
    without any such pixel."""
    return finite_ranges(*tile_ranges(grid.tiles, piece, n_bands, band_chunk))


def blocks(height: int, width: int, block: int | None = None) -> Iterator[tuple[int, int, int, int]]:
    """Row-major windows ``(row_off, col_off, h, w)`` of ``block`` (default :data:`BLOCK`) pixels
    covering the raster: the output's blocks, zarr chunks and ``--dask`` regions."""
    block = block or BLOCK
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


def _scratch_tiff(path: Path, raster: RasterGrid, count: int, dtype: str, nodata):
    """A scratch GeoTIFF of the COG writer: band-interleaved ``BLOCK``-px tiles, fast zstd."""
    from alise.outputs import open_geotiff

    return open_geotiff(path, raster.height, raster.width, count, dtype, raster, nodata=nodata, tiled=True,
                        blockxsize=BLOCK, blockysize=BLOCK, interleave="band", compress="zstd", zstd_level=1,
                        bigtiff="if_safer")


def _to_cog(scratch: Path, out: Path, float_dtype: str | None) -> None:
    """Copy a scratch GeoTIFF (with overviews) to ``out`` in the cloud-optimised layout
    (``float_dtype`` None: integer values, horizontal predictor)."""
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


def tag_text(value) -> str:
    """A metadata value as GeoTIFF tag text: lists comma-joined, dicts as JSON, the rest ``str``."""
    import json

    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def quantisation_metadata(quant: Quantisation | None, fmt: str) -> dict:
    """The ``ALISE_QUANTISATION`` field of an output (``none`` for float outputs): how to decode."""
    if quant is None:
        return {"ALISE_QUANTISATION": "none"}
    if fmt == "cog":
        how = "value = stored * scale + offset with the GDAL scale/offset of each band"
    else:
        how = (f"value = embedding * {ZARR_SCALE} + {ZARR_OFFSET}, one scale and offset per (query, feature): the "
               f"variables {ZARR_SCALE}, {ZARR_OFFSET} (query, feature), also the attributes ALISE_SCALE, "
               "ALISE_OFFSET of embedding (one value per GDAL band, query-major)")
    return {"ALISE_QUANTISATION": f"int8: {how}; {INT8_NODATA} = no data; |error| <= scale/2"}


@contextlib.contextmanager
def cog_sink(out: Path, raster: RasterGrid, bands: list[str], dtype: str,
             metadata: dict | None = None, quant: Quantisation | None = None):
    """Write ``out`` (COG of ``dtype``; ``int8`` needs ``quant``) and its ``.n_clear.tif``
    sidecar; yields ``write(window, embedding float32, n_clear)``.

    Blocks go to scratch GeoTIFFs beside ``out`` (removed at the end, also on failure); the
    sidecar, then ``out``, appear under their final names only once complete.
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.windows import Window

    out, side = Path(out), n_clear_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    s_emb, s_cnt = (p.with_name(f".{p.name}.scratch.tif") for p in (out, side))
    is_int = dtype == "int8"
    try:
        with rasterio.Env(**_GDAL_ENV):
            with _scratch_tiff(s_emb, raster, len(bands), "int8" if is_int else "float32",
                               INT8_NODATA if is_int else float("nan")) as de, \
                    _scratch_tiff(s_cnt, raster, 1, "uint16", None) as dc:
                for i, name in enumerate(bands, start=1):
                    de.set_band_description(i, name)
                dc.set_band_description(1, "n_clear")
                if is_int:
                    de.scales, de.offsets = tuple(map(float, quant.scale)), tuple(map(float, quant.offset))
                tags = {**(metadata or {}), **quantisation_metadata(quant, "cog")}
                de.update_tags(**{k: tag_text(v) for k, v in tags.items()})

                def write(window, emb, n_clear):
                    win = Window(window[1], window[0], window[3], window[2])
                    de.write(quant.quantise(emb) if is_int else emb, window=win)
                    dc.write(n_clear[None], window=win)

                yield write
                factors = _overview_factors(raster.height, raster.width)
                if factors:
                    de.build_overviews(factors, Resampling.average)
                    dc.build_overviews(factors, Resampling.nearest)
            _to_cog(s_cnt, side, None)
            _to_cog(s_emb, out, None if is_int else dtype)
    finally:
        s_emb.unlink(missing_ok=True)
        s_cnt.unlink(missing_ok=True)


@contextlib.contextmanager
def _quiet_zarr():
    """Silence zarr's notices about formats and consolidated metadata not being in the v3 spec."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Zarr V3 specification.*")
        warnings.filterwarnings("ignore", message=".*Consolidated metadata.*")
        warnings.filterwarnings("ignore", message=".*Zarr format 2.*")
        yield


def _json_attrs(metadata: dict) -> dict:
    """Metadata as zarr attributes: JSON values kept as they are (lists, numbers, dicts)."""
    import json

    return json.loads(json.dumps(metadata, default=str))


def create_zarr(path: Path, raster: RasterGrid, bands: list[str], dtype: str,
                metadata: dict | None = None, n_q: int | None = None, quant: Quantisation | None = None) -> None:
    """Create the zarr format 2 store ``path`` of an embedding output (module docstring): every
    array, coordinate and attribute, consolidated, with no embedding values yet (all fill value).

    ``bands`` (query-major, ``n_q`` queries, one by default) fixes ``D = len(bands) / n_q``;
    ``dtype`` ``int8`` needs ``quant`` (stored as ``embedding_scale``/``embedding_offset``).
    Windows are then written with :func:`zarr_writer`, by one process or by several at once as long
    as their windows cover disjoint sets of chunks (``BLOCK``-aligned windows do).
    """
    import numcodecs
    import rioxarray  # noqa: F401  (registers the .rio accessor)
    import xarray as xr
    import zarr

    n_q = n_q or 1
    if len(bands) % n_q:
        raise ValueError(f"{len(bands)} bands are not {n_q} queries")
    n_d = len(bands) // n_q
    is_int = dtype == "int8"
    if is_int and quant is None:
        raise ValueError("an int8 zarr output needs its quantisation")
    height, width, tr = raster.height, raster.width, raster.transform
    a, b, c, d, e, f = raster.to_georef()["transform"]
    x = c + a * (np.arange(width) + 0.5) + b * 0.5  # pixel centres of the first row (north-up: b = d = 0)
    y = f + d * 0.5 + e * (np.arange(height) + 0.5)
    compressor = numcodecs.Blosc(cname="zstd", clevel=ZARR_CLEVEL, shuffle=numcodecs.Blosc.SHUFFLE)
    meta = _json_attrs({**(metadata or {}), **quantisation_metadata(quant, "zarr")})
    coords = xr.Dataset(coords=dict(query=np.arange(n_q, dtype=np.int32), feature=np.arange(n_d, dtype=np.int32),
                                    y=y, x=x))
    coords["query"].attrs["long_name"] = "ALISE query (learned temporal prototype)"
    coords["feature"].attrs["long_name"] = "feature of a query's embedding"
    if raster.crs is not None:
        coords = coords.rio.write_crs(raster.crs.to_wkt())
    coords = coords.rio.write_transform(tr)
    with _quiet_zarr():
        coords.to_zarr(path, mode="w", consolidated=False, zarr_format=2)
    g = zarr.open_group(path, mode="a", zarr_format=2)
    g.attrs.update(meta)
    attrs = {"grid_mapping": "spatial_ref"}
    emb_attrs = {**meta, **attrs, "_ARRAY_DIMENSIONS": ["query", "feature", "y", "x"],
                 "long_name": "ALISE aligned embedding"}
    if is_int:  # per (query, feature): CF's scalar scale_factor would be far coarser (docs/encode.md)
        emb_attrs.update(long_name=f"ALISE aligned embedding, int8: value = embedding * {ZARR_SCALE} + {ZARR_OFFSET}",
                         ALISE_SCALE=[float(v) for v in quant.scale], ALISE_OFFSET=[float(v) for v in quant.offset])
    with _quiet_zarr():
        g.create_array("embedding", shape=(n_q, n_d, height, width), dtype=dtype,
                       fill_value=INT8_NODATA if is_int else np.nan,
                       chunks=(max(1, BAND_CHUNK // n_d), min(n_d, BAND_CHUNK), min(BLOCK, height), min(BLOCK, width)),
                       compressors=compressor, attributes=emb_attrs)
        g.create_array("n_clear", shape=(height, width), dtype="uint16", fill_value=None,  # 0 is a value
                       chunks=(min(BLOCK, height), min(BLOCK, width)), compressors=compressor,
                       attributes={**attrs, "_ARRAY_DIMENSIONS": ["y", "x"], "long_name": "clear observations used"})
        if is_int:
            for name, values, what in ((ZARR_SCALE, quant.scale, "scale"), (ZARR_OFFSET, quant.offset, "offset")):
                g.create_array(name, shape=(n_q, n_d), dtype="float64", fill_value=None, compressors=None,
                               attributes={"_ARRAY_DIMENSIONS": ["query", "feature"],
                                           "long_name": f"int8 {what} of embedding: value = embedding * "
                                                        f"{ZARR_SCALE} + {ZARR_OFFSET}"})[...] = \
                    np.asarray(values, np.float64).reshape(n_q, n_d)
        zarr.consolidate_metadata(path)


def zarr_quantisation(group) -> Quantisation | None:
    """The int8 quantisation of an alise zarr store's ``embedding`` (an open zarr group): per band
    from ``embedding_scale``/``embedding_offset``, or the scalar CF ``scale_factor``/``add_offset``
    of stores written before them; None for a float store."""
    try:
        scale, offset = group[ZARR_SCALE], group[ZARR_OFFSET]
    except KeyError:
        arr = group["embedding"]
        s, o = arr.attrs.get("scale_factor"), arr.attrs.get("add_offset")
        if s is None and o is None:
            return None
        n = int(np.prod(arr.shape[:-2]))
        return Quantisation(np.full(n, 1.0 if s is None else float(s)), np.full(n, float(o or 0.0)))
    return Quantisation(np.asarray(scale[...], np.float64).ravel(), np.asarray(offset[...], np.float64).ravel())


def dequantise_embedding(ds):
    """``embedding`` of an alise zarr store opened with ``xr.open_zarr`` as float values: an int8
    store's ``embedding * embedding_scale + embedding_offset`` (float32; xarray has already turned
    −128 into NaN), a float store's ``embedding`` as it is."""
    e = ds["embedding"]
    if ZARR_SCALE not in ds:
        return e
    v = (e * ds[ZARR_SCALE] + ds[ZARR_OFFSET]).astype(np.float32).rename("embedding")
    v.attrs = {k: a for k, a in e.attrs.items() if k not in ("ALISE_SCALE", "ALISE_OFFSET")}
    v.attrs["long_name"] = "ALISE aligned embedding (decoded from int8)"
    return v


def zarr_writer(path: Path) -> Callable[[tuple[int, int, int, int], np.ndarray, np.ndarray], None]:
    """``write(window, embedding (Q·D, h, w) float32, n_clear (h, w))`` into the store ``path``
    (made by :func:`create_zarr`), cast or quantised to its dtype."""
    import zarr

    g = zarr.open_group(path, mode="r+", zarr_format=2)
    emb, cnt = g["embedding"], g["n_clear"]
    n_q, n_d = emb.shape[:2]
    quant = zarr_quantisation(g) if emb.dtype == np.int8 else None

    def write(window, e, n):
        r, c, h, w = window
        v = quant.quantise(e) if quant is not None else e.astype(emb.dtype, copy=False)
        emb[:, :, r : r + h, c : c + w] = v.reshape(n_q, n_d, h, w)
        cnt[r : r + h, c : c + w] = n

    return write


def zarr_windows(path: Path) -> Callable[[tuple[int, int, int, int]], tuple[np.ndarray, np.ndarray]]:
    """``read(window) → (embedding (Q·D, h, w), n_clear (h, w))`` of the float store ``path``: what
    :func:`zarr_writer` wrote there."""
    import zarr

    g = zarr.open_group(path, mode="r", zarr_format=2)
    emb, cnt = g["embedding"], g["n_clear"]

    def read(window):
        r, c, h, w = window
        return np.asarray(emb[:, :, r : r + h, c : c + w]).reshape(-1, h, w), np.asarray(cnt[r : r + h, c : c + w])

    return read


@contextlib.contextmanager
def zarr_sink(out: Path, raster: RasterGrid, bands: list[str], dtype: str, metadata: dict | None = None,
              overwrite: bool = False, n_q: int | None = None, quant: Quantisation | None = None):
    """Write a zarr format 2 store at ``out`` (:func:`create_zarr`), appearing under its name once
    complete; yields ``write(window, embedding float32, n_clear)``."""
    with atomic_dir(out, overwrite=overwrite) as tmp:
        create_zarr(tmp, raster, bands, dtype, metadata, n_q, quant)
        yield zarr_writer(tmp)


def write_output(out: Path, values: Callable[[tuple[int, int, int, int]], tuple[np.ndarray, np.ndarray]], *,
                 fmt: str, dtype: str, raster: RasterGrid, bands: list[str],
                 quant: Quantisation | None = None, overwrite: bool = False,
                 progress: Callable[[int], None] | None = None, metadata: dict | None = None,
                 n_q: int | None = None) -> None:
    """Write the output ``out`` block by block (:func:`blocks`), each block's float32 embedding and
    clear count given by ``values(window)``; ``int8`` needs ``quant``. ``progress(n_pixels)`` is
    called after each written block."""
    if fmt == "cog":
        sink = cog_sink(out, raster, bands, dtype, metadata, quant=quant)
    else:
        sink = zarr_sink(out, raster, bands, dtype, metadata, overwrite=overwrite, n_q=n_q, quant=quant)
    with sink as write:
        for window in blocks(raster.height, raster.width):
            emb, n = values(window)
            write(window, emb, n)
            if progress is not None:
                progress(window[2] * window[3])


def assemble(grid: TileGrid, piece_path: Callable[[Tile], Path], out: Path, *, fmt: str, dtype: str,
             raster: RasterGrid, bands: list[str], overwrite: bool = False,
             progress: Callable[[int], None] | None = None, metadata: dict | None = None,
             n_q: int | None = None) -> None:
    """Blend every piece into the final ``out`` (``fmt`` ∈ {cog, zarr}, ``dtype`` of :data:`DTYPES`).

    ``n_q``: queries of the band layout (zarr ``(query, feature, y, x)``; default 1). ``int8``
    first scans the pieces for each band's value range (:func:`piece_ranges`).
    """
    cache: dict[int, np.ndarray] = {}

    def piece(t: Tile) -> np.ndarray:
        # A few recent memory maps only: their touched pages count in RSS, so keep RSS per block.
        if t.index not in cache:
            if len(cache) >= 8:
                del cache[next(iter(cache))]
            cache[t.index] = read_piece(piece_path(t))
        return cache[t.index]

    quant = None
    if dtype == "int8":
        quant = Quantisation.from_range(*piece_ranges(grid, lambda t: read_piece(piece_path(t)), len(bands)))
    write_output(out, lambda window: blend_window(grid, piece, window, len(bands)), fmt=fmt, dtype=dtype,
                 raster=raster, bands=bands, quant=quant, overwrite=overwrite,
                 progress=progress, metadata=metadata, n_q=n_q)
