"""`alise compare` as a CPU user runs it: wall time and peak RSS of the whole command; JSON.

Runs, in a child process, the comparison a laptop must finish: ALISE LP / FT / FS (the built-in
model), U-BARN FR (pre-trained here), U-TAE, Presto LP, GF LP and monthly medians on the real
Flanders patch with ``--preset cpu-small`` (the built-in model's architecture and the CPU-sized
budget), every other option at its default (3 split seeds, the ``auto`` solver). Peak RSS is the
child's ``ru_maxrss``.

    python benchmarks/compare_cpu.py [DATA] [--models ...] [--pretrain-steps 200] [--model-dir alise=builtin]
    python benchmarks/compare_cpu.py --models alise-lp,ubarn-fr,utae,presto-lp,gf-lp --pretrain-steps 10 --model-dir
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    here = Path(__file__).resolve().parents[1]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", nargs="?", default=str(here.parent / "shared" / "data" / "worldcereal-flanders-2018"))
    p.add_argument("--models", default="alise-lp,alise-ft,alise-fs,ubarn-fr,utae,presto-lp,gf-lp,median-lp")
    p.add_argument("--pretrain-steps", default="200")
    p.add_argument("--model-dir", nargs="*", default=["alise=builtin"], metavar="KIND=DIR",
                   help="given without a value: everything is pre-trained here")
    p.add_argument("--preset", default="cpu-small")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cmp"
        cmd = [sys.executable, "-m", "alise.cli", "compare", a.data, "--models", a.models, "--preset", a.preset,
               "--pretrain-steps", a.pretrain_steps, "--out", str(out), "--no-progress"]
        if a.model_dir:
            cmd += ["--model-dir", *a.model_dir]
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2 ** 20
        if proc.returncode:
            print(proc.stderr, file=sys.stderr)
            return proc.returncode
        report = json.loads((out / "comparison.json").read_text())
    rows = {m["kind"]: {"macro_f1": round(m["macro_f1"]["mean"], 4), "std": round(m["macro_f1"]["std"], 4),
                        "fit": m["details"].get("stopped"), "pretraining": m["pretraining"]} for m in report["models"]}
    print(json.dumps({"benchmark": "compare_cpu", "command": "alise " + " ".join(cmd[3:]).replace(str(out), "OUT"),
                      "wall_s": round(wall, 1), "peak_rss_gib": round(rss, 2), "n_runs": report["n_runs"],
                      "models": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
