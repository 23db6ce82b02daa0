"""The encoding pipeline: read a tile → run the model → write its piece, for every tile of a raster.

::

    reader threads ──(bounded queue)──▶ model (main thread) ──(bounded queue)──▶ writer thread
    windowed read, normalise,            encode the tile stack                 pieces/<tile>.npy
    extend to the tile by reflection

Work directory. Everything a run needs to resume lives in ``OUT.parts/`` beside the output:
``plan.json`` (what is being computed: source, dates, grid, tiling, model fingerprint, output
format) and one piece per finished tile, written atomically (``writers.py``). A rerun with the same
plan skips the tiles whose piece exists — after a crash or a SIGKILL it does only what is missing
and, since pieces are blended in a fixed order, produces the identical output. A different plan is
refused (or, with ``--overwrite``, the stale work directory is discarded).

Shards. Tiles are grouped into batches of ``batch_tiles`` (the unit of work); ``--shard I/N``
takes batches ``I, I+N, I+2N, …``. N processes (a SLURM array, Dask or Ray tasks) share one work
directory; each writes only its own pieces; ``alise encode-merge OUT`` (:func:`merge`) then blends
all pieces into the output. A single run (N = 1) merges by itself. ``--dask``
(:mod:`alise.encode.distributed`) runs work units (:func:`encode_units`) as Dask tasks and writes
the output region by region instead of merging at the end; it keeps its finished regions in
``OUT.parts/regions/`` and deletes pieces no unfinished region needs, so only ``--dask`` resumes it.

Memory is bounded by the tile, never by the raster: at most ``workers`` batches are being read
(normalised in their read buffer), one is in the model and at most one is waiting to be written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import sys
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from alise.data.source import RasterGrid
from alise.encode.groupstats import MODES as GROUP_NORM_MODES
from alise.encode.array import extend, inference_copy
from alise.encode.groupstats import STATS_FILE, GroupStats, estimate, stats_samples
from alise.encode.tiling import DEFAULT_TILE, Tile, TileGrid, auto_tile
from alise.encode.writers import DTYPES, FORMATS, assemble, band_names, format_of, n_clear_path, write_piece
from alise.errors import AliseError
from alise.outputs import atomic_file, check_output

PLAN_FILE = "plan.json"
#: Finished output regions of a ``--dask`` run (:mod:`alise.encode.distributed`), under ``OUT.parts/``.
REGIONS_DIR = "regions"
PLAN_FORMAT = "alise-encode-plan"
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class EncodeOptions:
    """How to encode (command-line options of ``alise encode``).

    Attributes:
        tile, overlap: tile size and overlap in pixels (``tiling.py``); ``tile=None``: 256, or
            smaller for long series (:func:`alise.encode.tiling.auto_tile`).
        fmt: ``"cog"`` or ``"zarr"``, or None (default): from the output's suffix
            (:func:`alise.encode.writers.format_of`; a given value must agree with it);
            dtype: stored type, ``"float32"``, ``"float16"`` or ``"int8"`` (quantised with a scale
            and offset per band from its value range; ``writers.py``).
        batch_tiles: tiles per model call (also the unit of sharding and resuming).
        precision: ``"fp32"`` or ``"bf16"`` (autocast) for the model.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        workers: reading threads.
        chunk_pixels: pixel sequences per Transformer call (None: the model's device-dependent default).
        group_norm: ``"raster"``: GroupNorm statistics estimated once over the raster and shared by
            every tile (seamless, ``groupstats.py``); ``"tile"``: each tile normalised by itself.
        stats_windows: windows of 64² px (spread over the grid) the raster statistics are estimated
            on; a raster smaller than that is used whole (``stats_samples``).
        prepare_only: write the plan and the shared statistics, encode nothing (before shards).
        shard: ``(i, n)``: this process does batches ``i, i+n, …``.
        overwrite: replace an existing output / a stale work directory.
        keep_parts: keep ``OUT.parts/`` after merging.
        progress: show a tqdm bar on stderr.
        model_name: how the output's metadata names the model (e.g. the built-in model's name).
    """

    tile: int | None = None
    overlap: int = 32
    fmt: str | None = None
    dtype: str = "float32"
    batch_tiles: int = 1
    precision: str = "fp32"
    device: str = "auto"
    workers: int = 1
    chunk_pixels: int | None = None
    group_norm: str = "raster"
    stats_windows: int = 16
    prepare_only: bool = False
    shard: tuple[int, int] = (0, 1)
    overwrite: bool = False
    keep_parts: bool = False
    progress: bool = True
    model_name: str = ""

    def validate(self) -> "EncodeOptions":
        from alise.encode.tiling import validate_tiling

        validate_tiling(DEFAULT_TILE if self.tile is None else self.tile, self.overlap)
        if self.fmt is not None and self.fmt not in FORMATS:
            raise AliseError(f"--format {self.fmt}: choose one of {', '.join(FORMATS)}")
        if self.dtype not in DTYPES:
            raise AliseError(f"--dtype {self.dtype}: choose one of {', '.join(DTYPES)}")
        if self.precision not in PRECISIONS:
            raise AliseError(f"--precision {self.precision}: choose one of {', '.join(PRECISIONS)}")
        if self.batch_tiles < 1:
            raise AliseError(f"--batch-tiles {self.batch_tiles}: must be ≥ 1")
        if self.workers < 1:
            raise AliseError(f"--workers {self.workers}: must be ≥ 1 reading thread")
        if self.group_norm not in GROUP_NORM_MODES:
            raise AliseError(f"--group-norm {self.group_norm}: choose one of {', '.join(GROUP_NORM_MODES)}")
        if self.stats_windows < 1:
            raise AliseError(f"--stats-windows {self.stats_windows}: must be ≥ 1 window")
        if self.chunk_pixels is not None and self.chunk_pixels < 1:
            raise AliseError(f"chunk_pixels {self.chunk_pixels}: must be ≥ 1")
        i, n = self.shard
        if n < 1 or not 0 <= i < n:
            raise AliseError(f"--shard {i}/{n}: expected I/N with 0 ≤ I < N (e.g. --shard 0/4)")
        return self


def parse_shard(text: str) -> tuple[int, int]:
    """``"3/8"`` → ``(3, 8)``; raise :class:`AliseError` on anything else."""
    try:
        i, n = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise AliseError(f"--shard {text!r}: expected I/N, e.g. --shard 0/4 (shard 0 of 4)") from None
    if n < 1 or not 0 <= i < n:
        raise AliseError(f"--shard {text}: expected I/N with 0 ≤ I < N (e.g. --shard 0/4)")
    return i, n


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise AliseError("--device cuda: no CUDA device is available; use --device cpu")
    if name not in ("cpu", "cuda"):
        raise AliseError(f"--device {name}: choose cpu, cuda or auto")
    return torch.device(name)


def parts_dir(out: str | Path) -> Path:
    """The work directory of an output: ``emb.tif`` → ``emb.tif.parts``."""
    out = Path(out)
    return out.with_name(f"{out.name}.parts")


def piece_path(parts: Path, t: Tile) -> Path:
    return parts / "tiles" / f"{t.name}.npy"


def model_fingerprint(model) -> str:
    """sha256 of the model's architecture, normalisation and every tensor (weights and buffers)."""
    h = hashlib.sha256(json.dumps({"config": model.config.to_dict(), "norm": model.norm.to_dict()},
                                  sort_keys=True).encode())
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().to("cpu").contiguous().numpy().tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# Plan: what is computed, checked on every (re)start and by the merge.


