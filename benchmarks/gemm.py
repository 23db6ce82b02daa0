"""The yardstick every benchmark reports against: dense matmul throughput measured in the same run."""

from __future__ import annotations

import time

import torch


def gemm_peak(dtype: torch.dtype = torch.float32, n: int = 2048, reps: int = 5) -> float:
    """Best-of-``reps`` throughput of an ``n × n`` matmul in ``dtype``, GFLOP/s."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9
