"""`alise reconstruct` and `alise change` on a whole raster: wall time, peak RSS, resume → JSON.

Writes a synthetic ``S × S × T`` site (random digital numbers, every pixel clear; 12-day revisit
so that the series spans two years), then runs with the built-in model, each in its own
process (peak RSS = that command's ``ru_maxrss``):

* ``reconstruct SITE --dates D1,D2`` uninterrupted;
* the same command SIGKILLed once half of its encoding tiles exist, then rerun: the seconds of
  the rerun, and whether its images are identical to the uninterrupted run's;
* ``change SITE --years Y1,Y2`` (each year's dates encoded, Eq. 12 distance).

    python benchmarks/raster_heads.py [--size 1024] [--dates 60]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from encode import write_synthetic_site  # benchmarks/encode.py (the script folder is on sys.path)

CHILD = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]).returncode; "
         "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r)")


def timed(cmd: list[str]) -> dict:
    """Run ``alise ...`` in a child; seconds and peak RSS (GiB)."""
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, sys.executable, "-m", "alise.cli", *cmd, "--no-progress"],
                         capture_output=True, text=True)
    rss, rc = out.stdout.split()[-2:]
    if int(rc):
        raise SystemExit(f"alise {cmd[0]} failed: {out.stderr[-2000:]}")
    return {"seconds": round(time.perf_counter() - t, 1), "peak_rss_gib": round(int(rss) / 2**20, 2)}


def killed_half_way(cmd: list[str], tiles: Path, n_tiles: int) -> bool:
    proc = subprocess.Popen([sys.executable, "-m", "alise.cli", *cmd, "--no-progress"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    while proc.poll() is None:
        if tiles.is_dir() and len(list(tiles.glob("*.npy"))) >= n_tiles // 2:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.2)
    proc.wait()
    return proc.returncode == -signal.SIGKILL


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--dates", type=int, default=60)
    a = p.parse_args()
    import rasterio

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        site = write_synthetic_site(tmp / "site", a.size, a.dates, step_days=12)
        files = sorted((site / "s2").iterdir())
        first, last = files[0].stem, files[-1].stem
        targets = f"{first[:4]}-06-15,{last[:4]}-03-01"
        rec = ["reconstruct", str(site), "--dates", targets, "--tile", "256"]
        res = {"benchmark": "raster_heads", "size": a.size, "dates": a.dates, "period": f"{first}/{last}",
               "model": "alise-s2-small (built-in)"}
        res["reconstruct"] = timed([*rec, "--out", str(tmp / "ref")])
        tiles = tmp / "out.parts" / "embedding.zarr.parts" / "tiles"
        from alise.encode.tiling import TileGrid

        n_tiles = len(TileGrid(a.size, a.size, 256, 32).tiles)
        killed = killed_half_way([*rec, "--out", str(tmp / "out")], tiles, n_tiles)
        res["reconstruct_resumed"] = {"killed": killed, "tiles": n_tiles, **timed([*rec, "--out", str(tmp / "out")])}
        same = True
        for d in targets.split(","):
            with rasterio.open(tmp / "ref" / "s2" / f"{d}.tif") as f1, rasterio.open(tmp / "out" / "s2" / f"{d}.tif") as f2:
                same &= bool(np.array_equal(f1.read(), f2.read()))
        res["reconstruct_resumed"]["identical_to_uninterrupted"] = same
        res["change"] = timed(["change", str(site), "--years", f"{first[:4]},{last[:4]}", "--tile", "256", "--out",
                               str(tmp / "change.tif")])
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
