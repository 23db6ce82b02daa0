"""Gap-filling accuracy: the decoder vs linear interpolation on held-out clear observations (JSON).

Every ``--every``-th date with at least ``--min-clear`` clear pixels is hidden; the model encodes the
other dates and its decoder predicts the hidden ones ([P] Eq. 8–9), linear gap-filling
(:func:`alise.baselines.gapfill.gapfill_linear`) interpolates them from the same context. Errors are in
digital numbers (reflectance × 10 000) over the held-out clear pixels, all bands.

    python benchmarks/reconstruct.py MODEL DATA [--every 5] [--start 2018-01-01 --end 2018-12-31]
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("data")
    p.add_argument("--every", type=int, default=5, help="hide one clear date out of N")
    p.add_argument("--min-clear", type=float, default=0.5, help="clear fraction a hidden date needs")
    p.add_argument("--start")
    p.add_argument("--end")
    a = p.parse_args(argv)

    import numpy as np

    from alise.downstream import open_inputs
    from alise.downstream.features import SITSStore
    from alise.downstream.reconstruct import heldout_comparison
    from alise.model.io import load

    model = load(a.model)
    results = []
    for src in open_inputs(a.data, start=a.start, end=a.end):
        sits = SITSStore([src], model.norm).read(0)
        clear = sits.valid_pixels.flatten(1).float().mean(1).numpy()
        candidates = np.flatnonzero(clear >= a.min_clear)
        held = candidates[1:-1:a.every] if candidates.size > 2 else candidates[:1]
        t0 = time.perf_counter()
        r = heldout_comparison(model, sits, held.tolist())
        results.append({"source": src.name, "seconds": time.perf_counter() - t0, **r})
    print(json.dumps({"benchmark": "reconstruct", "model": a.model, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
