"""Peak memory of the lazy ``alise.xarray.encode`` on growing synthetic dask cubes → JSON on stdout.

For each area (``--sizes``, px) a subprocess (so that its peak RSS is that run's alone) builds a
dask-backed ``(time, band, y, x)`` cube of uniform random L2A digital numbers (300–4000, as
``benchmarks/encode.py``; generated chunk by chunk, never held whole), ``--dates`` dates 5 days
apart in 2018, chunks ``(T, 10, 256, 256)``; it calls ``alise.xarray.encode(cube)`` (built-in
model, default tile and overlap, GroupNorm statistics estimated at that call) and streams the lazy
result to a zarr store with ``DataArray.to_zarr`` on dask's default threaded scheduler. It reports
the seconds of building the graph and of computing it, the tiles and chunks, and the peak RSS
(``ru_maxrss``) after building the graph and at the end.

What to look for: the peak RSS stays flat as the area grows (the output alone is 1.3 GB at
1024²): it is bounded by the tile in flight and by ``waiting_memory`` (the RAM given to tile
parts that wait for their neighbours; beyond it they wait on disk: ``waited_on_disk_gib``), not
by the raster.

Usage: ``python benchmarks/xarray_memory.py [--sizes 256,512,1024] [--dates 30] [--threads N]
[--waiting-memory 512MiB]`` (``--threads``: dask threads, default dask's own — the number of cores).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def synthetic_cube(size: int, n_dates: int):
    """Lazy ``(time, band, y, x)`` uint16 DN cube on a UTM grid (random, 300–4000)."""
    import dask.array as da
    import numpy as np
    import pandas as pd
    import rioxarray  # noqa: F401
    import xarray as xr

    from alise.normalise import S2_BANDS

    dn = da.random.default_rng(0).integers(300, 4000, (n_dates, len(S2_BANDS), size, size), dtype=np.uint16,
                                           chunks=(n_dates, len(S2_BANDS), 256, 256))
    coords = {"time": pd.date_range("2018-01-03", periods=n_dates, freq="5D"), "band": list(S2_BANDS),
              "y": 5650000.0 - 10.0 * (np.arange(size) + 0.5), "x": 500000.0 + 10.0 * (np.arange(size) + 0.5)}
    cube = xr.DataArray(dn, dims=("time", "band", "y", "x"), coords=coords, name="synthetic")
    return cube.rio.write_crs("EPSG:32631")


def child(size: int, n_dates: int, out: str, threads: int | None, waiting: str) -> None:
    """Runs in a subprocess: encode lazily, stream to ``out``, print the figures as JSON."""
    import dask

    import alise.xarray

    def rss_gib() -> float:
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)

    cube = synthetic_cube(size, n_dates)
    t0 = time.perf_counter()
    emb = alise.xarray.encode(cube, waiting_memory=waiting)
    t_build = time.perf_counter() - t0
    rss_built = rss_gib()
    tiles = sum(k[0].startswith("alise-tile") if isinstance(k, tuple) else str(k).startswith("alise-tile")
                for k in emb.data.__dask_graph__())
    store = next(v.value for k, v in emb.data.__dask_graph__().items() if str(k).startswith("alise-waiting"))
    t0 = time.perf_counter()
    with dask.config.set(**({"num_workers": threads} if threads else {})):
        emb.to_zarr(out, mode="w")
    t_compute = time.perf_counter() - t0
    print(json.dumps({"graph_seconds": round(t_build, 1), "compute_seconds": round(t_compute, 1),
                      "tiles": tiles, "chunks": emb.data.npartitions,
                      "output_gib": round(emb.nbytes / 2**30, 3),
                      "waited_on_disk_gib": round(store.spilled / 2**30, 3),
                      "peak_rss_gib_after_graph": rss_built, "peak_rss_gib": rss_gib()}))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="256,512,1024", help="square areas in px, comma-separated")
    p.add_argument("--dates", type=int, default=30)
    p.add_argument("--threads", type=int, default=None, help="dask threads (default: dask's)")
    p.add_argument("--waiting-memory", default=None,
                   help="encode(..., waiting_memory=): RAM for the tile parts that wait (default: alise's)")
    p.add_argument("--child", nargs=2, metavar=("SIZE", "OUT"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        from alise.xarray import WAITING_MEMORY

        child(int(a.child[0]), a.dates, a.child[1], a.threads, a.waiting_memory or WAITING_MEMORY)
        return 0
    import os

    import torch

    from alise.xarray import WAITING_MEMORY

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in a.sizes.split(",")):
            cmd = [sys.executable, __file__, "--child", str(size), str(Path(tmp) / f"emb{size}.zarr"),
                   "--dates", str(a.dates)] + (["--threads", str(a.threads)] if a.threads else []) \
                + (["--waiting-memory", a.waiting_memory] if a.waiting_memory else [])
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode:
                sys.stderr.write(res.stderr)
                return res.returncode
            row = {"H": size, "W": size, "T": a.dates, **json.loads(res.stdout.strip().splitlines()[-1])}
            row["pixel_dates_per_s"] = round(size * size * a.dates / row["compute_seconds"])
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    print(json.dumps({"benchmark": "xarray_memory", "model": "built-in", "scheduler": "dask threads",
                      "dask_threads": a.threads or os.cpu_count(), "torch_threads": torch.get_num_threads(),
                      "waiting_memory": a.waiting_memory or WAITING_MEMORY,
                      "runs": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
