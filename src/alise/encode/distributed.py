"""``alise encode --dask local:N | ADDRESS``: one raster encoded on a Dask cluster, its output
written region by region as the work finishes.

The same pieces as ``--shard I/N`` (:mod:`alise.encode.runner`), driven by a
``dask.distributed`` client, with the output written as it goes instead of in a final merge:

1. this process writes the plan and the raster-wide GroupNorm statistics (``--prepare``) and
   creates the zarr store ``OUT.parts/store.zarr`` up front (:func:`alise.encode.writers.create_zarr`:
   the layout, coordinates and metadata of the final output, no values yet);
2. the raster is split into **regions**: the ``BLOCK × BLOCK`` px windows of the store's chunks
   (:func:`alise.encode.writers.blocks`, the windows the one-process merge blends). The task
   graph has one task per work unit (a batch of ``batch_tiles`` tiles, as in a one-process run)
   that a region still needs and that is not on disk, and one task per unfinished region that
   depends on the units of its tiles — so a tile shared by two regions is encoded once, and a
   region is written as soon as its tiles are done. A unit task writes its pieces
   (``OUT.parts/tiles/``, atomic, the resume unit of tiles); a region task blends the pieces
   covering it with :func:`~alise.encode.writers.blend_window` (the same sums in the same order
   as the merge: bit-identical), writes the region into the store (disjoint chunk-aligned writes,
   safe from several processes) and then its marker ``OUT.parts/regions/<region>.json``;
3. when a region is finished, this process deletes the pieces that no unfinished region needs, so
   the pieces on disk stay those around the regions in progress (``--keep-parts`` keeps them);
4. at the end: a float32/float16 zarr output *is* the store, moved to ``OUT`` in one rename. A COG
   or an int8 zarr store cannot be written before every region is known (COG overviews; int8
   needs each band's global range), so the store then holds float32 regions and a final pass
   writes ``OUT`` from it with the one-process writers (:func:`~alise.encode.writers.write_output`);
   int8 uses the bands' ranges over all pieces, which each region task records in its marker
   from the pieces it read — the very range the one-process merge computes.

A rerun after a kill (client or workers) reads the markers: finished regions are skipped, only the
missing tiles of the others are encoded. The output is bit-identical to a one-process run.

``local:N`` starts a ``LocalCluster`` of N worker processes (one thread each; torch uses
``threads`` threads per worker); any other value is the address of a running scheduler (e.g.
from dask-jobqueue on SLURM or dask-kubernetes). Workers and this process share ``OUT.parts/`` (a
shared file system). GPU workers: start them with ``--resources GPU=1`` and pass
``resources={"GPU": 1}`` (the unit tasks ask for it; region tasks only need a CPU).
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

from alise.errors import AliseError

#: Where the store is built under ``OUT.parts/``.
STORE = "store.zarr"


def parse_dask(text: str) -> tuple[str, int | str]:
    """``"local:4"`` → ``("local", 4)``; ``"tcp://host:8786"`` → ``("address", "tcp://host:8786")``."""
    t = str(text).strip()
    if t.startswith("local:"):
        n = t.removeprefix("local:")
        if not n.isdigit() or int(n) < 1:
            raise AliseError(f"--dask {text}: expected local:N with N ≥ 1 worker processes, or a scheduler address")
        return "local", int(n)
    if not t:
        raise AliseError("--dask: give local:N or a scheduler address such as tcp://host:8786")
    return "address", t


def regions(plan: dict) -> list[tuple[int, int, int, int]]:
    """The output regions ``(row_off, col_off, h, w)`` of a plan, row-major: the store's chunks."""
    from alise.encode.writers import blocks

    return list(blocks(plan["height"], plan["width"]))


def marker_path(parts: Path, region: tuple[int, int, int, int]) -> Path:
    from alise.encode.runner import REGIONS_DIR

    return parts / REGIONS_DIR / f"y{region[0]:06d}_x{region[1]:06d}.json"


def direct(plan: dict) -> bool:
    """Whether regions go straight into the output (a float zarr store) rather than a float32 store."""
    return plan["output"]["format"] == "zarr" and plan["output"]["dtype"] != "int8"


