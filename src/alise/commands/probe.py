"""``alise probe``: train and evaluate a per-pixel segmentation head on ALISE ([P] §IV-B-1, Tables II–III)."""

from __future__ import annotations

import argparse

from alise.commands._protocol import SOLVER_HELP, add_protocol_arguments, probe_config
from alise.commands._inputs import add_input_arguments, input_options, input_paths, require_inputs
from alise.commands._model import add_min_clear_argument, check_min_clear, input_min_clear, resolve_model_argument

HELP = "segmentation by linear probing (lp), fine-tuning (ft) or from scratch (fs); macro-F1 + confusion"
DESCRIPTION = """\
Train a per-pixel linear head (Linear(n_q*d_model -> K)) on the aligned representation and report
the macro-F1 over the labelled classes (background/void ignored), per-class F1, OA, mIoU and the
confusion matrix ([P] Tables II-III).

  lp  frozen pre-trained encoder; embeddings computed once, the head fitted on them (ALISE^LP)
  ft  encoder initialised from MODEL and trained end to end with the head (ALISE^FT)
  fs  same architecture from random weights; MODEL only gives config + normalisation (ALISE^FS)

solvers:
""" + SOLVER_HELP + """

Splits: PASTIS folds (train 1-3 / val 4 / test 5; --folds all = the 5 rotations, mean +- std);
a folder of dates with labels.tif: whole 16x16-pixel blocks go to train/val/test (--block), with
--repeats split seeds (default 3; mean +- std); per-pixel random splits only with --random-split;
--split sits splits whole series. --scarcity N: N labelled training series per run, --subsets
random draws (Table III).

Writes OUT/metrics.json (per run: solver, how it stopped, selected C or step, loss curve),
OUT/fit.png (loss curves), OUT/confusion.png, OUT/head.safetensors (the first run's head with its
feature standardisation) and OUT/prediction.tif (class map on the input grid;
OUT/predictions/NAME.tif for several series).

example:
  alise probe my-model /data/worldcereal-flanders-2018 --mode lp --out probe-lp
  alise probe my-model PASTIS/ --mode lp --solver paper --folds all --out pastis-lp
  alise probe my-model PASTIS/ --mode ft --folds all --out pastis-ft
  alise probe /data/worldcereal-flanders-2018 --embedding emb.tif --out probe-stored   (features alise encode wrote)
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", nargs="?", default=None,
                   help="model directory (config.json + model.safetensors); default: the built-in model")
    p.add_argument("data", metavar="DATA", nargs="*",
                   help="labelled series: site folders, PASTIS root, roots of several (or --files LIST.csv)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--mode", default="lp", metavar="lp|ft|fs", help="lp (default), ft or fs")
    p.add_argument("--split", default="auto", metavar="auto|folds|blocks|sits|pixels",
                   help="auto: PASTIS folds if every series has one, else spatial blocks")
    p.add_argument("--random-split", action="store_true", help="per-pixel random split (overestimates accuracy)")
    p.add_argument("--fractions", default="0.6,0.2,0.2", help="train,val,test fractions (blocks, sits, pixels)")
    p.add_argument("--scarcity", type=int, default=None, metavar="N", help="N labelled training series per run")
    p.add_argument("--subsets", type=int, default=5, help="random training subsets per run with --scarcity (5)")
    p.add_argument("--eval-crop", default=None, metavar="centre|full",
                   help="evaluate centre crop-size windows (PASTIS default) or full series (default otherwise)")
    p.add_argument("--cache-dir", default=None, help="lp: keep embeddings as .npy memory maps here instead of RAM")
    p.add_argument("--embedding", nargs="+", default=None, metavar="EMB",
                   help="lp on stored features: the embedding raster(s) alise encode wrote for DATA (one per "
                        "series, in order; COG or zarr, any dtype) instead of encoding DATA with a MODEL")
    add_min_clear_argument(p)
    add_input_arguments(p)
    p.add_argument("--random-init", nargs="?", const="fresh", default=None, metavar="fresh|calibrated",
                   help="probe MODEL's random twin instead (same architecture and normalisation layers, fresh "
                        "weights under --seed; 'calibrated': BatchNorm statistics estimated on DATA): the control "
                        "every LP figure needs (docs/downstream.md)")
    add_protocol_arguments(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from alise.errors import AliseError
    from alise.outputs import check_output

    cfg = probe_config(args, mode=str(args.mode).lower())
    split = "pixels" if args.random_split else str(args.split).lower()
    if split not in ("auto", "folds", "blocks", "sits", "pixels"):
        raise AliseError(f"unknown --split {args.split!r}: choose auto, folds, blocks, sits or pixels")
    if args.eval_crop not in (None, "centre", "center", "full"):
        raise AliseError(f"unknown --eval-crop {args.eval_crop!r}: choose centre or full")
    fractions = _fractions(args.fractions)
    for name in ("block", "repeats", "subsets"):
        if getattr(args, name) <= 0:
            raise AliseError(f"--{name} must be > 0 (got {getattr(args, name)})")
    check_min_clear(args)
    if args.scarcity is not None and args.scarcity <= 0:
        raise AliseError(f"--scarcity must be a positive number of series (got {args.scarcity})")
    model_dir, args.data = resolve_model_argument(args.model, input_paths(args, *args.data))
    require_inputs(args.data, args.model)
    if args.embedding is not None:
        _check_stored_options(args, cfg, model_dir)
    check_output(args.out, args.overwrite)

    if args.embedding is not None:
        return _probe_stored(args, cfg, split, fractions)

    from alise.downstream import open_inputs
    from alise.downstream.features import FeatureCache, SITSStore
    from alise.downstream.probe import LabelSpace, alise_parts
    from alise.model.io import load_model

    model, model_info = load_model(model_dir)
    sources = open_inputs(args.data, start=args.start, end=args.end, model=model, **input_options(args))
    if args.random_init:
        from alise.downstream.controls import random_twin

        if args.random_init not in ("fresh", "calibrated"):
            raise AliseError(f"--random-init {args.random_init!r}: choose fresh or calibrated")
        model = random_twin(model, sources, seed=args.seed, calibrate=args.random_init == "calibrated")
        model_info = {**model_info, "name": f"random twin ({args.random_init}) of {model_info['name']} "
                                            f"(seed {args.seed})"}
    labels = LabelSpace.read(sources, "probe")
    runs = _runs(args, cfg, sources, split, fractions)
    store = SITSStore(sources, model.norm)
    min_clear = input_min_clear(args, model)
    cache = FeatureCache(model, store, cache_dir=args.cache_dir, min_clear=min_clear) if cfg.mode == "lp" else None
    return _fit_and_report(args, cfg, sources, labels, runs, model_info, model.config.to_dict(), min_clear,
                           lambda: alise_parts(model, cfg.mode, labels.num_classes, store, cache, min_clear))


def _runs(args, cfg, sources, split, fractions):
    return build_runs(sources, split, folds=args.folds, block=args.block, fractions=fractions, seed=args.seed,
                      repeats=args.repeats, crop=cfg.crop, eval_crop=args.eval_crop,
                      scarcity=args.scarcity, subsets=args.subsets)


def _check_stored_options(args, cfg, model_dir) -> None:
    """``--embedding``: the features are given, so no MODEL, no control, no end-to-end mode."""
    from alise.errors import AliseError

    if model_dir is not None:
        raise AliseError(f"--embedding gives the features: pass the labelled DATA only, not the model {model_dir}")
    if cfg.mode != "lp":
        raise AliseError(f"--mode {cfg.mode} trains the encoder: with --embedding (fixed features) only lp")
    if args.random_init:
        raise AliseError("--random-init needs the model: encode DATA with the random twin, or probe MODEL DATA "
                         "--random-init")


def _probe_stored(args, cfg, split, fractions) -> int:
    """``alise probe DATA --embedding EMB``: ALISE^LP on features read from embedding rasters."""
    import sys

    from alise.downstream import open_inputs
    from alise.downstream.features import StoredEmbedding
    from alise.downstream.heads import LinearProbe
    from alise.downstream.probe import LabelSpace, ProbeParts

    sources = open_inputs(args.data, start=args.start, end=args.end, **input_options(args))
    stored = StoredEmbedding(args.embedding, sources, cache_dir=args.cache_dir)
    labels = LabelSpace.read(sources, "probe")
    runs = _runs(args, cfg, sources, split, fractions)
    names = sorted({str(e.attrs.get("ALISE_MODEL", "unnamed model")) for e in stored.embeddings})
    info = {"name": f"stored embedding of {', '.join(names)}", "path": ",".join(map(str, stored.paths)),
            "sha256": None}  # the model directory's checksum is not known from its outputs
    config = {"n_q": stored.n_q, "d_model": stored.n_d, "embedding": [str(p) for p in stored.paths],
              "ALISE_MODEL_SHA256": [e.attrs.get("ALISE_MODEL_SHA256") for e in stored.embeddings]}
    code = _fit_and_report(args, cfg, sources, labels, runs, info, config, None,
                           lambda: ProbeParts(head=LinearProbe(stored.n_q, stored.n_d, labels.num_classes),
                                              features=stored))
    filled = sum(stored.n_filled.values())
    if filled:
        print(f"alise probe: {filled} pixel(s) without a clear observation (NaN in the embedding) were given "
              "their series' mean feature", file=sys.stderr)
    return code


def _fit_and_report(args, cfg, sources, labels, runs, model_info, model_config, min_clear, parts) -> int:
    """Fit one probe per run (``parts()``: a fresh :class:`ProbeParts`), write OUT, print the summary."""
    import json
    import sys

    import numpy as np
    import torch

    from alise.downstream.probe import Probe
    from alise.metrics import mean_std, metrics_from_confusion
    from alise.outputs import atomic_dir

    print(f"alise probe: model {model_info['name']}, {len(runs)} run(s)", file=sys.stderr)
    results, first = [], None
    progress = not args.no_progress and sys.stderr.isatty()
    for k, r in enumerate(runs):
        torch.manual_seed(cfg.seed)
        probe = Probe(sources, labels, cfg, parts())
        res = probe.fit(r, progress=progress)
        print(f"alise probe: run {k + 1}/{len(runs)} {r.name} ({cfg.mode}, {res.fit.solver}, {res.fit.stopped} "
              f"after {res.fit.steps} {'iterations' if res.fit.solver == 'lbfgs' else 'steps'}"
              f"{f', C {res.fit.C:g}' if res.fit.C is not None else ''}): macro-F1 {res.metrics['macro_f1']:.4f}",
              file=sys.stderr)
        results.append((r, res))
        first = first or probe
    cm = sum(np.asarray(res.metrics["confusion"]) for _, res in results)
    pooled = metrics_from_confusion(cm, ignore=labels.ignore, class_names=labels.class_names)
    summary = {key: mean_std([res.metrics[key] for _, res in results]) for key in ("macro_f1", "overall_accuracy", "miou")}
    report = {
        "task": "segmentation", "mode": cfg.mode, "model": model_info["name"], "model_dir": model_info["path"],
        "random_init": args.random_init, "min_clear": min_clear,
        "model_id": model_info["sha256"], "model_config": model_config, "probe_config": cfg.to_dict(),
        "data": [str(p) for p in args.data], "n_series": len(sources), "num_classes": labels.num_classes,
        "ignore": list(labels.ignore), "class_names": labels.class_names,
        "trainable_parameters": results[0][1].trainable_parameters,
        "macro_f1": summary["macro_f1"]["mean"], "summary": summary, "pooled_test": pooled,
        "runs": [run_record(r, res) for r, res in results],
    }
    with atomic_dir(args.out, overwrite=args.overwrite) as tmp:
        (tmp / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
        from alise.plots import plot_confusion, plot_probe_fit

        plot_confusion(cm, labels.class_names, tmp / "confusion.png",
                       title=f"ALISE {cfg.mode.upper()} test confusion (rows: truth)")
        plot_probe_fit([(r.name, res.fit) for r, res in results], tmp / "fit.png",
                       title=f"alise probe {cfg.mode}: fit of each run")
        if cfg.mode == "lp":
            _save_head(first.parts.head, tmp / "head.safetensors", labels, model_info)
        _write_predictions(first, results[0][0], sources, tmp)
    s = summary["macro_f1"]
    print(f"alise probe: {cfg.mode} macro-F1 {s['mean']:.4f} ± {s['std']:.4f} over {s['n']} run(s) → {args.out}",
          file=sys.stderr)
    return 0


def run_record(r, res) -> dict:
    """One run of ``metrics.json``: split, test metrics and how the fit went."""
    keys = ("macro_f1", "overall_accuracy", "miou", "per_class_f1", "per_class_iou", "n_pixels", "confusion")
    fit = res.fit.to_dict()
    return {"name": r.name, "split": r.split, **{k: res.metrics[k] for k in keys if k in res.metrics},
            "solver": fit["solver"], "stopped": fit["stopped"], "steps": fit["steps"],
            "selected_step": fit["selected_step"], "C": fit["C"], "grid": fit["grid"], "history": fit["history"]}


def _save_head(head, path, labels, model_info) -> None:
    """The fitted head with its standardisation, as safetensors (metadata: classes, model)."""
    import json

    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() if v.dtype != __import__("torch").bool else v.to(__import__("torch").uint8)
             for k, v in head.state_dict().items()}
    save_file(state, str(path), metadata={"class_names": json.dumps(labels.class_names),
                                          "ignore": json.dumps(list(labels.ignore)),
                                          "model": model_info["name"], "model_sha256": model_info["sha256"] or "",
                                          "layout": "logits = linear((features - standardise.mean) / "
                                                    "standardise.scale); features = embedding flattened "
                                                    "query-major (Q*D)"})


def _fractions(text: str) -> tuple[float, float, float]:
    from alise.errors import AliseError

    try:
        f = tuple(float(v) for v in str(text).split(","))
    except ValueError:
        f = ()
    if len(f) != 3 or min(f) < 0 or abs(sum(f) - 1) > 1e-6:
        raise AliseError(f"--fractions {text!r}: expected three numbers train,val,test summing to 1 (e.g. 0.6,0.2,0.2)")
    return f  # type: ignore[return-value]


def build_runs(sources, split: str, *, folds="1", block=16, fractions=(0.6, 0.2, 0.2), seed=0, repeats=1,
               crop=64, eval_crop=None, scarcity=None, subsets=5):
    """The train/val/test runs of a task (see the command description); each a :class:`Run`."""

    from alise.downstream.probe import Item, Run
    from alise.errors import AliseError
    from alise.splits import PASTIS_FOLDS, describe_split, random_pixel_split, scarcity_subsets, spatial_block_split

    has_folds = all(s.fold is not None for s in sources)
    if split == "auto":
        split = "folds" if has_folds else "blocks"
    centre = (eval_crop or ("centre" if split in ("folds", "sits") else "full")) in ("centre", "center")

    def full(i):
        g = sources[i].grid
        return (0, 0, g.height, g.width)

    def eval_window(i):
        g = sources[i].grid
        if not centre or (g.height <= crop and g.width <= crop):
            return full(i)
        h, w = min(crop, g.height), min(crop, g.width)
        return ((g.height - h) // 2, (g.width - w) // 2, h, w)

    def by_series(name, train_ids, val_ids, test_ids, desc):
        return Run(name, [Item(i, full(i)) for i in train_ids], [Item(i, eval_window(i)) for i in val_ids],
                   [Item(i, eval_window(i)) for i in test_ids], desc)

    runs = []
    if split == "folds":
        if not has_folds:
            missing = next(s for s in sources if s.fold is None)
            raise AliseError(f"{missing.path}: no PASTIS fold; use --split blocks (or sits) for these series")
        if str(folds).lower() == "all":
            rotations = list(range(5))
        elif str(folds) in ("1", "2", "3", "4", "5"):
            rotations = [int(folds) - 1]
        else:
            raise AliseError(f"--folds {folds!r}: expected 1-5 or all")
        for k in rotations:
            tr, va, te = PASTIS_FOLDS[k]
            ids = [[i for i, s in enumerate(sources) if s.fold in f] for f in (tr, va, te)]
            runs.append(by_series(f"folds{k + 1}", *ids, {"method": "pastis_folds", "train": tr, "val": [va[0]],
                                                          "test": [te[0]], "eval_crop": "centre" if centre else "full"}))
    elif split == "sits":
        if len(sources) < 3:
            raise AliseError(f"--split sits needs at least 3 series, got {len(sources)}: use --split blocks")
        for r in range(repeats):
            codes = random_pixel_split(1, len(sources), fractions, seed + r)[0]
            ids = [[i for i in range(len(sources)) if codes[i] == c] for c in (0, 1, 2)]
            runs.append(by_series(f"sits-seed{seed + r}", *ids, {"method": "random_sits", "seed": seed + r,
                                                                 "series": [len(x) for x in ids]}))
    elif split in ("blocks", "pixels"):
        for r in range(repeats):
            items = ([], [], [])
            descs = []
            for i, s in enumerate(sources):
                h, w = s.grid.height, s.grid.width
                sm = (spatial_block_split(h, w, block, fractions, seed + r + 7919 * i) if split == "blocks"
                      else random_pixel_split(h, w, fractions, seed + r + 7919 * i))
                for code in (0, 1, 2):
                    if (sm == code).any():
                        items[code].append(Item(i, full(i), sm == code))
                descs.append(describe_split(sm, block if split == "blocks" else None,
                                            "spatial_block" if split == "blocks" else "random_pixel"))
            desc = {"method": descs[0]["method"], "seed": seed + r, "block": descs[0]["block"],
                    "pixels": {k: int(sum(d["pixels"][k] for d in descs)) for k in ("train", "val", "test")}}
            runs.append(Run(f"{split}-seed{seed + r}", *items, desc))
    if scarcity is None:
        return runs
    out = []
    for k, base in enumerate(runs):
        ids = sorted({it.source for it in base.train})
        for j, subset in enumerate(scarcity_subsets(ids, scarcity, subsets, seed + k)):
            keep = set(subset)
            train = [it for it in base.train if it.source in keep]
            out.append(Run(f"{base.name}-scarce{scarcity}-{j + 1}", train, base.val, base.test,
                           {**base.split, "scarcity": scarcity, "subset": j + 1,
                            "train_series": [sources[i].name for i in subset]}))
    return out


def _write_predictions(probe, run, sources, out) -> None:
    """Class maps (uint8/uint16) of the first run's test series, on their grids."""
    import numpy as np

    from alise.outputs import write_geotiff

    ids = sorted({it.source for it in run.test})
    if len(sources) > 1:
        (out / "predictions").mkdir()
    for i in ids[:100]:
        pred = probe.predict(i)
        dtype = np.uint8 if probe.labels.num_classes <= 256 else np.uint16
        path = out / "prediction.tif" if len(sources) == 1 else out / "predictions" / f"{sources[i].name}.tif"
        write_geotiff(path, pred.astype(dtype), sources[i].grid, tags={"classes": ",".join(probe.labels.class_names)})
