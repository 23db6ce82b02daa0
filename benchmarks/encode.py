"""Encoding throughput, FLOP efficiency and memory of ``alise encode`` → JSON on stdout.

What it measures (paper-configuration model, random weights, CPU unless CUDA is present):

* ``gemm``: the fp32 / bf16 matrix-multiply peak of this machine, measured in the same run
  (best of several 2048³ products) — the yardstick for "achieved GFLOP/s".
* ``model``: ``model.encode`` on one ``S × S × T`` stack for S×T in 64×{30,60,120} and 128×60, fp32
  and bf16: pixels·dates per second, GFLOP (counted by ``torch.utils.flop_counter``: UNet convs,
  Transformer matmuls and attention, projector), GFLOP/s and its ratio to the GEMM peak, for the
  model as ``alise encode`` runs it (``ALISE.for_inference``) and, at 64×64×60, the plain eval
  model (NCHW, BatchNorm unfolded, one Transformer call) to show what that buys.
* ``profile``: the top operators of one 64×64×60 encode on the ``alise encode`` path (torch.profiler).
* ``end_to_end``: ``alise.encode.encode`` on synthetic site folders of growing area (subprocess
  each, so peak RSS is that run's alone): seconds, pixels·dates/s, peak RSS — RSS must not grow
  with the area. Projections to a 1024² × 100 raster and to a full Sentinel-2 tile
  (10980² px, 60 dates) from the measured rate and, by FLOP count, on a data-centre GPU.

Usage: ``python benchmarks/encode.py [--sizes 128,240] [--dates 100] [--tile auto] [--overlap 32] [--quick]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from gemm import gemm_peak  # benchmarks/gemm.py (the script folder is on sys.path)

#: Assumed sustained dense throughput of one data-centre GPU for this workload (A100, TF32 / bf16
#: tensor cores ≈ 156 / 312 TFLOP/s peak; convs and small attention reach roughly a third).
GPU_TFLOPS = {"fp32": 50.0, "bf16": 100.0}


def _cpu_sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of the CPU flash-attention kernel (torch's counter only knows the CUDA ones)."""
    from torch.utils.flop_counter import sdpa_flop_count

    return sdpa_flop_count(query_shape, key_shape, value_shape)


def encode_flops(model, s: int, t: int) -> float:
    """FLOPs of one ``model.encode`` on ``(1, t, 10, s, s)``: convolutions, matmuls and attention."""
    from torch.utils.flop_counter import FlopCounterMode

    x, days, valid = inputs(s, t)
    mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flops}
    with torch.inference_mode(), FlopCounterMode(display=False, custom_mapping=mapping) as fc:
        model.encode(x, days, valid)
    return fc.get_total_flops()


def inputs(s: int, t: int):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, t, 10, s, s, generator=g)
    days = (1400 + 6 * torch.arange(t, dtype=torch.float32))[None]
    return x, days, torch.ones(1, t, dtype=torch.bool)


def time_encode(model, s: int, t: int, precision: str, reps: int = 3, **kwargs) -> float:
    """Best of ``reps`` wall times of ``model.encode`` (after one warm-up call)."""
    x, days, valid = inputs(s, t)
    best = float("inf")
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
        model.encode(x, days, valid, **kwargs)  # warm-up
        for _ in range(reps):
            t0 = time.perf_counter()
            model.encode(x, days, valid, **kwargs)
            best = min(best, time.perf_counter() - t0)
    return best


#: What ``alise encode`` runs (``ALISE.for_inference``: BatchNorm folded, channels_last UNet,
#: cache-sized Transformer chunks), and the plain eval model called as in training code (NCHW,
#: unfolded, the whole 64 × 64 stack through the Transformer at once) for comparison.
VARIANTS = {"encode_path": dict(for_inference=True, chunk_pixels=None),
            "plain_eval": dict(for_inference=False, chunk_pixels=1 << 30)}


def bench_model(shapes, quick: bool) -> tuple[dict, list]:
    from alise import ALISE, ALISEConfig

    torch.manual_seed(0)
    plain = ALISE(ALISEConfig()).eval()
    fast = plain.for_inference("cpu")
    precisions = ("fp32",) if quick else ("fp32", "bf16")
    peaks = {p: gemm_peak(torch.float32 if p == "fp32" else torch.bfloat16) for p in precisions}
    rows = []
    for s, t in shapes:
        flops = encode_flops(plain, s, t)
        for precision in precisions:
            for name, v in VARIANTS.items():
                if name != "encode_path" and (s, t) != (64, 60):
                    continue
                model = fast if v["for_inference"] else plain
                sec = time_encode(model, s, t, precision, reps=1 if quick else 3, chunk_pixels=v["chunk_pixels"])
                rows.append({"H": s, "W": s, "T": t, "precision": precision, "variant": name,
                             "seconds": round(sec, 3), "pixel_dates_per_s": round(s * s * t / sec),
                             "gflop": round(flops / 1e9, 2), "gflops_per_s": round(flops / sec / 1e9, 1),
                             "ratio_to_gemm_peak": round(flops / sec / 1e9 / peaks[precision], 3)})
                print(json.dumps(rows[-1]), file=sys.stderr)
    return {k: round(v, 1) for k, v in peaks.items()}, rows


def profile_top(n: int = 10) -> dict:
    """Top operators (self CPU time) of one 64 × 64 × 60 encode on the ``alise encode`` path."""
    from torch.profiler import ProfilerActivity, profile

    from alise import ALISE, ALISEConfig

    model = ALISE(ALISEConfig()).for_inference("cpu")
    x, days, valid = inputs(64, 60)
    with torch.inference_mode():
        model.encode(x, days, valid)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            model.encode(x, days, valid)
    ev = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in ev)
    return {"total_ms": round(total / 1e3), "top": [(e.key, round(e.self_cpu_time_total / 1e3)) for e in ev[:n]]}