def output_metadata(model, source, model_name: str = "", fmt: str = "cog") -> dict:
    """What an embedding output says about itself (GeoTIFF tags — as text —, zarr attributes):
    the model (name, weights fingerprint, configuration digest), the alise version, the dates and
    input bands encoded, the input normalisation and the layout of the values (docs/encode.md,
    "Metadata"). ``fmt``: the layout differs (COG bands ``q03_d17``, zarr ``(query, feature, y, x)``)."""
    from alise._version import __version__
    from alise.dates import DATE_ORIGIN
    from alise.model.directory import model_metadata

    n_q, d = model.config.n_q, model.config.d_model
    layout = (f"band q{{query}}_d{{feature}}: {n_q} queries x {d} features, query-major "
              f"(band = query * {d} + feature + 1)" if fmt == "cog" else
              f"embedding (query, feature, y, x): {n_q} queries x {d} features; GDAL bands query-major")
    dates = [d_.isoformat() for d_ in source.dates]
    return {"ALISE_MODEL": model_name or "unnamed model", "ALISE_MODEL_SHA256": model_fingerprint(model),
            "ALISE_CONFIG_SHA256": model_metadata(model)["config_sha256"],
            "ALISE_VERSION": __version__, "ALISE_LAYOUT": layout, "ALISE_N_QUERIES": n_q, "ALISE_N_FEATURES": d,
            "ALISE_DATES": f"{dates[0]}/{dates[-1]} ({len(dates)} dates)", "ALISE_DATE_LIST": dates,
            "start_datetime": f"{dates[0]}T00:00:00Z", "end_datetime": f"{dates[-1]}T23:59:59Z",
            "ALISE_INPUT_BANDS": list(model.norm.bands), "ALISE_NORMALISATION": model.norm.to_dict(),
            "ALISE_DATE_ORIGIN": DATE_ORIGIN.isoformat()}


