"""Encode one long series with a tiny model and print its peak memory (run by ``test_numerics.py``).

    python tests/reliability/long_series.py T SIDE CHUNK_PIXELS [paper]

prints one JSON line: output shape, whether every value is finite, seconds, peak RSS in MiB
(``resource.getrusage``, this process only). Kept as a script so the 128 × 128 figure of
docs/reliability.md can be reproduced; the test runs a smaller side to stay fast.
"""

from __future__ import annotations

import json
import resource
import sys
import time

import torch

from alise.model.config import ALISEConfig
from alise.model.network import ALISE
from alise.model.presets import preset

#: The tiny configuration of tests/reliability (conftest.TINY: the tiny preset, 2 queries).
TINY = preset("tiny").config.replace(n_q=2, proj_d_k=4)


def main(t: int, side: int, chunk_pixels: int, config: ALISEConfig = TINY) -> dict:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = ALISE(config).eval().set_channels_last(True)  # as `alise encode` runs it on CPU
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, t, 10, side, side, generator=g)  # (B, T, C, H, W) normalised reflectance
    days = (1000 + 3 * torch.arange(t, dtype=torch.float32))[None]  # one acquisition every 3 days
    valid = torch.ones(1, t, dtype=torch.bool)
    start = time.perf_counter()
    with torch.inference_mode():
        y = model.encode(x, days, valid, chunk_pixels=chunk_pixels)  # (B, Q, D, H, W)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux → MiB
    return {"T": t, "side": side, "chunk_pixels": chunk_pixels, "config": "tiny" if config is TINY else "paper",
            "shape": list(y.shape),
            "finite": bool(torch.isfinite(y).all()), "seconds": round(seconds, 1), "peak_rss_mib": round(peak)}


if __name__ == "__main__":
    cfg = ALISEConfig() if sys.argv[4:5] == ["paper"] else TINY
    print(json.dumps(main(*(int(a) for a in sys.argv[1:4]), config=cfg)))
