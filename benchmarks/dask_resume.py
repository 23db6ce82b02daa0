"""`alise encode --dask local:2` killed half-way and rerun: what the rerun encodes, and identity → JSON.

Writes a synthetic ``S × S × T`` site (random DN), encodes it once in one process (reference),
then with ``--dask local:2``: SIGKILL once half of the tiles' pieces exist, rerun the same
command, and compare with the reference.

    python benchmarks/dask_resume.py [--size 512] [--dates 60] [--tile 128]
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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--dates", type=int, default=60)
    p.add_argument("--tile", type=int, default=128)
    a = p.parse_args()
    import rasterio

    from alise.encode.tiling import TileGrid

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        site = write_synthetic_site(tmp / "site", a.size, a.dates)
        base = [sys.executable, "-m", "alise.cli", "encode", str(site), "--tile", str(a.tile), "--overlap", "32",
                "--no-progress"]
        t = time.perf_counter()
        subprocess.run([*base, "--out", str(tmp / "ref.tif")], check=True, capture_output=True)
        one = time.perf_counter() - t
        n = len(TileGrid(a.size, a.size, a.tile, 32).tiles)
        cmd = [*base, "--out", str(tmp / "out.tif"), "--dask", "local:2"]
        tiles = tmp / "out.tif.parts" / "tiles"
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        while proc.poll() is None:
            if tiles.is_dir() and len(list(tiles.glob("*.npy"))) >= n // 2:
                os.killpg(proc.pid, signal.SIGKILL)  # the client and its worker processes
                break
            time.sleep(0.2)
        proc.wait()
        before = len(list(tiles.glob("*.npy")))
        t = time.perf_counter()
        r = subprocess.run(cmd, check=True, capture_output=True, text=True)
        rerun = time.perf_counter() - t
        m = re.search(r"\((\d+) tiles, (\d+) encoded now", r.stderr)
        with rasterio.open(tmp / "ref.tif") as f1, rasterio.open(tmp / "out.tif") as f2:
            same = bool(np.array_equal(f1.read(), f2.read(), equal_nan=True))
    print(json.dumps({"benchmark": "dask_resume", "size": a.size, "dates": a.dates, "tile": a.tile, "tiles": n,
                      "one_process_s": round(one, 1), "killed_with_pieces": before,
                      "rerun_encoded_tiles": int(m.group(2)) if m else None, "rerun_s": round(rerun, 1),
                      "identical_to_one_process": same}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