def ensure_store(out: Path, plan: dict) -> Path:
    """``OUT.parts/store.zarr``, created (atomically) if it does not exist yet."""
    from alise.encode.runner import output_args, parts_dir
    from alise.encode.writers import create_zarr
    from alise.outputs import atomic_dir

    store = parts_dir(out) / STORE
    if not store.is_dir():
        args = output_args(plan)
        if not direct(plan):
            args["dtype"] = "float32"  # the final pass quantises or writes the COG
        with atomic_dir(store) as tmp:
            create_zarr(tmp, args["raster"], args["bands"], args["dtype"],
                        args["metadata"], args["n_q"])
    return store


def _encode_units(model, source, out: str, opts, units: list[int], threads: int) -> int:
    """A unit task, on a worker: encode these work units (finished tiles are skipped)."""
    import torch

    from alise.encode.runner import encode_units

    torch.set_num_threads(threads)
    return encode_units(model, source, out, opts, units)


def write_region(out: str | Path, region: tuple[int, int, int, int], *units_done) -> tuple[int, int, int, int]:
    """A region task, on a worker: blend the pieces covering ``region`` into the store, then write
    its marker (with the bands' value ranges over those pieces for an int8 output). ``units_done``:
    the results of the unit tasks it waits for (unused)."""
    from alise.encode.runner import grid_of_plan, parts_dir, piece_path, read_plan
    from alise.encode.writers import blend_window, read_piece, tile_ranges, zarr_writer
    from alise.outputs import atomic_file

    out = Path(out)
    plan = read_plan(out)
    grid, parts = grid_of_plan(plan), parts_dir(out)
    n_bands = plan["n_q"] * plan["d_model"]
    tiles = grid.tiles_in(*region)
    maps = {t.index: read_piece(piece_path(parts, t)) for t in tiles}
    emb, n_clear = blend_window(grid, lambda t: maps[t.index], region, n_bands)
    zarr_writer(parts / STORE)(region, emb, n_clear)
    marker = {"region": list(region), "tiles": [t.name for t in tiles]}
    if plan["output"]["dtype"] == "int8":
        lo, hi = tile_ranges(tiles, lambda t: maps[t.index], n_bands)
        marker.update(lo=lo.tolist(), hi=hi.tolist())  # ±Infinity for a band without a clear pixel
    path = marker_path(parts, region)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, "w") as f:
        json.dump(marker, f)
    return region


def prune(parts: Path, grid, unfinished: list[tuple[int, int, int, int]], tiles) -> int:
    """Delete the pieces of ``tiles`` that no ``unfinished`` region covers; returns how many."""
    from alise.encode.runner import piece_path

    needed = {t.index for r in unfinished for t in grid.tiles_in(*r)}
    gone = 0
    for t in tiles:
        p = piece_path(parts, t)
        if t.index not in needed and p.is_file():
            p.unlink(missing_ok=True)
            gone += 1
    return gone


def finish(out: Path, plan: dict, overwrite: bool, keep_parts: bool, progress: bool) -> None:
    """Every region is in the store: make it the output (see the module docstring, 4.)."""
    import numpy as np

    from alise.encode.runner import grid_of_plan, output_args, parts_dir, pixel_bar
    from alise.encode.writers import Quantisation, finite_ranges, write_output, zarr_windows
    from alise.outputs import atomic_dir

    parts = parts_dir(out)
    store = parts / STORE
    if direct(plan):
        with atomic_dir(out, overwrite=overwrite) as tmp:
            store.replace(tmp)  # a directory renamed onto the new empty one
    else:
        args = output_args(plan)
        quant = None
        if args["dtype"] == "int8":
            marks = [json.loads(marker_path(parts, r).read_text()) for r in regions(plan)]
            lo = np.min([m["lo"] for m in marks], axis=0)
            hi = np.max([m["hi"] for m in marks], axis=0)
            quant = Quantisation.from_range(*finite_ranges(lo, hi))
        with pixel_bar(grid_of_plan(plan), f"write {out.name}", progress) as bar:
            write_output(out, zarr_windows(store), quant=quant, overwrite=overwrite, progress=bar, **args)
    if not keep_parts:
        shutil.rmtree(parts, ignore_errors=True)