def make_plan(model, source, opts: EncodeOptions) -> dict:
    g = source.grid
    plan = {
        "format": PLAN_FORMAT, "version": 1,
        "source": str(Path(source.path).resolve()), "dates": [d.isoformat() for d in source.dates],
        "height": g.height, "width": g.width,
        "georef": g.to_georef(),
        "tile": opts.tile, "overlap": opts.overlap, "multiple": model.config.multiple,
        "batch_tiles": opts.batch_tiles, "precision": opts.precision,
        "model": model_fingerprint(model), "n_q": model.config.n_q, "d_model": model.config.d_model,
        "group_norm": ({"mode": opts.group_norm, "stats_windows": opts.stats_windows} if model.config.uses_group_norm
                       else None),
        "output": {"format": opts.fmt, "dtype": opts.dtype},
        "metadata": output_metadata(model, source, opts.model_name, opts.fmt or "cog"),
    }
    return json.loads(json.dumps(plan))  # as it reads back from plan.json (tuples → lists)


def raster_group_stats(model, source, grid: TileGrid, parts: Path, opts: EncodeOptions,
                       device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
    """The shared GroupNorm statistics of this run (``groupstats.py``), or None (tile mode, or no
    GroupNorm). Estimated once and kept in ``OUT.parts/groupnorm.safetensors``: a resumed run and
    every shard started after it exists use the very same numbers."""
    if opts.group_norm != "raster" or not model.config.uses_group_norm:
        return None
    path = parts / STATS_FILE
    if path.is_file():
        return GroupStats.load(path, len(model.unet.group_norms()), len(source.dates)).pairs(device)
    stats = estimate_group_stats(model, source, grid, opts, device)
    if stats is None:
        return None
    stats.save(path)
    return stats.pairs(device)


def estimate_group_stats(model, source, grid: TileGrid, opts: EncodeOptions,
                         device: torch.device) -> GroupStats | None:
    """Estimate the shared GroupNorm statistics of ``source`` on ``grid`` (``groupstats.py``), in
    memory: None in tile mode, for a model without GroupNorm, or for a one-tile grid (its own
    statistics are the raster's). :func:`raster_group_stats` keeps the result in the work
    directory; :mod:`alise.xarray` puts it in its dask graph."""
    if opts.group_norm != "raster" or not model.config.uses_group_norm or len(grid) == 1:
        return None
    layers = model.unet.group_norms()
    picked = stats_samples(grid, opts.stats_windows)

    def samples():
        for t, owned in picked:
            x, _ = read_batch(source, [t], model.norm)
            yield x[0].to(device), owned

    # Every GroupNorm layer is one pass over the samples: keep them in memory when they are small
    # (16 windows of 64² × 100 dates: 260 MB), else read them again for every pass.
    n_bytes = sum(t.height * t.width for t, _ in picked) * len(source.dates) * len(source.bands) * 4
    sample_set = list(samples()) if n_bytes <= STATS_CACHE_BYTES else _Reiterable(samples)

    chunk = model.frames_per_chunk(picked[0][0].height, picked[0][0].width)
    bar = None
    if opts.progress:
        from tqdm import tqdm

        bar = tqdm(total=len(layers) * len(picked), unit="pass", file=sys.stderr, dynamic_ncols=True,
                   desc="GroupNorm statistics (" + ("whole raster" if len(picked) == 1
                                                        else f"{len(picked)} windows") + ")")
    try:
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=opts.precision == "bf16"):
            stats = estimate(model.unet, sample_set, len(picked), chunk_frames=chunk,
                             progress=None if bar is None else bar.update)
    finally:
        if bar is not None:
            bar.close()
    return stats