# ---------------------------------------------------------------------------------------------
# End to end, one subprocess per raster size.


def write_synthetic_site(root: Path, size: int, n_dates: int, step_days: int = 5) -> Path:
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(0)
    (root / "s2").mkdir(parents=True)
    prof = dict(driver="GTiff", height=size, width=size, crs="EPSG:32631", dtype="uint16", count=10, nodata=0,
                transform=from_origin(500000.0, 5650000.0, 10.0, 10.0), tiled=True, blockxsize=256, blockysize=256)
    d0 = dt.date(2018, 1, 3)
    for k in range(n_dates):
        dn = rng.integers(300, 4000, (10, size, size), dtype=np.uint16)
        with rasterio.open(root / "s2" / f"{d0 + dt.timedelta(days=step_days * k)}.tif", "w", **prof) as f:
            f.write(dn)
    return root


def end_to_end_child(site: str, out: str, tile: int | None, overlap: int, precision: str) -> None:
    """Runs in a subprocess: encode ``site``, print seconds and peak RSS as JSON."""
    from alise import ALISE, ALISEConfig
    from alise.data import open_source
    from alise.encode import EncodeOptions, encode

    torch.manual_seed(0)
    model = ALISE(ALISEConfig()).eval()
    src = open_source(site)
    t0 = time.perf_counter()
    rep = encode(model, src, out, EncodeOptions(tile=tile, overlap=overlap, precision=precision, device="cpu",
                                                 progress=False, workers=1))
    sec = time.perf_counter() - t0
    print(json.dumps({"seconds": round(sec, 1), "groupnorm_stats_seconds": round(rep.stats_seconds, 1),
                      "tiles": rep.tiles_total, "tile_used": rep.tile,
                      "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)}))


def bench_end_to_end(sizes, n_dates: int, tile: str, overlap: int, precision: str) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            site = write_synthetic_site(Path(tmp) / f"site{size}", size, n_dates)
            out = Path(tmp) / f"emb{size}.tif"
            res = subprocess.run([sys.executable, __file__, "--child", str(site), str(out), str(tile), str(overlap),
                                  precision], capture_output=True, text=True, check=True)
            row = {"H": size, "W": size, "T": n_dates, "tile_requested": tile, "overlap": overlap, "precision": precision,
                   **json.loads(res.stdout.strip().splitlines()[-1])}
            row["pixel_dates_per_s"] = round(size * size * n_dates / row["seconds"])
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    return rows


def projections(e2e: list[dict], rows: list[dict]) -> dict:
    """Wall time of bigger rasters from the measured rates, and on a GPU by FLOP count.

    The CPU figure uses the largest end-to-end run when there is one (I/O, overlap recomputation
    and merge included), else the model-only rate of 64 × 64 × 60 times the 256/32 tiling redundancy.
    """
    ref = next(r for r in rows if (r["H"], r["T"], r["precision"], r["variant"]) == (64, 60, "fp32", "encode_path"))
    flop_per_pd = ref["gflop"] * 1e9 / (64 * 64 * 60)
    redundancy = (256 / 224) ** 2
    fp32 = [r for r in e2e if r["precision"] == "fp32"]
    rate = fp32[-1]["pixel_dates_per_s"] if fp32 else ref["pixel_dates_per_s"] / redundancy
    out = {"flop_per_pixel_date": round(flop_per_pd), "overlap_redundancy_256_32": round(redundancy, 3),
           "cpu_rate_pixel_dates_per_s": rate, "cpu_rate_from": "end_to_end" if fp32 else "model x redundancy"}
    for name, (hw, t) in {"1024x1024x100": (1024, 100), "s2_tile_10980x10980x60": (10980, 60)}.items():
        pd = hw * hw * t
        gpu = {p: round(pd * flop_per_pd * redundancy / (GPU_TFLOPS[p] * 1e12) / 60, 1) for p in GPU_TFLOPS}
        out[name] = {"cpu_hours_this_machine": round(pd / rate / 3600, 2), "gpu_minutes_compute_only": gpu}
    out["assumed_gpu_tflops"] = GPU_TFLOPS
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        site, out, tile, overlap, precision = sys.argv[2:7]
        return end_to_end_child(site, out, None if tile == "auto" else int(tile), int(overlap), precision)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="128,240",
                   help="end-to-end raster sizes (px, comma-separated; '' for none). "
                        "The README's figures: --sizes 512,1024 --dates 100")
    p.add_argument("--dates", type=int, default=100)
    p.add_argument("--tile", default="auto", help="tile size in px, or auto (alise encode's default)")
    p.add_argument("--overlap", type=int, default=32)
    p.add_argument("--quick", action="store_true", help="fp32 only, one repetition")
    p.add_argument("--e2e-precisions", default="fp32", help="end-to-end precisions, e.g. fp32,bf16")
    a = p.parse_args()
    shapes = [(64, 30), (64, 60), (64, 120), (128, 60)]
    peaks, rows = bench_model(shapes, a.quick)
    prof = profile_top()
    sizes = [int(s) for s in a.sizes.split(",") if s.strip()]
    e2e = [row for prec in a.e2e_precisions.split(",")
           for row in bench_end_to_end(sizes, a.dates, a.tile, a.overlap, prec.strip())]
    print(json.dumps({"benchmark": "encode", "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "gemm_peak_gflops": peaks, "model": rows, "profile_64x64x60": prof, "end_to_end": e2e,
                      "projections": projections(e2e, rows)}, indent=1))


if __name__ == "__main__":
    main()
