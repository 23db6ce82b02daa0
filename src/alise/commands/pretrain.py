"""``alise pretrain DATA... --out RUN``: self-supervised pre-training of ALISE ([P] §III, Table I)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from alise.commands._inputs import add_input_arguments

INTERRUPTED_HINT = "rerun with --resume to continue from RUN/checkpoints/last.ckpt"
HELP = "pre-train ALISE on Sentinel-2 series (checkpoints, --resume, DDP); export RUN/model"
DESCRIPTION = """\
Pre-train ALISE with the paper's recipe (§III-C, Table I): Adam (lr 1e-3), cosine annealing with
warm restarts (T_0 = 2 epochs, T_mult = 2), batches of 2 series, each a random 64 x 64 crop of 60
consecutive random dates (re-drawn every epoch) split into two interleaved views of windows of
t_w = 2 dates; loss w_rec*L_rec + w_inv*L_inv + w_cov*L_cov with w_rec 1, w_inv 1, w_cov 0;
260 epochs unless --max-epochs / --max-steps say otherwise. Dates whose clear fraction is below
--min-clear (0.5, as the authors' data) are left out of the windows.

--preset NAME starts from a named recipe instead (alise.model.presets; options given here win):
  paper      the above (default)
  cpu-small  the built-in model's recipe: reduced widths, 32 px crops of 32 dates,
             cross-reconstruction only (w_inv 0), 1,500 steps (docs/pretraining.md)
  tiny       the smallest network, for smoke runs

Normalisation statistics are computed from a sample of clear training pixels and stored in the
run and in the exported model. Validation (model selection, lowest val/loss) uses --val if given,
else ~10 % of the series (at least one) when there are several, else the centre crop of the
single series. Outputs: RUN/model (alise.load), RUN/loss.png, RUN/metrics.csv, RUN/run.json,
RUN/README.md, RUN/checkpoints (last.ckpt, one per epoch, best.ckpt).

Any model hyper-parameter (paper names) can be set with --set KEY=VALUE, e.g. the ablations of
Tables V-VII and Fig. 7 (docs/ablations.md): --set t_w=5 n_q=1 w_cov=0.05 d_emb=64.

example:
  alise pretrain data/site-a data/site-b --out runs/pt --max-epochs 20
  alise pretrain ../shared/data/worldcereal-flanders-2018 synth/ --preset cpu-small --out runs/small
  alise pretrain data/ --out runs/tw5 --set t_w=5 w_cov=0.05 --max-epochs 260
  alise pretrain data/ --out runs/pt --resume                 # continue after a crash
  alise pretrain data/ --out runs/ddp --devices 2 --strategy ddp --accelerator cpu
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", nargs="*", metavar="DATA",
                        help="training series: folders of dates, .SAFE products, synthetic or PASTIS roots, cubes "
                             "(or --files LIST.csv)")
    parser.add_argument("--out", required=True, metavar="RUN", help="run folder to create (or continue with --resume)")
    parser.add_argument("--config", metavar="FILE.json", help="model configuration JSON (flat keys, or a model's config.json)")
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="override configuration keys, e.g. --set t_w=5 n_q=1 w_cov=0.05")
    parser.add_argument("--preset", default="paper", metavar="NAME",
                        help="named recipe the defaults below come from: paper (default), cpu-small, tiny")
    g = parser.add_argument_group("schedule (defaults: the preset's; paper values shown)")
    g.add_argument("--max-epochs", type=int, help="epochs (paper: 260; unlimited with --max-steps alone)")
    g.add_argument("--max-steps", type=int, help="stop after this many optimiser steps")
    g.add_argument("--batch-size", type=int, help="series per step and process (paper: 2, Table I)")
    g.add_argument("--crop", type=int, help="square crop side in pixels (paper: 64)")
    g.add_argument("--n-dates", type=int, help="consecutive dates per sample (paper: 60; sets config n_dates)")
    g.add_argument("--samples-per-epoch", type=int, help="samples per epoch (paper: one per crop-sized tile of every series)")
    g.add_argument("--lr", type=float, help="maximum learning rate (paper: 1e-3, §III-C)")
    g.add_argument("--min-clear", type=float,
                   help="drop dates whose clear fraction over the series is below this before drawing windows "
                        "(default 0.5, as the authors' data: dates more than half cloudy are left out; 0 keeps all)")
    g.add_argument("--val", nargs="+", metavar="DATA", help="validation series (default: held-out series, see above)")
    g.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    r = parser.add_argument_group("run")
    r.add_argument("--resume", action="store_true", help="continue RUN from checkpoints/last.ckpt")
    r.add_argument("--overwrite", action="store_true", help="restart RUN from scratch, replacing its files")
    r.add_argument("--devices", type=int, default=1, help="processes / GPUs (default 1)")
    r.add_argument("--strategy", default="auto", choices=("auto", "ddp"), help="auto or ddp (gloo on CPU)")
    r.add_argument("--accelerator", default="auto", choices=("auto", "cpu", "gpu"))
    r.add_argument("--precision", default="32", choices=("32", "bf16-mixed", "16-mixed"), help="default 32 (paper)")
    r.add_argument("--num-workers", type=int, default=0, help="data loader processes (default 0: deterministic, simplest)")
    r.add_argument("--stats-pixels", type=int, default=100_000, help="clear pixels sampled for normalisation statistics")
    r.add_argument("--keep-checkpoints", type=int, default=3, help="epoch checkpoints kept besides last/best (-1: all)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_input_arguments(parser)


def load_config(path: str | None, sets: list[str], n_dates: int | None, base_config=None):
    """``(ALISEConfig, overrides dict)`` from ``--config`` (else ``base_config``, else the paper's),
    ``--set`` and ``--n-dates`` (validated)."""
    from alise.model.config import ALISEConfig, parse_overrides
    from alise.errors import AliseError

    base = {} if base_config is None else base_config.to_dict()
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise AliseError(f"--config {p}: no such file")
        try:
            base = json.loads(p.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise AliseError(f"--config {p}: not valid JSON ({e})") from None
        if isinstance(base, dict) and isinstance(base.get("architecture"), dict):
            base = base["architecture"]  # a model's config.json
    overrides = parse_overrides(sets)
    if n_dates is not None:
        overrides["n_dates"] = n_dates
    config = ALISEConfig.from_dict(base).replace(**overrides)
    return config, overrides


def run(args: argparse.Namespace) -> int:
    from alise.model.presets import preset
    from alise.commands._inputs import input_options, input_paths
    from alise.train.run import PretrainJob, run_pretraining

    pre = preset(args.preset)
    config, overrides = load_config(args.config, args.set, args.n_dates, None if args.config else pre.config)
    overrides = {**({} if args.config else pre.overrides()), **overrides}
    budget_given = args.max_epochs is not None or args.max_steps is not None

    def pick(value, default):
        return default if value is None else value

    job = PretrainJob(
        data=input_paths(args, *args.data), out=args.out, config=config, overrides=overrides, config_file=args.config,
        max_epochs=args.max_epochs if budget_given else pre.max_epochs,
        max_steps=args.max_steps if budget_given else pre.max_steps,
        batch_size=pick(args.batch_size, pre.batch_size), crop=pick(args.crop, pre.crop),
        samples_per_epoch=pick(args.samples_per_epoch, pre.samples_per_epoch), val=args.val, resume=args.resume,
        overwrite=args.overwrite, devices=args.devices, strategy=args.strategy, accelerator=args.accelerator,
        precision=args.precision, seed=args.seed, num_workers=args.num_workers, lr=pick(args.lr, pre.lr),
        min_clear=pick(args.min_clear, pre.min_clear), stats_pixels=args.stats_pixels,
        keep_checkpoints=args.keep_checkpoints, progress=not args.no_progress, preset=pre.name,
        **input_options(args),
    )
    record = run_pretraining(job)
    if record is None:  # a DDP worker process
        return 0
    base = record.get("baseline")
    msg = f"model written to {Path(args.out) / 'model'} (epoch {record['selected_epoch']})"
    if base:
        pct = base["reduction_percent"]
        msg += (f"; held-out reconstruction {base['val_rec']:.4f} vs band-mean {base['band_mean_rec']:.4f} "
                f"({abs(pct):.1f} % {'lower' if pct >= 0 else 'higher'})")
    print(msg)
    return 0
