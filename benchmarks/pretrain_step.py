"""Time one pre-training step at the paper's configuration on this machine; print JSON.

Paper configuration ([P] Table I, §III-C): full ALISE (1.11 M-parameter encoder), batch 2 SITS,
two views of 30 dates each (60 consecutive dates, t_w = 2), 64 × 64 crops, Adam. Forward + backward
+ optimiser step, fp32 and bf16 autocast (no warm-up: one step is tens of seconds on a CPU, so
allocation overhead is negligible); plus the fp32 GEMM peak
(2048 × 2048 matmul) measured in the same run, so the step time can be read as a fraction of
what the machine can do. About 1 minute on an idle 2-core CPU (one step each).

    python benchmarks/pretrain_step.py [--steps 1] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch
from gemm import gemm_peak  # benchmarks/gemm.py (the script folder is on sys.path)

from alise.batch import SITSBatch
from alise.config import ALISEConfig
from alise.model import ALISE


def views(b: int = 2, t: int = 30, h: int = 64, seed: int = 0) -> tuple[SITSBatch, SITSBatch]:
    g = torch.Generator().manual_seed(seed)

    def one(offset: int) -> SITSBatch:
        days = (1500 + offset + 10 * torch.arange(t, dtype=torch.float32))[None].repeat(b, 1)
        return SITSBatch(x=torch.randn(b, t, 10, h, h, generator=g) * 0.2, days=days,
                         valid_dates=torch.ones(b, t, dtype=torch.bool),
                         valid_pixels=torch.rand(b, t, h, h, generator=g) > 0.3)

    return one(0), one(5)


def time_steps(model: ALISE, batch, steps: int, bf16: bool) -> float:
    """Median seconds per optimiser step (forward + backward + Adam)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model.pretrain_step(*batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = ALISE(ALISEConfig()).train()
    batch = views()
    peak = gemm_peak()
    out = {"benchmark": "pretrain_step", "config": "paper (Table I): batch 2, 2 x 30 dates, 64x64, full ALISE",
           "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
           "torch": torch.__version__, "gemm_fp32_gflops": round(peak, 1),
           "params": model.param_counts()}
    for name, bf16 in (("fp32", False), ("bf16_autocast", True)):
        s = time_steps(model, batch, args.steps, bf16)
        out[f"step_s_{name}"] = round(s, 3)
        out[f"steps_per_hour_{name}"] = round(3600 / s)
    # One paper epoch = 1920 SITS / batch 2 = 960 steps; 260 epochs ([P] §III-C).
    out["paper_pretraining_days_fp32"] = round(out["step_s_fp32"] * 960 * 260 / 86400, 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