#: Largest set of statistics samples kept in memory between passes (bytes).
STATS_CACHE_BYTES = 512 << 20


class _Reiterable:
    """An iterable that calls ``make()`` afresh for every pass (tiles are re-read, not kept in memory)."""

    def __init__(self, make):
        self.make = make

    def __iter__(self):
        return iter(self.make())


def _plan_diff(a: dict, b: dict) -> list[str]:
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def ensure_plan(parts: Path, plan: dict, overwrite: bool) -> None:
    """Create ``parts/plan.json`` or check that an existing one describes the same work."""
    path = parts / PLAN_FILE
    if path.is_file():
        old = json.loads(path.read_text())
        diff = _plan_diff(old, plan)
        if not diff:
            return
        if not overwrite:
            raise AliseError(f"{parts} holds an unfinished encoding with different {', '.join(diff)}: rerun with "
                             "the same arguments to resume it, or pass --overwrite to discard it")
        shutil.rmtree(parts)
    with atomic_file(path, "w") as f:  # the plan first: pieces never exist without it
        json.dump(plan, f, indent=1)
    (parts / "tiles").mkdir(parents=True, exist_ok=True)


def read_plan(out: Path) -> dict:
    path = parts_dir(out) / PLAN_FILE
    if not path.is_file():
        raise AliseError(f"no encoding in progress for {out}: {path} not found (run 'alise encode ... --out {out}' first)")
    plan = json.loads(path.read_text())
    if plan.get("format") != PLAN_FORMAT:
        raise AliseError(f"{path}: not an alise encoding plan")
    return plan


def grid_of_plan(plan: dict) -> TileGrid:
    return TileGrid(plan["height"], plan["width"], plan["tile"], plan["overlap"], plan.get("multiple", 8))


def batches(grid: TileGrid, batch_tiles: int) -> list[list[Tile]]:
    tiles = grid.tiles
    return [tiles[i : i + batch_tiles] for i in range(0, len(tiles), batch_tiles)]


# ---------------------------------------------------------------------------------------------
# The three stages.


def read_batch(source, tiles: list[Tile], norm) -> tuple[torch.Tensor, np.ndarray]:
    """Windowed read of every tile: ``x (K, T, C, h, w)`` normalised float32, ``n_clear (K, h, w)`` uint16."""
    xs, counts = [], []
    for t in tiles:
        raw = source.read(window=t.window)
        x = norm.apply(raw.dn, inplace=True)  # (T, C, h_read, w_read) in the read buffer, NaN → 0
        xs.append(extend(x, t.height, t.width))  # beyond the raster edge: reflection, as a whole-raster encode
        n = raw.valid.sum(axis=0, dtype=np.uint16)
        counts.append(np.pad(n, ((0, t.height - n.shape[0]), (0, t.width - n.shape[1]))))
        del raw, x
    # One tile (the default): a view, not a copy of the whole stack.
    return (xs[0][None] if len(xs) == 1 else torch.stack(xs)), np.stack(counts)


