"""``alise demo --out DIR``: the whole paper on built-in data, ending in report.md + report.html."""

from __future__ import annotations

import argparse

HELP = "run the whole paper on built-in data in minutes (synth + real patch → pretrain → embed → probe → change → report)"

DESCRIPTION = """\
Generate synthetic Sentinel-2 series (alise synth), add the shipped real patch
worldcereal-flanders-2018 (found beside the repository in ../shared/data, under $ALISE_SHARED/data,
or given with --real; without it the demo runs on synthetic data only and says so), load the
built-in pre-trained encoder (or --model) and its random twin, pre-train an encoder of the demo's
own briefly, then compute and report: embeddings (PCA to RGB), gap-filling at cloudy dates
(decoder vs. linear interpolation), linear-probe segmentation macro-F1 on spatially blocked
splits (built-in vs. short pre-training vs. random twin vs. GF), change detection ROC-AUC (the
same encoders vs. GF) and the run's timings, versions and seeds. Every number of DIR/report.md and DIR/report.html is
computed in the run and stored in DIR/results.json. The full configuration takes a few minutes
on 2 CPU cores; --quick is a seconds-long reduced configuration (used by the tests).

example:
  alise demo --out demo-output
  alise demo --out demo-quick --quick --seed 1
  alise demo --out demo-paper --arch paper --max-steps 60 --real /data/worldcereal-flanders-2018
  alise demo --out demo-mine --model runs/pt/model       # evaluate your own model instead
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (refused if it exists, unless --overwrite)")
    parser.add_argument("--quick", action="store_true", help="reduced configuration (tiny model, few steps): seconds, for tests")
    parser.add_argument("--real", default=None, metavar="PATH",
                        help="the real patch folder (default: ../shared/data/worldcereal-flanders-2018 or $ALISE_SHARED/data/...)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    parser.add_argument("--arch", default="demo", choices=("demo", "paper"),
                        help="demo: reduced widths that fit the time budget (default); paper: Table VIII-IX architecture")
    parser.add_argument("--model", default=None, metavar="NAME|DIR",
                        help="pre-trained model evaluated (default: the built-in model; see alise models)")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="steps of the demo's own short pre-training (default: 300, --quick: 4)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (stage lines are still printed)")
    parser.add_argument("--overwrite", action="store_true", help="replace DIR if it exists (only once the new one is complete)")


def run(args: argparse.Namespace) -> int:
    from alise.demo import DemoOptions, run_demo
    from alise.errors import AliseError

    if args.seed < 0:
        raise AliseError(f"--seed must be ≥ 0 (got {args.seed})")
    if args.max_steps is not None and args.max_steps < 1:
        raise AliseError(f"--max-steps must be ≥ 1 (got {args.max_steps})")
    results = run_demo(DemoOptions(out=args.out, quick=args.quick, real=args.real, seed=args.seed, arch=args.arch,
                                   model=args.model, max_steps=args.max_steps, overwrite=args.overwrite, progress=not args.no_progress))
    failed = [k for k, v in results["stages"].items() if v.get("status") != "ok"]
    if failed:
        print(f"alise demo: stages not completed: {', '.join(failed)} (see the report)")
    return 0
