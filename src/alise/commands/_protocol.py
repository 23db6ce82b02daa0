"""Options of the downstream protocol, shared by ``alise probe`` and ``alise compare``.

One definition keeps the two commands on the same defaults (see :mod:`alise.downstream.probe`):
L-BFGS for frozen features that fit in memory, the paper's Adam 1e-4 + ReduceLROnPlateau for
end-to-end training, 64 × 64 training crops, PASTIS fold rotation 1 or 16-px spatial blocks.
"""

from __future__ import annotations

import argparse

SOLVER_HELP = """\
frozen features (lp, and every frozen baseline of compare):
  auto   (default) lbfgs for a linear head when the labelled training pixels x features fit in
         memory (2 GiB in float64: ~400k pixels of 640 features), else adam (also for U-BARN FR's
         non-linear shallow classifier)
  lbfgs  full-batch multinomial logistic regression (L-BFGS) on the standardised features of every
         labelled training pixel, one fit per --C value, the C with the best validation macro-F1
         kept; runs until the gradient vanishes (metrics.json: "stopped": "converged") or --max-iter
  adam   mini-batches of --batch-pixels training pixels, --steps budget, validation every
         --eval-every steps, early stop after --patience-steps; for tables too large for memory
  paper  the paper's protocol (Adam lr 1e-4, ReduceLROnPlateau(10, 0.05), --epochs over
         --crop-size tiles, --batch-size tiles per step, early stop after --patience epochs):
         for PASTIS-size data; on one small raster an epoch is a single step, so prefer lbfgs
end to end (ft, fs, U-BARN FT/FS, U-TAE): the paper's optimiser on random --crop windows centred
  on labelled training pixels; an epoch is at least --min-steps-per-epoch steps, early stop after
  --patience epochs (counted in steps), at most --epochs epochs."""


def add_protocol_arguments(p: argparse.ArgumentParser) -> None:
    """Solver, budget, split and date-range options."""
    g = p.add_argument_group("training (see 'solvers' above)")
    g.add_argument("--solver", default="auto", metavar="auto|lbfgs|adam|paper",
                   help="how frozen-feature heads are fitted (default auto)")
    g.add_argument("--C", default=None, metavar="C1,C2,...",
                   help="inverse L2 strengths tried by lbfgs (default 0.001,0.01,0.1,1,10); adam: one value, "
                        "default no penalty")
    g.add_argument("--max-iter", type=int, default=1000, help="lbfgs: iterations per C (1000)")
    g.add_argument("--steps", type=int, default=None, help="adam: optimisation steps (3000)")
    g.add_argument("--batch-pixels", type=int, default=4096, help="adam: training pixels per step (4096)")
    g.add_argument("--eval-every", type=int, default=100, help="adam: steps between validations (100)")
    g.add_argument("--patience-steps", type=int, default=None, help="adam: early stop after N steps without "
                                                                    "better val macro-F1 (1000)")
    g.add_argument("--epochs", type=int, default=None, help="paper / ft / fs: maximum epochs (120)")
    g.add_argument("--patience", type=int, default=None, help="paper / ft / fs: early stop after N epochs without "
                                                            "better val macro-F1 (20)")
    g.add_argument("--min-steps-per-epoch", type=int, default=None, help="ft / fs: steps per epoch at least (25)")
    g.add_argument("--lr", type=float, default=None, help="learning rate (default: adam 1e-3; paper, ft, fs 1e-4)")
    g.add_argument("--batch-size", type=int, default=2, help="paper / ft / fs: crops per step (2)")
    g.add_argument("--crop", type=int, default=None, help="training crop side in pixels (64)")
    g.add_argument("--seed", type=int, default=0, help="random seed (splits, initialisations, crops, pre-training)")
    s = p.add_argument_group("splits and dates")
    s.add_argument("--folds", default="1", metavar="K|all", help="PASTIS rotation 1-5, or all (default 1)")
    s.add_argument("--block", type=int, default=16, help="block side of spatial splits, pixels (16)")
    s.add_argument("--repeats", type=int, default=3, help="runs with split seeds seed..seed+N-1 (non-PASTIS data; 3)")
    s.add_argument("--start", default=None, metavar="DATE", help="first date used (YYYY-MM-DD)")
    s.add_argument("--end", default=None, metavar="DATE", help="last date used (YYYY-MM-DD)")


#: Options whose default may come from a preset (``alise compare --preset``); None until resolved.
BUDGET_OPTIONS: tuple[str, ...] = ("steps", "patience_steps", "epochs", "patience", "min_steps_per_epoch", "crop")


def probe_config(args: argparse.Namespace, mode: str = "lp", defaults: dict | None = None):
    """The :class:`~alise.downstream.probe.ProbeConfig` of the parsed options; an option of
    :data:`BUDGET_OPTIONS` not given takes ``defaults[name]`` (a preset's protocol), else the
    :class:`ProbeConfig` default."""
    from dataclasses import fields

    from alise.downstream.probe import C_GRID, ProbeConfig
    from alise.errors import AliseError

    base = {f.name: f.default for f in fields(ProbeConfig)}
    budget = {k: getattr(args, k) if getattr(args, k) is not None else (defaults or {}).get(k, base[k])
              for k in BUDGET_OPTIONS}

    if args.C is None:
        cs = C_GRID
    else:
        try:
            cs = tuple(float(v) for v in str(args.C).split(",") if v.strip())
        except ValueError:
            raise AliseError(f"--C {args.C!r}: expected comma-separated positive numbers, e.g. 0.01,0.1,1") from None
    return ProbeConfig(mode=mode, solver=str(args.solver).lower(), Cs=cs, max_iter=args.max_iter,
                       batch_pixels=args.batch_pixels, eval_every=args.eval_every, lr=args.lr,
                       batch_size=args.batch_size, seed=args.seed, **budget)
