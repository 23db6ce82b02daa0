"""Time and peak memory of ``alise preview`` on growing embedding rasters → JSON on stdout.

For each area (``--sizes``, px) an int8 zarr embedding of the built-in model's layout (10 queries ×
32 features) is written block by block: smooth random fields (a few parcels' worth of structure
per block plus noise), never held whole, with ``n_clear = 0`` in one corner block. Then
``alise preview`` runs on it in a subprocess (so that its peak RSS is that run's alone) twice: to a
PNG (decimated to ``--max-size``) and to a full-resolution RGB GeoTIFF. Each run reports its
seconds, its peak RSS (``ru_maxrss``) and the painted pixels per second.

What to look for: the peak RSS stays flat as the area grows (one 256² block of 320 features is
84 MB), and the GeoTIFF's time grows with the area.

Usage: ``python benchmarks/preview.py [--sizes 512,1024,2048] [--max-size 2048]``
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

N_Q, N_D = 10, 32


def write_embedding(path: Path, size: int) -> None:
    """An int8 zarr embedding ``(N_Q, N_D, size, size)`` of smooth random fields, block by block."""
    import numpy as np
    from rasterio.transform import from_origin
    from rasterio.crs import CRS

    from alise.data.source import RasterGrid
    from alise.encode.writers import Quantisation, band_names, blocks, create_zarr, zarr_writer

    grid = RasterGrid(CRS.from_epsg(32631), from_origin(500000.0, 5650000.0, 10.0, 10.0), size, size)
    nb = N_Q * N_D
    quant = Quantisation.from_range(np.full(nb, -3.0), np.full(nb, 3.0))
    create_zarr(path, grid, band_names(N_Q, N_D), "int8", {"ALISE_N_QUERIES": N_Q, "ALISE_N_FEATURES": N_D},
                n_q=N_Q, quant=quant)
    write = zarr_writer(path)
    rng = np.random.default_rng(0)
    for r, c, h, w in blocks(size, size):
        coarse = rng.normal(size=(nb, 8, 8)).astype(np.float32)  # 32-px "parcels"
        emb = np.kron(coarse, np.ones((1, 32, 32), np.float32))[:, :h, :w] + 0.3 * rng.normal(size=(nb, h, w))
        n_clear = np.full((h, w), 0 if (r, c) == (0, 0) else 20, np.uint16)
        if (r, c) == (0, 0):
            emb[:] = np.nan
        write((r, c, h, w), emb.astype(np.float32), n_clear)


def child(emb: str, out: str, max_size: int) -> None:
    """Runs in a subprocess: one ``alise preview``, its figures as JSON."""
    from alise.cli import main

    t0 = time.perf_counter()
    code = main(["preview", emb, "--out", out, "--max-size", str(max_size), "--no-progress"])
    seconds = time.perf_counter() - t0
    print(json.dumps({"rc": code, "seconds": round(seconds, 2),
                      "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="512,1024,2048")
    p.add_argument("--max-size", type=int, default=2048)
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(*args.child, args.max_size)
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in map(int, args.sizes.split(",")):
            emb = Path(tmp) / f"emb{size}.zarr"
            t0 = time.perf_counter()
            write_embedding(emb, size)
            row = {"size": size, "bands": N_Q * N_D, "write_input_s": round(time.perf_counter() - t0, 1)}
            for kind in ("png", "tif"):
                out = Path(tmp) / f"preview{size}.{kind}"
                res = subprocess.run([sys.executable, __file__, "--child", str(emb), str(out),
                                      "--max-size", str(args.max_size)], capture_output=True, text=True, check=True)
                fig = json.loads(res.stdout.strip().splitlines()[-1])
                painted = size * size if kind == "tif" else min(size, args.max_size) ** 2
                fig["painted_px_per_s"] = round(painted / fig["seconds"])
                row[kind] = fig
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    print(json.dumps({"benchmark": "preview", "max_size": args.max_size, "runs": rows}, indent=2))


if __name__ == "__main__":
    main()
