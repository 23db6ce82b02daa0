"""Time pre-training steps on this machine, before and after the CPU training path; print JSON.

Configurations: the paper's ([P] Table I, §III-C: full ALISE, batch 2 SITS, two views of 30
dates, 64 × 64 crops) and the built-in model's CPU preset (``alise.model.presets``). For each, in one
run and on the same batch:

* ``reference``: one call of the temporal part over every pixel and torch's own dropout (the
  attention-weight dropout of Table IX forces SDPA's unfused path) — the code as it was;
* ``current``: the CPU training path — cache-sized chunks of pixel sequences under activation
  checkpointing, and the cheaper dropout of :mod:`alise.model.nn.dropout`.

Reported: median seconds per optimiser step (forward + backward + Adam), GFLOP per step
(``torch.utils.flop_counter``, attention included), achieved GFLOP/s and their ratio to the fp32
GEMM peak measured in the same run, the peak RSS of a process that runs only that mode (each mode
runs in its own subprocess), and — with dropout off, where both paths compute the same function —
the largest difference of the losses over a few steps ("equal loss curve").

    python benchmarks/pretrain_step.py [--steps 3] [--configs paper,cpu-small] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time

import torch
from gemm import gemm_peak  # benchmarks/gemm.py (the script folder is on sys.path)

from alise.batch import SITSBatch
from alise.model.config import ALISEConfig
from alise.model.network import ALISE


def views(b: int = 2, t: int = 30, h: int = 64, seed: int = 0) -> tuple[SITSBatch, SITSBatch]:
    g = torch.Generator().manual_seed(seed)

    def one(offset: int) -> SITSBatch:
        days = (1500 + offset + 10 * torch.arange(t, dtype=torch.float32))[None].repeat(b, 1)
        return SITSBatch(x=torch.randn(b, t, 10, h, h, generator=g) * 0.2, days=days,
                         valid_dates=torch.ones(b, t, dtype=torch.bool),
                         valid_pixels=torch.rand(b, t, h, h, generator=g) > 0.3)

    return one(0), one(5)


def configuration(name: str) -> tuple[ALISEConfig, int, int, int]:
    """``(config, batch, dates per view, crop)`` of a named configuration."""
    if name == "paper":
        return ALISEConfig(), 2, 30, 64
    from alise.model.presets import preset

    p = preset(name)
    return p.config, p.batch_size, p.config.n_dates // 2, p.crop


def set_mode(mode: str) -> None:
    import alise.model.network
    import alise.model.nn.dropout

    current = mode == "current"
    alise.model.nn.dropout.FAST = current
    alise.model.network.TRAIN_RECOMPUTE_TOKENS = (1 << 17) if current else (1 << 62)


def step_flops(model: ALISE, batch) -> float:
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    def cpu_sdpa(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        return sdpa_flop_count(query_shape, key_shape, value_shape)

    def cpu_sdpa_bwd(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        return 2 * sdpa_flop_count(query_shape, key_shape, value_shape)

    mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: cpu_sdpa,
               torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: cpu_sdpa_bwd}
    with FlopCounterMode(display=False, custom_mapping=mapping) as fc:
        model.pretrain_step(*batch)["loss"].backward()
    model.zero_grad(set_to_none=True)
    return fc.get_total_flops()


def time_steps(model: ALISE, batch, steps: int, bf16: bool = False) -> tuple[float, list[float]]:
    """Median seconds per optimiser step (forward + backward + Adam) and the losses."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    times, losses = [], []
    for s in range(steps):
        torch.manual_seed(s)
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model.pretrain_step(*batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
        losses.append(float(loss.detach()))
    return sorted(times)[len(times) // 2], losses


def worker(name: str, mode: str, steps: int, dropout: bool) -> dict:
    """One configuration in one mode (run in a fresh process so its peak RSS is its own)."""
    set_mode(mode)
    config, b, t, h = configuration(name)
    if not dropout:
        config = config.replace(dropout=0.0)
    torch.manual_seed(0)
    model = ALISE(config).train()
    batch = views(b, t, h)
    sec, losses = time_steps(model, batch, steps)
    return {"step_s": round(sec, 3), "losses": losses, "peak_rss_gib": round(peak_rss_gib(), 2)}


def peak_rss_gib() -> float:
    """This process's peak resident set since it started (``VmHWM``; ``ru_maxrss`` would include the
    parent's peak, inherited through fork)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2 ** 20
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def run_worker(name: str, mode: str, steps: int, dropout: bool, threads: int | None) -> dict:
    cmd = [sys.executable, __file__, "--worker", name, mode, str(steps), str(int(dropout))]
    if threads:
        cmd += ["--threads", str(threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--configs", default="paper,cpu-small")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--worker", nargs=4, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        name, mode, steps, dropout = args.worker
        print(json.dumps(worker(name, mode, int(steps), bool(int(dropout)))))
        return
    peak = gemm_peak()
    out = {"benchmark": "pretrain_step", "threads": torch.get_num_threads(),
           "machine": platform.processor() or platform.machine(), "torch": torch.__version__,
           "gemm_fp32_gflops": round(peak, 1), "configs": {}}
    for name in args.configs.split(","):
        config, b, t, h = configuration(name)
        set_mode("current")
        torch.manual_seed(0)
        flops = step_flops(ALISE(config).train(), views(b, t, h))
        row = {"batch": b, "dates_per_view": t, "crop": h, "gflop_per_step": round(flops / 1e9, 1),
               "params": ALISE(config).param_counts()}
        for mode in ("reference", "current"):
            r = run_worker(name, mode, args.steps, True, args.threads)
            row[mode] = {"step_s": r["step_s"], "peak_rss_gib": r["peak_rss_gib"],
                         "gflops_per_s": round(flops / r["step_s"] / 1e9, 1),
                         "ratio_to_gemm_peak": round(flops / r["step_s"] / 1e9 / peak, 3)}
        row["speedup"] = round(row["reference"]["step_s"] / row["current"]["step_s"], 2)
        same = [run_worker(name, mode, args.steps, False, args.threads)["losses"] for mode in ("reference", "current")]
        row["dropout_off_max_loss_difference"] = max(abs(a - c) for a, c in zip(*same))
        out["configs"][name] = row
        print(f"{name}: {row['reference']['step_s']} s → {row['current']['step_s']} s per step", file=sys.stderr)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