def encode_on_dask(model, source, out: str | Path, opts, target: str, *, threads: int = 1, resources=None,
                   client=None) -> dict:
    """Encode ``source`` into ``out`` on a Dask cluster (module docstring); ``client``: an existing
    ``distributed.Client`` (then ``target`` is not used).

    Returns ``{"out", "tiles_total", "tiles_done" (encoded by this run), "regions_total",
    "regions_done" (written by this run), "workers"}``."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise AliseError("--dask needs dask.distributed: pip install 'dask[distributed]'") from None
    from alise.encode.runner import batches, encode, grid_of_plan, parts_dir, piece_path, read_plan

    out = Path(out)
    own = client is None
    cluster = None
    if own:
        kind, value = parse_dask(target)
        if kind == "local":
            cluster = LocalCluster(n_workers=value, threads_per_worker=1, processes=True, dashboard_address=None)
            client = Client(cluster)
        else:
            try:
                client = Client(value, timeout=30)
            except OSError as e:
                raise AliseError(f"--dask {value}: cannot reach the scheduler ({e})") from None
    unit_futures: dict[int, object] = {}
    region_futures: list = []
    shared: list = []
    try:
        prep = encode(model, source, out, replace(opts, prepare_only=True, shard=(0, 1)))  # plan + statistics
        plan = read_plan(out)
        grid, parts = grid_of_plan(plan), parts_dir(out)
        ensure_store(out, plan)
        every = regions(plan)
        todo = [r for r in every if not marker_path(parts, r).is_file()]
        if not opts.keep_parts:
            prune(parts, grid, todo, grid.tiles)  # a run stopped between a region's marker and its pruning
        units = batches(grid, plan["batch_tiles"])
        unit_of = {t.index: k for k, b in enumerate(units) for t in b}
        n_workers = max(1, len(client.scheduler_info()["workers"]))
        # Once per worker; fresh keys (hash=False): a previous run on this client may still be releasing its own.
        shared = client.scatter([model, source], broadcast=True, hash=False)
        shared_model, shared_source = shared
        unit_opts = replace(opts, shard=(0, 1), progress=False)
        for i, r in enumerate(todo):  # row-major, region i and its new units at priority −i: regions finish in turn
            deps = []
            for k in sorted({unit_of[t.index] for t in grid.tiles_in(*r)}):
                if k not in unit_futures and not all(piece_path(parts, t).is_file() for t in units[k]):
                    unit_futures[k] = client.submit(_encode_units, shared_model, shared_source, str(out), unit_opts,
                                                    [k], threads, pure=False, resources=resources, priority=-i)
                if k in unit_futures:
                    deps.append(unit_futures[k])
            region_futures.append(client.submit(write_region, str(out), r, *deps, pure=False, priority=-i))
        bar = None
        if opts.progress and todo:
            from tqdm import tqdm

            bar = tqdm(total=len(todo), unit="region", file=sys.stderr, dynamic_ncols=True,
                       desc=f"encode {out.name} on {n_workers} worker(s)")
        unfinished = list(todo)
        for f in as_completed(region_futures):
            r = tuple(f.result())
            unfinished.remove(r)
            if not opts.keep_parts:
                prune(parts, grid, unfinished, grid.tiles_in(*r))
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        done = sum(client.gather(list(unit_futures.values())))
        finish(out, plan, opts.overwrite, opts.keep_parts, opts.progress)
        return {"out": out, "tiles_total": prep.tiles_total, "tiles_done": done, "regions_total": len(every),
                "regions_done": len(todo), "workers": n_workers}
    finally:
        if shared:  # on an error nothing stays queued; either way the workers drop the model
            client.cancel([*unit_futures.values(), *region_futures, *shared])
        if own:
            client.close()
            if cluster is not None:
                cluster.close()
