"""Options of the paper's downstream protocol ([P] §IV-B), shared by ``alise probe`` and ``alise compare``.

One definition keeps the two commands on the same defaults: Adam lr 1e-4, at most 120 epochs,
early-stopping patience 20, 64 × 64 training crops, PASTIS fold rotation 1 or 16-px spatial blocks.
"""

from __future__ import annotations

import argparse


def add_protocol_arguments(p: argparse.ArgumentParser) -> None:
    """Training budget, split and date-range options (paper defaults)."""
    p.add_argument("--epochs", type=int, default=120, help="maximum training epochs (default 120)")
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (paper: 1e-4)")
    p.add_argument("--patience", type=int, default=20, help="early stopping: epochs without better val macro-F1 (20)")
    p.add_argument("--crop", type=int, default=64, help="training crop side in pixels (64)")
    p.add_argument("--seed", type=int, default=0, help="random seed (splits, initialisations, crops, pre-training)")
    p.add_argument("--folds", default="1", metavar="K|all", help="PASTIS rotation 1-5, or all (default 1)")
    p.add_argument("--block", type=int, default=16, help="block side of spatial splits, pixels (16)")
    p.add_argument("--repeats", type=int, default=1, help="runs with split seeds seed..seed+N-1 (non-PASTIS data)")
    p.add_argument("--start", default=None, metavar="DATE", help="first date used (YYYY-MM-DD)")
    p.add_argument("--end", default=None, metavar="DATE", help="last date used (YYYY-MM-DD)")
