"""Seams of tiled encoding → JSON on stdout: max |tiled − whole| for each GroupNorm mode.

A synthetic site (``alise synth``: parcels, rotations, clouds) is encoded once as a single tile
(the whole raster) and once cut into overlapping tiles, with the paper-configuration model (random
weights) under ``--group-norm raster`` (one set of statistics for the raster, the default) and
``--group-norm tile`` (each tile its own statistics), and with the same architecture using
BatchNorm in the encoder (no statistics involved: the blending's own floor). Reported: max and
mean |tiled − whole| over valid pixels, relative to the mean |whole|, and the wall time of each run.

Usage: ``python benchmarks/seams.py [--size 128] [--tile 64] [--overlap 24] [--months 4]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=128, help="raster size in pixels (square)")
    p.add_argument("--tile", type=int, default=64)
    p.add_argument("--overlap", type=int, default=24)
    p.add_argument("--months", type=int, default=4, help="length of the series (2018-04 onwards)")
    a = p.parse_args()

    from alise import ALISE, ALISEConfig
    from alise.cli import main as main_cli
    from alise.data import open_source
    from alise.encode import EncodeOptions, encode

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        end = f"2018-{3 + a.months:02d}-28"
        rc = main_cli(["synth", str(tmp / "synth"), "--sites", "1", "--size", str(a.size),
                       "--start", "2018-04-01", "--end", end, "--seed", "0"])
        if rc:
            sys.exit(rc)
        site = next(d for d in sorted((tmp / "synth").iterdir()) if (d / "s2").is_dir())
        src = open_source(site)
        whole_tile = -(-a.size // 8) * 8
        for norm, mode in (("group", "raster"), ("group", "tile"), ("batch", "raster")):
            torch.manual_seed(0)
            model = ALISE(ALISEConfig(encoder_norm=norm)).eval()
            out = {}
            for name, tile, overlap in (("whole", whole_tile, 0), ("tiled", a.tile, a.overlap)):
                path = tmp / f"{norm}_{mode}_{name}.tif"
                t0 = time.perf_counter()
                encode(model, src, path, EncodeOptions(tile=tile, overlap=overlap, group_norm=mode, progress=False,
                                                       device="cpu"))
                out[name + "_seconds"] = round(time.perf_counter() - t0, 1)
                with rasterio.open(path) as f:
                    out[name] = f.read()
            ok = ~np.isnan(out["whole"])
            diff = np.abs(out["tiled"][ok] - out["whole"][ok])
            scale = float(np.abs(out["whole"][ok]).mean())
            rows.append({"encoder_norm": norm, "group_norm_mode": mode if norm == "group" else "n/a",
                         "max_abs_diff": float(diff.max()), "max_rel_diff": float(diff.max()) / scale,
                         "mean_rel_diff": float(diff.mean()) / scale, "mean_abs_value": scale,
                         "seconds_whole": out["whole_seconds"], "seconds_tiled": out["tiled_seconds"]})
            print(json.dumps(rows[-1]), file=sys.stderr)
    print(json.dumps({"benchmark": "seams", "size": a.size, "dates": src.n_dates, "tile": a.tile,
                      "overlap": a.overlap, "model": "paper configuration, random weights", "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
