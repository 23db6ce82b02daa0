"""``alise probe``: train and evaluate a per-pixel segmentation head on ALISE ([P] §IV-B-1, Tables II–III)."""

from __future__ import annotations

import argparse

from alise.commands._protocol import add_protocol_arguments

HELP = "segmentation by linear probing (lp), fine-tuning (ft) or from scratch (fs); macro-F1 + confusion"
DESCRIPTION = """\
Train a per-pixel linear head (Linear(n_q*d_model -> K)) on the aligned representation and report
the macro-F1 over the labelled classes (background/void ignored), per-class F1, OA, mIoU and the
confusion matrix ([P] Tables II-III).

  lp  frozen pre-trained encoder; embeddings computed once, the head trains on them (ALISE^LP)
  ft  encoder initialised from MODEL and trained end to end with the head (ALISE^FT)
  fs  same architecture from random weights; MODEL only gives config + normalisation (ALISE^FS)

Protocol: Adam lr 1e-4, ReduceLROnPlateau(patience 10, factor 0.05) on the validation loss, best
validation macro-F1 kept (early stop after --patience epochs), random 64x64 training crops.
Splits: PASTIS folds (train 1-3 / val 4 / test 5; --folds all = the 5 rotations, mean +- std);
a folder of dates with labels.tif: whole 16x16-pixel blocks go to train/val/test (--block),
per-pixel random splits only with --random-split; --split sits splits whole series.
--scarcity N: N labelled training series per run, --subsets random draws (Table III).

Writes OUT/metrics.json, OUT/confusion.png and OUT/prediction.tif (class map on the input grid;
OUT/predictions/NAME.tif for several series).

example:
  alise probe my-model /data/worldcereal-flanders-2018 --mode lp --out probe-lp
  alise probe my-model PASTIS/ --mode ft --folds all --out pastis-ft
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="model directory (config.json + model.safetensors)")
    p.add_argument("data", metavar="DATA", nargs="+", help="labelled series: site folders, PASTIS root, roots of several")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--mode", default="lp", metavar="lp|ft|fs", help="lp (default), ft or fs")
    p.add_argument("--batch-size", type=int, default=2, help="training crops per step (default 2)")
    p.add_argument("--split", default="auto", metavar="auto|folds|blocks|sits|pixels",
                   help="auto: PASTIS folds if every series has one, else spatial blocks")
    p.add_argument("--random-split", action="store_true", help="per-pixel random split (overestimates accuracy)")
    p.add_argument("--fractions", default="0.6,0.2,0.2", help="train,val,test fractions (blocks, sits, pixels)")
    p.add_argument("--scarcity", type=int, default=None, metavar="N", help="N labelled training series per run")
    p.add_argument("--subsets", type=int, default=5, help="random training subsets per run with --scarcity (5)")
    p.add_argument("--eval-crop", default=None, metavar="centre|full",
                   help="evaluate centre crop-size windows (PASTIS default) or full series (default otherwise)")
    p.add_argument("--cache-dir", default=None, help="lp: keep embeddings as .npy memory maps here instead of RAM")
    add_protocol_arguments(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    import numpy as np

    from alise.downstream.probe import ProbeConfig
    from alise.errors import AliseError
    from alise.outputs import atomic_dir, check_output

    cfg = ProbeConfig(mode=str(args.mode).lower(), epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                      patience=args.patience, crop=args.crop, seed=args.seed)
    split = "pixels" if args.random_split else str(args.split).lower()
    if split not in ("auto", "folds", "blocks", "sits", "pixels"):
        raise AliseError(f"unknown --split {args.split!r}: choose auto, folds, blocks, sits or pixels")
    if args.eval_crop not in (None, "centre", "center", "full"):
        raise AliseError(f"unknown --eval-crop {args.eval_crop!r}: choose centre or full")
    fractions = _fractions(args.fractions)
    for name in ("block", "repeats", "subsets"):
        if getattr(args, name) <= 0:
            raise AliseError(f"--{name} must be > 0 (got {getattr(args, name)})")
    if args.scarcity is not None and args.scarcity <= 0:
        raise AliseError(f"--scarcity must be a positive number of series (got {args.scarcity})")
    check_output(args.out, args.overwrite)

    from alise.downstream import open_inputs
    from alise.downstream.features import FeatureCache, SITSStore
    from alise.downstream.probe import LabelSpace, Probe
    from alise.metrics import mean_std, metrics_from_confusion
    from alise.model_io import load, read_metadata

    model_id = read_metadata(args.model).get("weights", {}).get("sha256")
    model = load(args.model)
    sources = open_inputs(args.data, start=args.start, end=args.end, model=model)
    labels = LabelSpace.read(sources, "probe")
    runs = build_runs(sources, split, folds=args.folds, block=args.block, fractions=fractions, seed=args.seed,
                      repeats=args.repeats, crop=cfg.crop, eval_crop=args.eval_crop,
                      scarcity=args.scarcity, subsets=args.subsets)

    store = SITSStore(sources, model.norm)
    cache = FeatureCache(model, store, cache_dir=args.cache_dir) if cfg.mode == "lp" else None
    results, first = [], None
    for k, r in enumerate(runs):
        print(f"alise probe: run {k + 1}/{len(runs)} {r.name} ({cfg.mode})", file=sys.stderr)
        probe = Probe(model, store, labels, cfg, cache=cache)
        res = probe.fit(r)
        results.append((r, res))
        first = first or probe
    cm = sum(np.asarray(res.metrics["confusion"]) for _, res in results)
    pooled = metrics_from_confusion(cm, ignore=labels.ignore, class_names=labels.class_names)
    summary = {key: mean_std([res.metrics[key] for _, res in results]) for key in ("macro_f1", "overall_accuracy", "miou")}
    report = {
        "task": "segmentation", "mode": cfg.mode, "model": str(args.model), "model_id": model_id,
        "model_config": model.config.to_dict(), "probe_config": cfg.__dict__, "data": [str(p) for p in args.data],
        "n_series": len(sources), "num_classes": labels.num_classes, "ignore": list(labels.ignore),
        "class_names": labels.class_names, "trainable_parameters": results[0][1].trainable_parameters,
        "macro_f1": summary["macro_f1"]["mean"], "summary": summary, "pooled_test": pooled,
        "runs": [{"name": r.name, "split": r.split, "best_epoch": res.best_epoch, **{
            k: res.metrics[k] for k in ("macro_f1", "overall_accuracy", "miou", "per_class_f1", "per_class_iou",
                                        "n_pixels", "confusion")}, "history": res.history} for r, res in results],
    }
    with atomic_dir(args.out, overwrite=args.overwrite) as tmp:
        (tmp / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
        from alise.plots import plot_confusion

        plot_confusion(cm, labels.class_names, tmp / "confusion.png",
                       title=f"ALISE {cfg.mode.upper()} test confusion (rows: truth)")
        _write_predictions(first, results[0][0], sources, tmp)
    s = summary["macro_f1"]
    print(f"alise probe: {cfg.mode} macro-F1 {s['mean']:.4f} ± {s['std']:.4f} over {s['n']} run(s) → {args.out}",
          file=sys.stderr)
    return 0


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
