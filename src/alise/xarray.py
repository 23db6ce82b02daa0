"""xarray cubes in, lazy dask-backed DataArrays out: embeddings, reconstructions, change maps.

::

    import alise.xarray
    emb = alise.xarray.encode(cube, scl=scl)          # cube (time, band, y, x) DN → lazy (query, feature, y, x)
    emb.isel(y=slice(0, 500)).mean("feature").compute()   # encodes only the tiles these chunks need
    img = alise.xarray.reconstruct(cube, ["2018-06-01", "2018-07-15"])   # lazy (time, band, y, x) DN
    dist = alise.xarray.change(cube_2018, cube_2019)                     # lazy (y, x) Eq. 12 distance
    emb.to_zarr("emb.zarr")                            # or: alise.xarray.encode(cube, out="emb.zarr")
    emb = alise.xarray.open_embedding("emb.tif")       # any alise encode output (COG or zarr) → (query, feature, y, x)

The cube is an ``xarray.DataArray (time, band, y, x)`` of L2A digital numbers (numpy- or
dask-backed, e.g. from ``odc.stac.load``, ``stackstac``, ``xr.open_zarr``), or a ``Dataset``
laid out as :mod:`alise.data.cube` describes (``s2`` + an optional mask). It is read as a
:class:`~alise.data.cube.CubeSource`, so dates, bands, nodata, the +1000 offset and clear masks
follow the rules of ``alise encode``, and the numbers are those of ``alise encode``,
``alise reconstruct`` and ``alise change`` on the same data (``tests/test_xarray_api.py``).

Eager, at call time: the cube's dates and decimated overview (clear fraction of each date, units
and offset survey, :meth:`~alise.data.source.SITSSource.offsets`; a dask cube computes that
overview), and for a GroupNorm model the raster-wide GroupNorm statistics
(:func:`alise.encode.runner.estimate_group_stats`: ≤ 16 windows of 64² px read and run through
the UNet). Nothing is encoded until the result is computed.

The graph, and why not ``dask.array.map_overlap``. A pixel of ``alise encode``'s output is the
sum of the outputs of the ≤ 4 tiles covering it, weighted by normalised weights that depend on the
grid alone (:mod:`alise.encode.tiling`); the tiles start at 0 on the UNet's 8-pixel grid, advance
by ``tile − overlap`` and the last one is shifted back to end on the raster edge (reflection-
extended to a multiple of 8). ``map_overlap`` shares *inputs* between neighbouring chunks (a
symmetric halo, padded at every raster edge) and runs one function per chunk: it cannot hand a
chunk the *outputs* of its neighbours' model calls, and one model call per chunk-plus-halo would
see other windows than those tiles — other numbers — unless each chunk re-ran every tile it
touches (up to 4 model calls per tile). So the graph is built on the tile grid with
``dask.delayed``:

* one task per tile of the :class:`~alise.encode.tiling.TileGrid`: the tile's window of the cube
  (only the dask chunks and dates it needs) → :func:`~alise.encode.runner.read_batch` (offset,
  nodata, clear mask, normalisation, reflection) → :func:`~alise.encode.runner.run_model` → its
  piece ``(Q·D + 1, h, w)`` (embedding, clear count: what ``alise encode`` writes per tile), cut
  into one part per output chunk it overlaps, so that what waits for a later chunk is only that
  part;
* one task per output chunk: :func:`~alise.encode.writers.blend_window` of the parts covering it,
  in tile order — the float operations of ``alise encode``'s merge, hence its numbers;
* the inference copy of the model is one key of the graph (``dask.delayed(net, name=...)``),
  shared by every tile task, the decoder of :func:`reconstruct` and both series of
  :func:`change`: a distributed scheduler ships it once per worker, not once per task.

Output chunks: ``chunks`` px square, by default the tile stride (``tile − overlap``, 224 px with
the default 256 / 32) so that chunk edges fall on tile starts: most chunks then need 2 × 2 tiles, and
what a tile leaves for its neighbours' chunks is its overlap bands. :func:`reconstruct` and
:func:`change` are per-pixel heads on that lazy embedding (``dask.array.map_blocks`` of
:func:`alise.downstream.raster.decode_embedding` and
:func:`alise.downstream.change.embedding_distance`).

Memory and threads. A tile task holds one tile's stack and features (the tile side is chosen as
``alise encode`` does, bounded for long series); an output chunk holds its own parts. Model calls
of one process run one at a time (:data:`_MODEL_LOCK`: a call already uses every core through
torch's threads, and one tile's activations at a time bound the memory); reads and blending run
in dask's other threads. The parts of finished tiles that wait for a neighbour before their chunk
is blended are what could grow with the raster: dask's local schedulers run this graph in
``dask.order``'s static order, which does not walk a stencil of tiles row by row, so on the
threaded scheduler most parts of a large raster would wait at once. They are held by one
:class:`_Waiting` store per graph: in RAM up to ``waiting_memory`` (default
:data:`WAITING_MEMORY`), beyond that in a temporary folder (:class:`zict.Buffer`, as
``dask.distributed`` workers spill), each part's data released with dask's handle to it. On a
``dask.distributed`` cluster the parts are plain arrays and the workers' own ``memory_limit``
spills them. ``benchmarks/xarray_memory.py`` measures the peak RSS of streaming growing synthetic
cubes to zarr (docs/encode.md, "From Python").

``encode(..., out="emb.zarr")`` runs the file pipeline of ``alise encode`` instead (pieces on
disk, resumable, any ``dtype``, memory bounded by the tile) and returns the store opened lazily.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from alise.data.cube import CubeSource
from alise.encode.readers import open_embedding

__all__ = ["change", "encode", "open_embedding", "reconstruct"]

#: One model call at a time per process: each call uses every core (torch intra-op threads) and
#: one tile's activations at a time bound the memory; reads go on in other threads.
_MODEL_LOCK = threading.Lock()


# ---------------------------------------------------------------------------------------------
# Inputs.


def _dataset(cube, valid=None, scl=None):
    """The ``xarray.Dataset`` of a cube given as a DataArray (+ mask arrays) or a Dataset."""
    import xarray as xr

    from alise.errors import AliseError

    if isinstance(cube, xr.DataArray):
        extra = {k: v for k, v in (("valid", valid), ("scl", scl)) if v is not None}
        return xr.Dataset({"s2": cube, **extra})
    if isinstance(cube, xr.Dataset):
        if valid is not None or scl is not None:
            raise AliseError("give valid= / scl= with a DataArray cube; a Dataset carries its own mask variable")
        return cube
    raise AliseError(f"expected an xarray DataArray or Dataset (time, band, y, x), got {type(cube).__name__}")


def _model(model):
    """``(model, name)`` from a loaded model, a model directory, a built-in name or None."""
    from alise.model.io import load_model

    if isinstance(model, (str, Path)) or model is None:
        model, info = load_model(model)
        return model, info["name"]
    return model, getattr(model, "name", "") or "in-memory model"


def _source(ds, name, model, min_clear, start, end):
    """The cube as a :class:`CubeSource`, its dates at least ``min_clear`` clear (default: the
    model's ``input_min_clear``), as ``alise encode`` selects them."""
    from alise.data.subset import clear_dates

    source = CubeSource(Path(str(name or "cube")), dataset=ds, start=start, end=end)
    return clear_dates(source, model.input_min_clear if min_clear is None else min_clear)


def _check_chunks(chunks) -> None:
    from alise.errors import AliseError

    if chunks is not None and (not isinstance(chunks, (int, np.integer)) or isinstance(chunks, bool) or chunks < 1):
        raise AliseError(f"chunks={chunks!r}: the side of the output chunks in pixels, e.g. chunks=224")


#: Default RAM of one lazy graph's waiting parts (:class:`_Waiting`), per process.
WAITING_MEMORY = "512MiB"


def _waiting_limit(waiting_memory) -> int:
    from dask.utils import parse_bytes

    from alise.errors import AliseError

    try:
        limit = parse_bytes(waiting_memory) if isinstance(waiting_memory, str) else int(waiting_memory)
    except (TypeError, ValueError):
        limit = -1
    if isinstance(waiting_memory, bool) or limit < 0:
        raise AliseError(f"waiting_memory={waiting_memory!r}: bytes of RAM for the tile outputs that wait for "
                         f"their neighbours, e.g. \"512MiB\" or 0 (no limit)")
    return limit


# ---------------------------------------------------------------------------------------------
# Tasks of the graph (module-level functions and classes: picklable for dask.distributed).


class _CubeWindow(CubeSource):
    """One tile's window of the cube, materialised by dask (numpy), read by the cube's own rules
    with the *whole* cube's per-date offsets (a survey of the window alone could decide otherwise)."""

    def __init__(self, data, offsets: np.ndarray, clear_scl):
        super().__init__(Path("window"), dataset=data, clear_scl=clear_scl)
        self._cube_offsets = offsets

    def offsets(self) -> np.ndarray:
        return self._cube_offsets


@dataclass(frozen=True)
class _Series:
    """What the tile tasks of one cube share besides the model (one key of the graph)."""

    days: object  # torch.Tensor (T,) float32, days since 2014-03-03 of the dates kept
    offsets: np.ndarray  # (T,) DN subtracted from each date
    group_stats: list | None  # [(mean (T, G), rstd (T, G))] per GroupNorm layer, on the device
    device: object  # torch.device
    precision: str
    chunk_pixels: int | None
    clear_scl: frozenset


def _clip(tile, window):
    """``tile`` cut to the raster ``window`` ``(row_off, col_off, h, w)``: the clipped tile (same
    index) and the slices of that part in the tile's own pixels."""
    r0, c0, h, w = window
    a0, a1 = max(r0, tile.row_off), min(r0 + h, tile.row_off + tile.height)
    b0, b1 = max(c0, tile.col_off), min(c0 + w, tile.col_off + tile.width)
    part = replace(tile, row_off=a0, col_off=b0, height=a1 - a0, width=b1 - b0, read_height=a1 - a0,
                   read_width=b1 - b0)
    return part, (slice(a0 - tile.row_off, a1 - tile.row_off), slice(b0 - tile.col_off, b1 - tile.col_off))


class _Waiting:
    """The parts of finished tiles that wait for the other tiles of their output chunk, on dask's
    local (threaded, synchronous) schedulers: in RAM up to ``limit`` bytes, the least recently
    used beyond that in a temporary folder (:class:`zict.Buffer`, the spilling of
    ``dask.distributed`` workers). Dask's static task order (``dask.order``) does not walk this
    graph row by row, so without a bound the waiting parts grow with the raster (docs/encode.md).

    A part is held as a :class:`_Held` handle whose life is its data's: when dask releases the
    handle (its chunk blended, or not needed by this compute) the data goes too. In a
    ``dask.distributed`` worker, or in another process (the store is pickled as a disabled one),
    parts are plain arrays and the workers' own memory manager spills them.
    """

    def __init__(self, limit: int):
        self.limit = int(limit)
        self.spilled = 0  # bytes written to the folder, for the record (tests, benchmarks)
        self.folder: str | None = None
        self._buf = None  # zict.Buffer, made at the first part
        self._lock = threading.Lock()
        self._dropped: list[str] = []  # handles released while the buffer was busy
        self._keys = itertools.count()

    def __reduce__(self):
        return (_Waiting, (0,))  # another process: parts travel as arrays

    def _buffer(self):
        if self._buf is None:
            import shutil
            import tempfile
            import weakref

            import dask
            import zict

            self.folder = tempfile.mkdtemp(prefix="alise-waiting-", dir=dask.config.get("temporary-directory", None))
            weakref.finalize(self, shutil.rmtree, self.folder, True)

            def spill(key, part):
                self.spilled += part.nbytes

            slow = zict.Func(_dump, _load, zict.File(self.folder))
            self._buf = zict.Buffer({}, slow, self.limit, weight=lambda k, a: a.nbytes, fast_to_slow_callbacks=spill)
        return self._buf

    def _purge(self) -> None:
        while self._dropped:
            self._buf.pop(self._dropped.pop(), None)

    def hold(self, part: np.ndarray):
        """``part`` kept here (a :class:`_Held`), or ``part`` itself when this store is off."""
        if self.limit <= 0 or _in_distributed_worker():
            return part
        with self._lock:
            buf = self._buffer()
            key = str(next(self._keys))  # zict.File names its files by key
            buf[key] = part
            self._purge()
        return _Held(self, key)

    def take(self, held) -> np.ndarray:
        """The array of a part given by :meth:`hold` (read back from the folder if it waited there)."""
        if not isinstance(held, _Held):
            return held
        with self._lock:
            part = self._buf[held.key]
            self._purge()
        return part

    def in_ram(self) -> int:
        """Bytes of parts held in RAM now (released handles purged first)."""
        if self._buf is None:
            return 0
        with self._lock:
            self._purge()
            return int(self._buf.fast.total_weight)

    def release(self, key: str) -> None:
        self._dropped.append(key)
        if self._lock.acquire(blocking=False):  # busy (maybe this very thread, mid-operation): later
            try:
                self._purge()
            finally:
                self._lock.release()


class _Held:
    """A part of a tile kept by a :class:`_Waiting` store; its data lives as long as this handle."""

    __slots__ = ("key", "store", "__weakref__")

    def __init__(self, store: _Waiting, key: str):
        import weakref

        self.store, self.key = store, key
        weakref.finalize(self, store.release, key)

    def __reduce__(self):
        return (np.asarray, (self.store.take(self),))  # pickled (another process): the array itself


def _dump(part: np.ndarray) -> list:
    """A (contiguous) part as the buffers of its file, its data not copied: pickle protocol 5
    with the array's buffer out of band, after the pickle's length (8 bytes) and the pickle."""
    import pickle

    raw = []
    head = pickle.dumps(part, protocol=5, buffer_callback=raw.append)
    return [len(head).to_bytes(8, "little"), head, *(b.raw() for b in raw)]


def _load(data: bytearray) -> np.ndarray:
    """:func:`_dump`'s file read back; the array is a writable view of ``data`` (no copy)."""
    import pickle

    view = memoryview(data)
    n = int.from_bytes(view[:8], "little")
    return pickle.loads(view[8:8 + n], buffers=[view[8 + n:]])


def _in_distributed_worker() -> bool:
    try:
        from distributed import get_worker

        get_worker()
        return True
    except (ImportError, ValueError):
        return False


def _encode_tile(net, series: _Series, waiting: _Waiting, data, tile, windows):
    """The piece of ``tile`` — ``(Q·D + 1, h, w)`` float32: embedding, then the clear-observation
    count, as the pieces of ``alise encode`` — cut into one copy per output chunk in ``windows``
    (a part waiting for a later chunk then holds only that part), each held by ``waiting``.
    ``data``: the cube's window of the tile (its dates kept, numpy)."""
    from alise.encode.runner import read_batch, run_model

    local = replace(tile, row_off=0, col_off=0)  # ``data`` starts at the tile's corner
    x, counts = read_batch(_CubeWindow(data, series.offsets, series.clear_scl), [local], net.norm)
    with _MODEL_LOCK:
        y = run_model(net, x, series.days, series.device, series.precision, series.chunk_pixels, series.group_stats)
    piece = np.concatenate([y[0], counts[0][None].astype(np.float32)])
    return tuple(waiting.hold(piece[(slice(None), *_clip(tile, w)[1])].copy()) for w in windows)


class _ChunkTiles:
    """What :func:`~alise.encode.writers.blend_window` asks of a grid, for one output chunk whose
    pieces are already cut to it: the covering tiles clipped to the chunk, their weights alike."""

    def __init__(self, grid, window):
        self.tiles, self.weights = [], {}
        for t in grid.tiles_in(*window):  # the fixed (index) order of the sums
            part, src = _clip(t, window)
            self.tiles.append(part)
            self.weights[t.index] = grid.weight(t)[src]

    def tiles_in(self, *window):
        return self.tiles

    def weight(self, tile):
        return self.weights[tile.index]


def _blend(grid, window, n_q: int, waiting: _Waiting, *parts):
    """Output chunk ``window`` from the parts of ``grid.tiles_in(window)`` cut to it (in that
    order, as held by ``waiting``): ``embedding (Q, D, h, w)`` float32 (NaN: no clear
    observation), ``n_clear (h, w)`` uint16."""
    from alise.encode.writers import blend_window

    parts = [waiting.take(p) for p in parts]
    tiles = _ChunkTiles(grid, window)
    by_index = {t.index: p for t, p in zip(tiles.tiles, parts)}
    emb, n_clear = blend_window(tiles, lambda t: by_index[t.index], window, parts[0].shape[0] - 1)
    return emb.reshape(n_q, -1, window[2], window[3]), n_clear


def _decode_block(block: np.ndarray, net, days) -> np.ndarray:
    """``embedding (Q, D, h, w)`` → reconstructed DN ``(T', C, h, w)`` float32 (NaN: no embedding)."""
    from alise.downstream.raster import decode_embedding

    with _MODEL_LOCK:
        return decode_embedding(net, _tensor(block).to(days.device), days)


def _distance_block(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Eq. 12 distance ``(h, w)`` float32 of two ``(Q, D, h, w)`` embedding blocks."""
    from alise.downstream.change import embedding_distance

    return embedding_distance(_tensor(a), _tensor(b)).numpy().astype(np.float32)


def _tensor(block: np.ndarray):
    """A dask block as a torch tensor (copied only when read-only or not contiguous)."""
    import torch

    return torch.from_numpy(np.require(block, requirements=("C", "W")))


# ---------------------------------------------------------------------------------------------
# Building the graph.


@dataclass
class _Lazy:
    """A cube's lazy embedding and what was decided to build it."""

    embedding: object  # dask array (Q, D, H, W) float32
    n_clear: object  # dask array (H, W) uint16
    source: object  # the CubeSource (dates kept)
    var: object  # the cube's DataArray (time, band, y, x) in the input
    metadata: dict  # output_metadata of the embedding (zarr layout)


class _Model:
    """The model, loaded once, with its inference copy as one key of the graph."""

    def __init__(self, model, device: str):
        import dask

        from alise.encode.array import inference_copy
        from alise.encode.runner import model_fingerprint, resolve_device

        self.model, self.name = _model(model)
        self.device = resolve_device(device)
        self.net = inference_copy(self.model, self.device)  # what alise encode runs
        self.fingerprint = model_fingerprint(self.model)
        self.key = dask.delayed(self.net, name=f"alise-model-{self.fingerprint[:24]}-{self.device}", traverse=False)


def _lazy_embedding(m: _Model, ds, name, *, min_clear, start, end, tile, overlap, chunks, progress,
                    waiting_memory) -> _Lazy:
    import dask
    import dask.array as da
    import torch
    from dask.base import tokenize

    from alise.data.subset import DateSubset
    from alise.encode import EncodeOptions
    from alise.encode.runner import estimate_group_stats, output_metadata, tile_grid

    _check_chunks(chunks)
    limit = _waiting_limit(waiting_memory)
    source = _source(ds, name, m.model, min_clear, start, end)
    opts = EncodeOptions(tile=tile, overlap=overlap, device=str(m.device), progress=progress,
                         model_name=m.name).validate()
    grid, opts = tile_grid(m.model, source, opts)
    offsets = source.offsets()  # the units survey: fails on 0–1 reflectance before any graph is built
    stats = estimate_group_stats(m.net, source, grid, opts, m.device)
    pairs = None if stats is None else stats.pairs(m.device)
    cube = source.parent if isinstance(source, DateSubset) else source
    series = _Series(torch.as_tensor(np.asarray(source.days, dtype=np.float32)), offsets, pairs, m.device,
                     opts.precision, opts.chunk_pixels, cube.clear_scl)
    token = tokenize(m.fingerprint, series.days.numpy(), offsets, str(m.device), opts.precision,
                     sorted(cube.clear_scl), None if stats is None else [t.numpy() for t in stats.mean + stats.rstd])
    series_key = dask.delayed(series, name=f"alise-series-{token}", traverse=False)

    # The cube's variables that are read, the dates kept (in order), every variable dask-backed.
    lookup = {t.item(): i for i, t in enumerate(np.asarray(ds[cube.var]["time"].values).astype("datetime64[D]"))}
    names = [cube.var] + ([cube.mask_var] if cube.mask_var else [])
    kept = ds[names].isel(time=[lookup[d] for d in source.dates]).chunk({})
    token = tokenize(token, kept, grid)

    # Output chunks: by default the tile stride, so that chunk edges fall on tile starts and what
    # waits for a later chunk is a tile's overlap band, not the whole tile (module docstring).
    side = int(chunks) if chunks is not None else grid.tile - grid.overlap
    rows = [(r, min(side, grid.height - r)) for r in range(0, grid.height, side)]
    cols = [(c, min(side, grid.width - c)) for c in range(0, grid.width, side)]
    windows = [(r, c, h, w) for r, h in rows for c, w in cols]
    covering = {t.index: [] for t in grid.tiles}
    for win in windows:
        for t in grid.tiles_in(*win):
            covering[t.index].append(win)
    waiting = dask.delayed(_Waiting(limit), name=f"alise-waiting-{limit}-{token}", traverse=False)
    parts = {}
    for t in grid.tiles:
        cut = dask.delayed(_encode_tile, pure=True, nout=len(covering[t.index]))(
            m.key, series_key, waiting, kept.isel(y=slice(t.row_off, t.row_off + t.read_height),
                                         x=slice(t.col_off, t.col_off + t.read_width)),
            t, covering[t.index], dask_key_name=f"alise-tile-{t.name}-{token}")
        parts.update({(t.index, win): p for win, p in zip(covering[t.index], cut)})
    grid_key = dask.delayed(grid, name=f"alise-grid-{token}", traverse=False)
    blend = dask.delayed(_blend, pure=True, nout=2)
    n_q, d = m.model.config.n_q, m.model.config.d_model
    emb_rows, count_rows = [], []
    for r, h in rows:
        emb_rows.append([])
        count_rows.append([])
        for c, w in cols:
            win = (r, c, h, w)
            e, n = blend(grid_key, win, n_q, waiting, *(parts[t.index, win] for t in grid.tiles_in(*win)),
                         dask_key_name=f"alise-chunk-{r}-{c}-{token}")
            emb_rows[-1].append(da.from_delayed(e, (n_q, d, h, w), dtype=np.float32))
            count_rows[-1].append(da.from_delayed(n, (h, w), dtype=np.uint16))
    return _Lazy(da.block([[emb_rows]]), da.block(count_rows), source, ds[cube.var],
                 output_metadata(m.model, source, m.name, "zarr"))


def _georeferenced(data, dims, coords, lazy: _Lazy, attrs: dict):
    """A DataArray on the cube's ``y``/``x`` coordinates with its CRS and transform (rioxarray)."""
    import rioxarray  # noqa: F401  (registers the .rio accessor)
    import xarray as xr

    coords = {**{k: lazy.var[k] for k in ("y", "x") if k in lazy.var.coords}, **coords}
    out = xr.DataArray(data, dims=dims, coords=coords, attrs=attrs)
    g = lazy.source.grid
    if g.crs is not None:
        out = out.rio.write_crs(g.crs.to_wkt())
    if g.transform is not None:
        out = out.rio.write_transform(g.transform)
    return out


# ---------------------------------------------------------------------------------------------
# Public functions.


def encode(cube, model=None, *, out: str | Path | None = None, valid=None, scl=None, min_clear: float | None = None,
           start=None, end=None, tile: int | None = None, overlap: int = 32, dtype: str = "float32",
           device: str = "auto", progress: bool = False, overwrite: bool = False, chunks: int | None = None,
           waiting_memory: int | str = WAITING_MEMORY):
    """Encode a ``(time, band, y, x)`` cube of L2A digital numbers into aligned embeddings.

    Args:
        cube: ``xarray.DataArray (time, band, y, x)`` (a ``band`` coordinate with Sentinel-2 names
            picks bands by name; ``time`` datetimes; CRS and transform via rioxarray), numpy- or
            dask-backed, or a ``Dataset`` laid out as docs/data-formats.md §7 (``s2`` + optional
            ``valid`` / ``mask`` / ``scl`` / ``labels``).
        model: a loaded ALISE model, a model directory or built-in name; None: the built-in model.
        out: None (default): a lazy result, computed by dask (module docstring). A ``.zarr`` path:
            run the resumable file pipeline of ``alise encode`` into that store now (an
            interrupted call with the same ``out`` resumes) and return it opened lazily.
        valid, scl: optional ``(time, y, x)`` clear mask (True = clear) or Sen2Cor SCL for a DataArray cube.
        min_clear: dates kept (clear fraction over the cube); default the model's ``input_min_clear``.
        start, end: date range kept (``"YYYY-MM-DD"``).
        tile, overlap, device, progress: as ``alise encode`` (``progress``: the GroupNorm
            statistics' bar, and with ``out`` the tiles').
        dtype: ``"float32"``; ``"float16"``; ``"int8"`` only with ``out`` (its scale needs the
            value range of the whole raster).
        overwrite: with ``out``, replace an existing store.
        chunks: side in pixels of the lazy result's ``(y, x)`` chunks; default the tile stride
            (``tile − overlap``: chunk edges on tile starts, module docstring); one chunk along
            ``query`` and ``feature``.

    Returns:
        ``xarray.DataArray (query, feature, y, x)`` float32 (float16 if asked), dask-backed, with
        the input's ``y``/``x`` coordinates and CRS, ``n_clear (y, x)`` uint16 (clear
        observations used) as a coordinate and the output metadata (docs/encode.md, "Metadata")
        as attributes; NaN where a pixel had no clear observation.
    """
    from alise.encode.writers import DTYPES, quantisation_metadata
    from alise.errors import AliseError

    ds = _dataset(cube, valid, scl)
    if dtype not in DTYPES:
        raise AliseError(f"dtype={dtype!r}: choose one of {', '.join(DTYPES)}")
    if out is not None:
        return _encode_to_store(ds, getattr(cube, "name", None), model, out, min_clear=min_clear, start=start,
                                end=end, tile=tile, overlap=overlap, dtype=dtype, device=device, progress=progress,
                                overwrite=overwrite)
    if dtype == "int8":
        raise AliseError("dtype='int8' needs the value range of the whole raster: give out='emb.zarr' "
                         "(written now), or keep float32 / float16 for a lazy result")
    lazy = _lazy_embedding(_Model(model, device), ds, getattr(cube, "name", None), min_clear=min_clear, start=start,
                           end=end, tile=tile, overlap=overlap, chunks=chunks, progress=progress,
                           waiting_memory=waiting_memory)
    n_q, d = lazy.embedding.shape[:2]
    attrs = json.loads(json.dumps({**lazy.metadata, **quantisation_metadata(None, "zarr")}, default=str))
    emb = _georeferenced(lazy.embedding if dtype == "float32" else lazy.embedding.astype(dtype),
                         ("query", "feature", "y", "x"),
                         {"query": np.arange(n_q, dtype=np.int32), "feature": np.arange(d, dtype=np.int32),
                          "n_clear": (("y", "x"), lazy.n_clear)},
                         lazy, {**attrs, "long_name": "ALISE aligned embedding"})
    return emb.rename("embedding")


def _encode_to_store(ds, name, model, out, *, min_clear, start, end, tile, overlap, dtype, device, progress,
                     overwrite):
    """``encode(..., out=...)``: the file pipeline of ``alise encode`` into the zarr store ``out``."""
    from alise.encode import EncodeOptions
    from alise.encode import encode as encode_raster
    from alise.errors import AliseError

    out = Path(out)
    if out.suffix.lower() != ".zarr":
        raise AliseError(f"out={out}: the embedding of a cube is a zarr store; name it {out.stem}.zarr")
    model, model_name = _model(model)
    source = _source(ds, name, model, min_clear, start, end)
    opts = EncodeOptions(tile=tile, overlap=overlap, dtype=dtype, device=device, progress=progress,
                         overwrite=overwrite, model_name=model_name).validate()
    encode_raster(model, source, out, opts)
    return open_embedding(out)  # int8: decoded values


def _target_dates(dates) -> list[dt.date]:
    """Sorted unique target dates from ``"D1,D2"``, ``datetime.date``/``datetime``/``numpy.datetime64``
    /``pandas.Timestamp`` values or ISO strings."""
    import pandas as pd

    from alise.dates import parse_date
    from alise.errors import AliseError

    items = [t for t in dates.split(",") if t.strip()] if isinstance(dates, str) else list(np.atleast_1d(dates))
    if not items:
        raise AliseError("dates is empty: give target dates like ['2018-05-01', '2018-06-15']")
    out = set()
    for v in items:
        if isinstance(v, str):
            out.add(parse_date(v, where="dates"))
        elif isinstance(v, dt.date) and not isinstance(v, dt.datetime):
            out.add(v)
        else:
            try:
                out.add(pd.Timestamp(v).date())
            except (TypeError, ValueError):
                raise AliseError(f"dates: cannot read {v!r} as a date (give YYYY-MM-DD)") from None
    return sorted(out)


def _check_extrapolation(dates: list[dt.date], source) -> None:
    """``alise reconstruct``'s rule (:func:`alise.downstream.reconstruct.extrapolation`): targets
    more than a year outside the encoded dates are refused, others warned."""
    from alise.downstream.reconstruct import extrapolation

    note = extrapolation(dates, source.dates, "dates")
    if note:
        warnings.warn(note, stacklevel=3)


def reconstruct(cube, dates, model=None, *, valid=None, scl=None, min_clear: float | None = None, start=None,
                end=None, tile: int | None = None, overlap: int = 32, device: str = "auto", chunks: int | None = None,
                dtype: str = "float32", progress: bool = False, waiting_memory: int | str = WAITING_MEMORY):
    """Cloud-free L2A images of a ``(time, band, y, x)`` cube at any dates, decoded from its
    embedding ([P] Eq. 8–9): ``alise reconstruct`` as a lazy array.

    Args:
        cube, model, valid, scl, min_clear, start, end, tile, overlap, device, chunks, progress,
        waiting_memory: as :func:`encode` (the encoded dates: ``start``/``end``/``min_clear``).
        dates: target dates: ``"2018-06-01,2018-07-15"``, or a sequence of ISO strings,
            ``datetime.date``, ``numpy.datetime64`` or ``pandas.Timestamp``. More than 366 days
            outside the encoded dates is refused; any date outside them warns (extrapolation).
        dtype: ``"float32"`` (default): digital numbers as decoded, NaN where the pixel had no
            clear observation; ``"uint16"``: what ``alise reconstruct`` writes (rounded, clipped
            to 1…65535, 0 = nodata).

    Returns:
        ``xarray.DataArray (time, band, y, x)`` dask-backed, on the input's grid and CRS, ``time``
        the sorted target dates, ``band`` the model's bands (B02 … B12).
    """
    import dask
    import torch
    from dask.base import tokenize

    from alise.dates import days_since_origin
    from alise.downstream.reconstruct import to_uint16
    from alise.errors import AliseError

    if dtype not in ("float32", "uint16"):
        raise AliseError(f"dtype={dtype!r}: choose float32 (decoded DN, NaN nodata) or uint16 (as alise reconstruct)")
    targets = _target_dates(dates)
    ds = _dataset(cube, valid, scl)
    m = _Model(model, device)
    lazy = _lazy_embedding(m, ds, getattr(cube, "name", None), min_clear=min_clear, start=start, end=end, tile=tile,
                           overlap=overlap, chunks=chunks, progress=progress, waiting_memory=waiting_memory)
    _check_extrapolation(targets, lazy.source)
    days_np = days_since_origin(targets).astype(np.float32)
    days = dask.delayed(torch.as_tensor(days_np).view(1, -1).to(m.device), traverse=False,
                        name=f"alise-target-days-{tokenize(days_np, str(m.device))}")
    emb = lazy.embedding
    bands = list(m.model.norm.bands)
    dn = emb.map_blocks(_decode_block, m.key, days, dtype=np.float32,
                        chunks=((len(targets),), (len(bands),), *emb.chunks[2:]))
    if dtype == "uint16":
        dn = dn.map_blocks(to_uint16, dtype=np.uint16)
    meta = lazy.metadata
    attrs = {"long_name": "reconstructed L2A digital numbers (reflectance x 10000)",
             "SOURCE": "alise reconstruct (decoder)", "nodata": 0 if dtype == "uint16" else "NaN",
             **{k: meta[k] for k in ("ALISE_MODEL", "ALISE_MODEL_SHA256", "ALISE_VERSION", "ALISE_DATES")}}
    times = np.array([np.datetime64(d, "ns") for d in targets])
    return _georeferenced(dn, ("time", "band", "y", "x"), {"time": times, "band": bands}, lazy, attrs) \
        .rename("reconstruction")


def change(cube_a, cube_b, model=None, *, valid_a=None, scl_a=None, valid_b=None, scl_b=None,
           min_clear: float | None = None, tile: int | None = None, overlap: int = 32, device: str = "auto",
           chunks: int | None = None, progress: bool = False, waiting_memory: int | str = WAITING_MEMORY):
    """Change score of two ``(time, band, y, x)`` cubes of the same grid (e.g. two years): the
    Eq. 12 distance of their embeddings, ``alise change``'s map as a lazy array.

    Args:
        cube_a, cube_b: the two series, as ``cube`` of :func:`encode` (their dates may differ).
        valid_a, scl_a, valid_b, scl_b: optional ``(time, y, x)`` masks of each (DataArray cubes).
        model, min_clear, tile, overlap, device, chunks, progress, waiting_memory: as
            :func:`encode` (``waiting_memory`` for each series); the model is loaded once and
            shared by both series.

    Returns:
        ``xarray.DataArray (y, x)`` float32, dask-backed: mean over the ``Q·D`` features of the
        squared difference of the two embeddings, NaN where a pixel had no clear observation in
        either series; on the grid and CRS of ``cube_a``.
    """
    import dask.array as da

    from alise.errors import AliseError

    ds_a, ds_b = _dataset(cube_a, valid_a, scl_a), _dataset(cube_b, valid_b, scl_b)
    ga, gb = (CubeSource(Path(k), dataset=ds).grid for k, ds in (("cube_a", ds_a), ("cube_b", ds_b)))
    if not ga.overlays(gb):
        raise AliseError(f"cube_a and cube_b are not on the same grid ({ga.describe()} vs {gb.describe()}): "
                         "resample one onto the other first")
    m = _Model(model, device)
    kw = dict(min_clear=min_clear, start=None, end=None, tile=tile, overlap=overlap, chunks=chunks, progress=progress,
              waiting_memory=waiting_memory)
    a, b = (_lazy_embedding(m, ds, getattr(c, "name", None), **kw) for ds, c in ((ds_a, cube_a), (ds_b, cube_b)))
    dist = da.map_blocks(_distance_block, a.embedding, b.embedding, drop_axis=(0, 1), dtype=np.float32)
    attrs = {"long_name": "change score (alise, Eq. 12)", "method": "alise", "a_dates": a.metadata["ALISE_DATES"],
             "b_dates": b.metadata["ALISE_DATES"],
             **{k: a.metadata[k] for k in ("ALISE_MODEL", "ALISE_MODEL_SHA256", "ALISE_VERSION")}}
    return _georeferenced(dist, ("y", "x"), {}, a, attrs).rename("change")