def run_model(model, x: torch.Tensor, days: torch.Tensor, device: torch.device, precision: str,
              chunk_pixels: int | None, group_stats=None) -> np.ndarray:
    """Encode a batch of equal tiles: ``x (K, T, C, h, w)`` (h, w multiples of ``model.config.multiple``) → ``(K, Q·D, h, w)`` float32."""
    k, t = x.shape[:2]
    x = x.to(device, non_blocking=True)
    d = days.to(device)[None].expand(k, t)
    valid = torch.ones((k, t), dtype=torch.bool, device=device)
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        kw = {} if group_stats is None else {"group_stats": group_stats}
        y = model.encode(x, d, valid, chunk_pixels=chunk_pixels, **kw)  # (K, Q, D, h, w)
    y = y.float().flatten(1, 2)  # (K, Q·D, h, w)
    return y.cpu().numpy()


@dataclass
class EncodeReport:
    """What a call to :func:`encode` did."""

    tiles_total: int
    tiles_done: int  # by this call
    tiles_skipped: int  # already finished (resume) or other shards'
    merged: bool
    seconds: float
    out: Path
    stats_seconds: float = 0.0  # estimating the shared GroupNorm statistics (included in seconds)
    tile: int = 0  # the tile side used (chosen automatically unless given)


def prepare(model, source, out: Path, opts: EncodeOptions) -> tuple[TileGrid, dict]:
    """Validate everything before any work; returns the grid and the plan."""
    opts.validate()
    grid, opts = tile_grid(model, source, opts)
    check_output(out, opts.overwrite)
    if opts.fmt == "cog":
        check_output(n_clear_path(out), opts.overwrite)
    parts = parts_dir(out)
    check_output(parts / PLAN_FILE, overwrite=True)  # the work directory must be writable too
    return grid, make_plan(model, source, opts)


def tile_grid(model, source, opts: EncodeOptions) -> tuple[TileGrid, EncodeOptions]:
    """The tile grid of ``source`` for ``model`` and ``opts`` (the tile side chosen when
    ``opts.tile`` is None), and ``opts`` with that side; raises :class:`AliseError` when the
    model does not fit the source's bands. No files: also used by :mod:`alise.xarray`."""
    if tuple(model.norm.bands) != tuple(source.bands):
        raise AliseError(f"the model expects bands {list(model.norm.bands)} but {source.path} provides "
                         f"{list(source.bands)}: use a model trained on these bands")
    if model.config.in_channels != len(source.bands):
        raise AliseError(f"the model expects {model.config.in_channels} bands, {source.path} has {len(source.bands)}")
    if opts.tile is None:
        tile = auto_tile(len(source.dates), model.config.d_model, size=(source.grid.height, source.grid.width),
                         overlap=opts.overlap, multiple=model.config.multiple)
        if tile <= 2 * opts.overlap:
            raise AliseError(f"--overlap {opts.overlap}: must be less than half the tile ({tile} px chosen for "
                             f"{len(source.dates)} dates); lower --overlap or give --tile")
        opts = replace(opts, tile=tile)
    return TileGrid(source.grid.height, source.grid.width, opts.tile, opts.overlap, model.config.multiple), opts


@dataclass
class _Run:
    """An encoding opened for work: its plan checked, the inference model and shared statistics ready."""

    out: Path
    opts: EncodeOptions
    grid: TileGrid
    parts: Path
    source: object
    model: object
    device: torch.device
    group_stats: list | None
    stats_seconds: float


