"""`alise encode --dask local:2` killed half-way and rerun: what the rerun redoes, disk use, identity → JSON.

Writes a synthetic ``S × S × T`` site (random DN), encodes it once in one process (reference),
then with ``--dask local:2``, which writes the output region by region (the 256 × 256 px zarr
chunks): SIGKILL (client and workers) once half of the regions are finished, rerun the same
command, and compare with the reference. Reported: the regions and pieces on disk at the kill, the
most pieces ever on disk during the first run (pieces no unfinished region needs are deleted), what
the rerun encoded and wrote, and whether the output is identical to the one-process run.

    python benchmarks/dask_resume.py [--size 512] [--dates 60] [--tile 128] [--format zarr|cog]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from encode import write_synthetic_site  # benchmarks/encode.py (the script folder is on sys.path)


def read_output(path: Path) -> list[np.ndarray]:
    if path.suffix == ".zarr":
        import xarray as xr

        with xr.open_zarr(path, mask_and_scale=False) as ds:
            return [ds[v].values for v in sorted(ds.variables)]
    import rasterio

    with rasterio.open(path) as f:
        return [f.read()]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--dates", type=int, default=60)
    p.add_argument("--tile", type=int, default=128)
    p.add_argument("--format", choices=("zarr", "cog"), default="zarr")
    a = p.parse_args()

    from alise.encode.distributed import marker_path
    from alise.encode.distributed import regions as region_windows
    from alise.encode.runner import piece_path, read_plan
    from alise.encode.tiling import TileGrid
    from alise.encode.writers import blocks

    suffix = ".zarr" if a.format == "zarr" else ".tif"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        site = write_synthetic_site(tmp / "site", a.size, a.dates)
        base = [sys.executable, "-m", "alise.cli", "encode", str(site), "--tile", str(a.tile), "--overlap", "32",
                "--no-progress"]
        t = time.perf_counter()
        subprocess.run([*base, "--out", str(tmp / f"ref{suffix}")], check=True, capture_output=True)
        one = time.perf_counter() - t
        grid = TileGrid(a.size, a.size, a.tile, 32)
        n_regions = len(list(blocks(a.size, a.size)))
        out = tmp / f"out{suffix}"
        cmd = [*base, "--out", str(out), "--dask", "local:2"]
        parts = tmp / f"out{suffix}.parts"
        pieces = lambda: len(list((parts / "tiles").glob("*.npy")))  # noqa: E731
        regions = lambda: len(list((parts / "regions").glob("*.json")))  # noqa: E731
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        most = 0
        while proc.poll() is None:
            most = max(most, pieces())
            if regions() >= n_regions // 2:
                os.killpg(proc.pid, signal.SIGKILL)  # the client and its worker processes
                break
            time.sleep(0.2)
        proc.wait()
        first = time.perf_counter() - t
        killed_regions, killed_pieces = regions(), pieces()
        plan = read_plan(out)
        unfinished = [w for w in region_windows(plan) if not marker_path(parts, w).is_file()]
        lacking = {t.index for w in unfinished for t in grid.tiles_in(*w) if not piece_path(parts, t).is_file()}
        t = time.perf_counter()
        r = subprocess.run(cmd, check=True, capture_output=True, text=True)
        rerun = time.perf_counter() - t
        m = re.search(r"\((\d+) tiles, (\d+) encoded now; (\d+) of (\d+) regions written now", r.stderr)
        same = all(np.array_equal(x, y, equal_nan=True)
                   for x, y in zip(read_output(tmp / f"ref{suffix}"), read_output(out), strict=True))
    print(json.dumps({"benchmark": "dask_resume", "format": a.format, "size": a.size, "dates": a.dates,
                      "tile": a.tile, "tiles": len(grid), "regions": n_regions, "one_process_s": round(one, 1),
                      "killed_after_s": round(first, 1), "killed_with_regions": killed_regions,
                      "killed_with_pieces": killed_pieces, "most_pieces_on_disk_first_run": most,
                      "tiles_the_unfinished_regions_lacked": len(lacking),
                      "rerun_encoded_tiles": int(m.group(2)) if m else None,
                      "rerun_written_regions": int(m.group(3)) if m else None, "rerun_s": round(rerun, 1),
                      "identical_to_one_process": same}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
