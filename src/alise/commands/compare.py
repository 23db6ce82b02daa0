"""``alise compare DATA... --models ... --out DIR``: the paper's baselines side by side ([P] Table II)."""

from __future__ import annotations

import argparse

from alise.commands._inputs import add_input_arguments, input_options, input_paths, require_inputs
from alise.commands._protocol import SOLVER_HELP, add_protocol_arguments, probe_config

HELP = "ALISE LP/FT/FS, U-BARN FR/FT/FS, U-TAE, Presto LP and GF LP on one split and one metric -> Table II"
DESCRIPTION = """\
Train and evaluate several models on the same labelled data, the same train/val/test splits and
the same metric (macro-F1 over the labelled classes, background/void ignored), with the probe of
'alise probe' (same solvers and defaults, below), and write a table like the paper's Table II.

  alise-lp  alise-ft  alise-fs    ALISE linear probe / fine-tuned / from scratch
  ubarn-fr  ubarn-ft  ubarn-fs    U-BARN frozen + shallow classifier / fine-tuned / from scratch
  utae                            U-TAE from scratch
  presto-lp                       frozen Presto (published weights) on monthly median composites
  gf-lp                           linear head on the series gap-filled on a 5-day grid
  median-lp                       linear head on monthly median composites of clear pixels

ALISE and U-BARN need a pre-trained model (--model-dir alise=DIR ubarn=DIR; alise=builtin for the
built-in model); without one they are pre-trained here first on DATA (ALISE: the 'alise
pretrain' job; U-BARN: masked-acquisition reconstruction with ALISE's recipe) for exactly
--pretrain-steps steps, which you must give: without it, one step is timed and the command stops
with the estimated duration. The table says what was pre-trained and how.

--preset NAME (alise.model.presets) sets the architecture of the models built here (ALISE, U-BARN;
U-TAE follows the U-Net widths), their pre-training recipe and the training budget:
  paper      (default) the paper's architecture and protocol (64 px crops; end to end: epochs of
             >= 25 steps, patience 20 epochs, at most 120; adam: 3000 steps, patience 1000);
             every date for the models trained from scratch
  cpu-small  the built-in model's architecture and recipe, 32 px crops of the dates at least
             half clear; end to end: epochs of >= 10 steps, patience 4, at most 20; adam: 1500
             steps, patience 300: every kind on one 64 x 64 patch in minutes on a 2-core CPU
Options given on the command line win; --set KEY=VALUE changes single architecture keys.

solvers:
""" + SOLVER_HELP + """

Writes DIR/comparison.json, DIR/comparison.md, DIR/<model>/metrics.json and DIR/pretrain/*.

example:
  alise compare /data/worldcereal-flanders-2018 --models alise-lp,gf-lp,median-lp,presto-lp \\
      --model-dir alise=builtin --out cmp
  alise compare /data/worldcereal-flanders-2018 --models alise-lp,ubarn-fr,utae,presto-lp,gf-lp \\
      --preset cpu-small --pretrain-steps 10 --out cmp-cpu
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", metavar="DATA", nargs="*",
                   help="labelled series: site folders, PASTIS root, ... (or --files LIST.csv)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--models", default="all", help="comma-separated subset of the models listed above, or all "
                                                    "(default all)")
    p.add_argument("--model-dir", nargs="+", default=[], metavar="NAME=DIR",
                   help="pre-trained models: alise=DIR (alise pretrain / import-onnx) or alise=builtin, "
                        "ubarn=DIR (a U-BARN export)")
    p.add_argument("--pretrain-steps", type=int, default=None,
                   help="steps of the pre-training done here (required when something is pre-trained here)")
    p.add_argument("--samples-per-epoch", type=int, default=8, help="pre-training samples per epoch (8)")
    p.add_argument("--preset", default="paper", metavar="NAME",
                   help="architecture, pre-training recipe and budget: paper (default), cpu-small, tiny (see above)")
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="architecture keys of the models built here (ALISE config keys) over the preset's, e.g. d_model=32")
    p.add_argument("--min-clear", type=float, default=None, metavar="F",
                   help="models trained from scratch (U-TAE, ALISE FS, U-BARN FS) read the dates at least F clear "
                        "(default: the preset's, paper 0 = every date); pre-trained models read their own")
    add_protocol_arguments(p)
    add_input_arguments(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing DIR")
    p.add_argument("--progress", action="store_true", help="progress bars even when stderr is not a terminal")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def parse_models(text: str) -> list[str]:
    from alise.compare.runners import KINDS
    from alise.errors import AliseError

    if str(text).strip().lower() == "all":
        return list(KINDS)
    kinds = [k.strip().lower() for k in str(text).split(",") if k.strip()]
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise AliseError(f"--models: unknown model {bad[0] if bad else '(none)'!r}; choose among {', '.join(KINDS)}")
    return list(dict.fromkeys(kinds))


def parse_model_dirs(items: list[str]) -> dict[str, str]:
    from pathlib import Path

    from alise.errors import AliseError

    out = {}
    for item in items:
        name, sep, path = str(item).partition("=")
        if not sep or name not in ("alise", "ubarn") or not path:
            raise AliseError(f"--model-dir {item!r}: expected alise=DIR, alise=builtin or ubarn=DIR")
        if not (name == "alise" and path == "builtin") and not Path(path).is_dir():
            raise AliseError(f"--model-dir {name}={path}: no such directory")
        out[name] = path
    return out


def needs_pretraining(kinds: list[str], dirs: dict[str, str]) -> list[str]:
    """Which pre-trained models ("alise", "ubarn") the kinds need and --model-dir does not give."""
    from alise.compare.runners import REGISTRY

    return sorted({REGISTRY[k].pretrained for k in kinds} & {"alise", "ubarn"} - set(dirs))


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    from pathlib import Path

    from alise.errors import AliseError
    from alise.outputs import atomic_dir, check_output

    args.data = input_paths(args, *args.data)
    require_inputs(args.data)
    input_options(args)  # a bad --date-pattern fails here, before anything is loaded
    kinds = parse_models(args.models)
    dirs = parse_model_dirs(args.model_dir)
    for name in ("samples_per_epoch", "block", "repeats"):
        if getattr(args, name) <= 0:
            raise AliseError(f"--{name.replace('_', '-')} must be > 0 (got {getattr(args, name)})")
    if args.pretrain_steps is not None and args.pretrain_steps <= 0:
        raise AliseError(f"--pretrain-steps must be > 0 (got {args.pretrain_steps})")
    from alise.model.config import parse_overrides
    from alise.model.presets import preset

    pre = preset(args.preset)
    config = pre.config.replace(**parse_overrides(args.set))
    probe_cfg = probe_config(args, defaults=pre.protocol)
    min_clear = pre.downstream_min_clear if args.min_clear is None else args.min_clear
    if not 0.0 <= min_clear <= 1.0:
        raise AliseError(f"--min-clear must be in [0, 1] (got {min_clear})")
    if probe_cfg.crop % config.multiple:
        raise AliseError(f"--crop {probe_cfg.crop} must be a multiple of {config.multiple}")
    check_output(args.out, args.overwrite)

    from alise.commands.probe import build_runs
    from alise.compare import Task, model_entry, render_markdown, run_model
    from alise.compare.runners import REGISTRY
    from alise.data import open_sources, sample_clear_pixels
    from alise.downstream.probe import LabelSpace
    from alise.metrics import mean_std, metrics_from_confusion
    from alise.normalise import NormStats
    import numpy as np

    sources = open_sources(args.data, start=args.start, end=args.end, **input_options(args))
    labels = LabelSpace.read(sources, "compare")
    todo = needs_pretraining(kinds, dirs)
    if todo and args.pretrain_steps is None:
        from alise.train.run import time_one_step

        sec = time_one_step(sources, config, crop=probe_cfg.crop, seed=args.seed)
        raise AliseError(f"{' and '.join(todo)} would be pre-trained here ({', '.join(f'{k}' for k in todo)} "
                         f"configuration: one step measured {sec:.1f} s on this machine, so 200 steps ≈ "
                         f"{200 * sec * len(todo) / 60:.0f} min): give --pretrain-steps N, or a pre-trained model "
                         "with --model-dir alise=DIR|builtin ubarn=DIR")
    runs = build_runs(sources, "auto", folds=args.folds, block=args.block, seed=args.seed, repeats=args.repeats,
                      crop=probe_cfg.crop)
    data_norm = NormStats.from_samples(sample_clear_pixels(sources, 100_000, args.seed))
    progress = not args.no_progress and (args.progress or sys.stderr.isatty())
    task = Task(sources, labels, runs, probe_cfg, data_norm, config, progress=progress, min_clear=min_clear)
    data_text = ", ".join(Path(d).name for d in args.data)
    log = lambda msg: print(f"alise compare: {msg}", file=sys.stderr)  # noqa: E731
    pretraining: dict[str, str] = {}
    pretrain_runs: dict[str, str] = {}

    with atomic_dir(args.out, overwrite=args.overwrite) as tmp:
        if any(REGISTRY[k].pretrained == "alise" or k == "alise-fs" for k in kinds):
            task.alise, pretraining["alise"] = _alise(args, pre, dirs, config, probe_cfg.crop, tmp, data_text, log,
                                                      pretrain_runs, kinds, progress, data_norm)
        if any(REGISTRY[k].pretrained == "ubarn" for k in kinds):
            task.ubarn, pretraining["ubarn"] = _ubarn(args, pre, dirs, config, probe_cfg.crop, sources, tmp, data_text,
                                                      log, pretrain_runs, progress, data_norm)
        entries = []
        for kind in kinds:
            log(f"{kind}: training on {len(runs)} run(s)")
            mr = run_model(kind, task)
            summary = {k: mean_std([res.metrics[k] for _, res in mr.results]) for k in ("macro_f1", "overall_accuracy", "miou")}
            cm = sum(np.asarray(res.metrics["confusion"]) for _, res in mr.results)
            from alise.commands.probe import run_record

            report = {"task": "segmentation", "model": kind, "row": REGISTRY[kind].row,
                      "pretraining": _pt_text(kind, pretraining), "trainable_parameters": mr.trainable_parameters,
                      "details": mr.details, "probe_config": {**probe_cfg.to_dict(), "mode": REGISTRY[kind].mode},
                      "num_classes": labels.num_classes, "ignore": list(labels.ignore),
                      "class_names": labels.class_names, "macro_f1": summary["macro_f1"]["mean"], "summary": summary,
                      "pooled_test": metrics_from_confusion(cm, ignore=labels.ignore, class_names=labels.class_names),
                      "runs": [run_record(r, res) for r, res in mr.results]}
            (tmp / kind).mkdir()
            (tmp / kind / "metrics.json").write_text(json.dumps(report, indent=2, default=_json) + "\n")
            stops = sorted({res.fit.stopped for _, res in mr.results})
            details = {**mr.details, "solver": mr.results[0][1].fit.solver, "stopped": ", ".join(stops)}
            entries.append(model_entry(kind, report["pretraining"], mr.trainable_parameters, summary["macro_f1"],
                                       f"{kind}/metrics.json", details))
            log(f"{kind}: macro-F1 {summary['macro_f1']['mean']:.4f} ± {summary['macro_f1']['std']:.4f} "
                f"({details['solver']}, {details['stopped']})")
        split = runs[0].split
        report = {"task": "segmentation", "metric": "macro_f1",
                  "metric_name": "macro-F1, background/void ignored", "data": [str(d) for d in args.data],
                  "n_series": len(sources), "num_classes": labels.num_classes, "ignore": list(labels.ignore),
                  "class_names": labels.class_names, "split": split, "n_runs": len(runs),
                  "split_text": _split_text(split), "preset": pre.name,
                  "protocol": {**probe_cfg.to_dict(), "min_clear_from_scratch": min_clear},
                  "protocol_text": _protocol_text(probe_cfg, pre.name, min_clear),
                  "architecture_overrides": parse_overrides(args.set), "pretraining_runs": pretrain_runs,
                  "models": entries, "command": "alise compare " + " ".join(sys.argv[2:] if sys.argv[1:2] == ["compare"]
                                                                          else sys.argv[1:])}
        (tmp / "comparison.json").write_text(json.dumps(report, indent=2, default=_json) + "\n")
        (tmp / "comparison.md").write_text(render_markdown(report))
    print(render_markdown(report))
    return 0


def _protocol_text(cfg, preset_name: str = "paper", min_clear: float = 0.0) -> str:
    solver = {"auto": "L-BFGS (or Adam over pixels for large tables)", "lbfgs": "L-BFGS", "adam": "Adam over pixels",
              "paper": "the paper's Adam on tiles"}[cfg.solver]
    dates = "every date" if min_clear <= 0 else f"the dates ≥ {min_clear:.0%} clear"
    return (f"preset {preset_name}; frozen heads: {solver}, C picked on validation from "
            f"{', '.join(f'{c:g}' for c in cfg.Cs)} (Adam over pixels: {cfg.steps} steps, patience "
            f"{cfg.patience_steps}); end to end: Adam lr {cfg.lr or 1e-4:g}, ≤ {cfg.epochs} epochs of ≥ "
            f"{cfg.min_steps_per_epoch} steps, patience {cfg.patience} epochs, crop {cfg.crop}, models trained "
            f"from scratch on {dates}; seed {cfg.seed}")


def _json(o):
    import numpy as np

    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.integer, np.floating)):
        return o.item()
    return str(o)


def _pt_text(kind: str, pretraining: dict) -> str:
    from alise.compare.runners import REGISTRY

    need = REGISTRY[kind].pretrained
    if need in ("alise", "ubarn"):
        return pretraining[need]
    if need == "presto":
        return "worldwide (Presto's published weights)"
    return "✗"


def _split_text(split: dict) -> str:
    if split.get("method") == "pastis_folds":
        return "PASTIS folds (train {train} / val {val} / test {test}, first run)".format(**split)
    if split.get("method") == "spatial_block":
        px = split.get("pixels", {})
        return (f"spatial blocks of {split.get('block')} px (train/val/test pixels "
                f"{px.get('train')}/{px.get('val')}/{px.get('test')}, first run)")
    return str(split.get("method", "?"))


def _alise(args, pre, dirs, config, crop, tmp, data_text, log, pretrain_runs, kinds, progress, data_norm):
    """The ALISE model: loaded from --model-dir, or pre-trained here with the 'alise pretrain' job."""
    from alise.compare.runners import REGISTRY
    from alise.model.io import load_model

    if "alise" in dirs:
        model, info = load_model(None if dirs["alise"] == "builtin" else dirs["alise"])
        return model, f"given: {info['name']}"
    if not any(REGISTRY[k].pretrained == "alise" for k in kinds):  # alise-fs: architecture + normalisation only
        from alise.model.network import ALISE

        return ALISE(config, data_norm), "✗"
    from alise.train.run import PretrainJob, run_pretraining

    log(f"pre-training ALISE for {args.pretrain_steps} steps on {data_text}")
    out = tmp / "pretrain" / "alise"
    job = PretrainJob(data=list(args.data), out=str(out), config=config, max_steps=args.pretrain_steps,
                      samples_per_epoch=args.samples_per_epoch, crop=crop, seed=args.seed, progress=progress,
                      keep_checkpoints=1, lr=pre.lr, min_clear=pre.min_clear, preset=pre.name,
                      **input_options(args))
    record = run_pretraining(job)
    pretrain_runs["alise"] = (f"pretrain/alise: {record['steps_done']} steps, {record['epochs_done']} epochs, "
                              f"selected epoch {record['selected_epoch']}, {record['duration_s']:.0f} s")
    from alise.model.io import load

    return load(out / "model"), f"pre-trained here for {args.pretrain_steps} steps on {data_text}"


def _ubarn(args, pre, dirs, config, crop, sources, tmp, data_text, log, pretrain_runs, progress, data_norm):
    """The U-BARN model: loaded from --model-dir, or pre-trained here (masked acquisitions)."""
    from types import SimpleNamespace

    from alise.baselines.ubarn import load_ubarn, pretrain_ubarn
    from alise.train.run import split_validation

    if "ubarn" in dirs:
        return load_ubarn(dirs["ubarn"]), f"given: {dirs['ubarn']}"
    log(f"pre-training U-BARN for {args.pretrain_steps} steps on {data_text}")
    train, val, _ = split_validation(SimpleNamespace(val=None, seed=args.seed), sources)
    model, record = pretrain_ubarn(train, data_norm, config, steps=args.pretrain_steps, crop=crop,
                                   samples_per_epoch=args.samples_per_epoch, seed=args.seed, val_sources=val,
                                   progress=progress, lr=pre.lr, min_clear=pre.min_clear)
    model.save(tmp / "pretrain" / "ubarn" / "model", record={k: v for k, v in record.items() if k != "history"})
    (tmp / "pretrain" / "ubarn" / "history.json").write_text(__import__("json").dumps(record["history"], indent=1))
    pretrain_runs["ubarn"] = (f"pretrain/ubarn: {record['steps']} steps, {record['epochs']} epochs, "
                              f"best val loss {record['best_val_loss']:.4f}")
    return model, f"pre-trained here for {args.pretrain_steps} steps on {data_text}"