def _open_run(model, source, out: Path, opts: EncodeOptions) -> _Run:
    opts = replace(opts, fmt=format_of(out, opts.fmt))
    grid, plan = prepare(model, source, out, opts)
    source.offsets()  # survey units (e.g. 0–1 reflectance is an error) before anything is written
    parts = parts_dir(out)
    ensure_plan(parts, plan, opts.overwrite)
    device = resolve_device(opts.device)
    model = inference_copy(model, device)  # docs/performance.md
    t_stats = time.perf_counter()
    group_stats = raster_group_stats(model, source, grid, parts, opts, device)
    return _Run(out, opts, grid, parts, source, model, device, group_stats, time.perf_counter() - t_stats)


def encode(model, source, out: str | Path, opts: EncodeOptions = EncodeOptions(),
           on_tile: Callable[[Tile], None] | None = None) -> EncodeReport:
    """Encode ``source`` (a :class:`alise.data.SITSSource`) with ``model`` into ``out``.

    Args:
        model: an :class:`alise.model.ALISE` (any module with its ``encode``, ``norm`` and ``config``).
        source: the series; every date of it is used (filter with ``open_source(start=, end=)``).
        out: output path (a ``.tif`` for COG, a directory for zarr).
        opts: see :class:`EncodeOptions`.
        on_tile: called in the main thread after each tile's piece is safely on disk.

    Returns:
        An :class:`EncodeReport`. With ``shard n > 1`` the output is not merged (see :func:`merge`).
    """
    t0 = time.perf_counter()
    out = Path(out)
    run = _open_run(model, source, out, opts)
    grid = run.grid
    if run.opts.prepare_only:
        return EncodeReport(len(grid), 0, len(grid), False, time.perf_counter() - t0, out, run.stats_seconds, grid.tile)
    refuse_region_run(out)
    i, n = run.opts.shard
    done = _encode_batches(run, batches(grid, run.opts.batch_tiles)[i::n], on_tile)
    merged = False
    if n == 1:
        merge(out, overwrite=run.opts.overwrite, keep_parts=run.opts.keep_parts, progress=run.opts.progress)
        merged = True
    return EncodeReport(len(grid), done, len(grid) - done, merged, time.perf_counter() - t0, out, run.stats_seconds,
                        grid.tile)


def encode_units(model, source, out: str | Path, opts: EncodeOptions, units: list[int]) -> int:
    """Encode the work units (batches of ``batch_tiles`` tiles, :func:`batches`) numbered ``units``
    of an encoding whose plan exists, skipping those whose pieces are all on disk; no merge. What a
    task of ``--dask`` runs (:mod:`alise.encode.distributed`). Returns the tiles encoded."""
    run = _open_run(model, source, Path(out), opts)
    groups = batches(run.grid, run.opts.batch_tiles)
    return _encode_batches(run, [groups[k] for k in units])


def _encode_batches(run: _Run, mine: list[list[Tile]], on_tile: Callable[[Tile], None] | None = None) -> int:
    """The read → model → write pipeline over the batches ``mine`` whose pieces are not all on
    disk yet; returns the tiles encoded."""
    opts, parts, source, model = run.opts, run.parts, run.source, run.model
    todo = [b for b in mine if not all(piece_path(parts, t).is_file() for t in b)]
    n_todo = sum(len(b) for b in todo)
    days = torch.as_tensor(np.asarray(source.days, dtype=np.float32))
    bar = None
    if opts.progress and n_todo:
        from tqdm import tqdm

        bar = tqdm(total=n_todo, unit="tile", file=sys.stderr, desc=f"encode {run.out.name}", dynamic_ncols=True)
    done = 0
    with ThreadPoolExecutor(opts.workers, thread_name_prefix="alise-read") as readers, \
            ThreadPoolExecutor(1, thread_name_prefix="alise-write") as writer:
        reads: deque[tuple[list[Tile], Future]] = deque()
        writes: deque[tuple[list[Tile], Future]] = deque()
        pending = iter(todo)

        def refill():  # at most `workers` batches being read while the model runs on another
            while len(reads) < opts.workers:
                b = next(pending, None)
                if b is None:
                    return
                reads.append((b, readers.submit(read_batch, source, b, model.norm)))

        def finish_write():
            b, fut = writes.popleft()
            fut.result()
            nonlocal done
            for t in b:
                done += 1
                if bar is not None:
                    bar.update(1)
                if on_tile is not None:
                    on_tile(t)

        try:
            refill()
            while reads:
                b, fut = reads.popleft()
                x, counts = fut.result()
                refill()
                y = run_model(model, x, days, run.device, opts.precision, opts.chunk_pixels, run.group_stats)
                del x  # the input stack is not needed while the piece is written
                writes.append((b, writer.submit(_write_batch, parts, b, y, counts)))
                while len(writes) > 1:  # at most one piece waiting for the disk
                    finish_write()
            while writes:
                finish_write()
        finally:
            for _, f in reads:
                f.cancel()
            if bar is not None:
                bar.close()
    return done


