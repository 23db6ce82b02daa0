"""Linear probing a pre-trained model vs the same architecture with random weights vs GF features (JSON).

A frozen random encoder is a strong baseline on small data; pre-training must beat it for the
embedding to be worth anything ([P] Table II compares ALISE^LP with ALISE^FS). Both go through
exactly the same ``alise probe --mode lp`` protocol and split; the gap-filling features (GF-LP,
``alise compare --models gf-lp``) use the same probe, split, epochs and learning rate.

    python benchmarks/probe_pretrained_vs_random.py MODEL DATA [--epochs 50 --lr 1e-3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("data", nargs="+")
    p.add_argument("--epochs", default="50")
    p.add_argument("--lr", default="1e-3")
    p.add_argument("--seed", default="0")
    p.add_argument("--start")
    p.add_argument("--end")
    a = p.parse_args(argv)

    import torch

    from alise.cli import main as alise_cli

    def alise(argv):  # the commands' own reports go to stderr: stdout carries only this JSON
        with contextlib.redirect_stdout(sys.stderr):
            return alise_cli(argv)
    from alise.model.network import ALISE
    from alise.model.io import load

    pre = load(a.model)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(int(a.seed))
        random_dir = Path(tmp) / "random"
        ALISE(pre.config, norm=pre.norm).save(random_dir)
        extra = [f"--start={a.start}"] if a.start else []
        extra += [f"--end={a.end}"] if a.end else []
        for name, model in (("pretrained", a.model), ("random", random_dir)):
            res = Path(tmp) / f"probe-{name}"
            rc = alise(["probe", str(model), *a.data, "--mode", "lp", "--epochs", a.epochs, "--lr", a.lr,
                        "--seed", a.seed, "--out", str(res), *extra])
            if rc:
                return rc
            m = json.loads((res / "metrics.json").read_text())
            out[name] = {"macro_f1": m["macro_f1"], "summary": m["summary"],
                         "per_class_f1": m["runs"][0]["per_class_f1"]}
        res = Path(tmp) / "gf"
        rc = alise(["compare", *a.data, "--models", "gf-lp", "--epochs", a.epochs, "--lr", a.lr, "--seed", a.seed,
                    "--out", str(res), *extra])
        if rc:
            return rc
        gf = json.loads((res / "comparison.json").read_text())
        out["gf"] = gf["models"][0]  # the one row: model, trainable parameters, macro_f1 mean ± std
    print(json.dumps({"benchmark": "probe_pretrained_vs_random", "model": a.model, **out}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