def _write_batch(parts: Path, tiles: list[Tile], y: np.ndarray, counts: np.ndarray) -> None:
    for k, t in enumerate(tiles):
        write_piece(piece_path(parts, t), y[k], counts[k])


def output_args(plan: dict) -> dict:
    """The keyword arguments of :func:`alise.encode.writers.write_output` that the plan fixes."""
    return dict(fmt=plan["output"]["format"], dtype=plan["output"]["dtype"],
                bands=band_names(plan["n_q"], plan["d_model"]), n_q=plan["n_q"], metadata=plan.get("metadata"),
                raster=RasterGrid.from_georef(plan["georef"], plan["height"], plan["width"]))


def refuse_region_run(out: Path) -> None:
    """A ``--dask`` run keeps finished output regions in ``OUT.parts/regions/`` and deletes the
    pieces they no longer need: only ``--dask`` can resume it."""
    regions = parts_dir(out) / REGIONS_DIR
    if regions.is_dir():
        raise AliseError(f"{parts_dir(out)} holds an unfinished 'alise encode --dask' run (finished regions in "
                         f"{regions}): rerun it with --dask to resume, or delete {parts_dir(out)}")


def merge(out: str | Path, overwrite: bool = False, keep_parts: bool = False, progress: bool = True) -> Path:
    """Blend every piece in ``OUT.parts/`` into ``out`` (after all shards finished)."""
    out = Path(out)
    plan = read_plan(out)
    refuse_region_run(out)
    grid = grid_of_plan(plan)
    parts = parts_dir(out)
    missing = [t for t in grid.tiles if not piece_path(parts, t).is_file()]
    if missing:
        groups = batches(grid, plan["batch_tiles"])
        first = next(k for k, b in enumerate(groups) if any(t in missing for t in b))
        raise AliseError(f"{len(missing)} of {len(grid)} tiles of {out} are not encoded yet (first: tile "
                         f"{missing[0].name}, work unit {first} of {len(groups)}, done by shard I/N with I = "
                         f"{first} mod N): wait for every shard to finish, or rerun the shard that stopped")
    args = output_args(plan)
    check_output(out, overwrite)
    if args["fmt"] == "cog":
        check_output(n_clear_path(out), overwrite)
    with pixel_bar(grid, f"merge {out.name}", progress) as bar:
        assemble(grid, lambda t: piece_path(parts, t), out, fmt=args["fmt"], dtype=args["dtype"],
                 raster=args["raster"], bands=args["bands"], n_q=args["n_q"], overwrite=overwrite,
                 progress=bar, metadata=args["metadata"])
    if not keep_parts:
        shutil.rmtree(parts, ignore_errors=True)
    return out


@contextlib.contextmanager
def pixel_bar(grid: TileGrid, desc: str, progress: bool = True):
    """A tqdm bar over the raster's pixels on stderr; yields its ``update`` (None without ``progress``)."""
    if not progress:
        yield None
        return
    from tqdm import tqdm

    bar = tqdm(total=grid.height * grid.width, unit="px", unit_scale=True, file=sys.stderr, desc=desc,
               dynamic_ncols=True)
    try:
        yield bar.update
    finally:
        bar.close()
