"""Is a pre-trained encoder worth more than its random twin? Linear probing with controls, JSON.

For each MODEL (a model directory, or ``builtin``) on the labelled DATA, with the converging probe
of ``alise probe`` (``lbfgs`` solver, spatially blocked splits, ``--seeds`` split seeds):

* ``lp``: macro-F1 of the model's frozen embeddings;
* ``random_twin`` / ``random_twin_calibrated``: the same architecture freshly initialised, with its
  normalisation layers, same input statistics; BatchNorm as initialised / with running statistics
  estimated on DATA (:mod:`alise.downstream.controls`);
* ``sklearn``: scikit-learn ``LogisticRegression`` on the same standardised features, same split,
  C from the same grid picked on the same validation pixels — a reference the probe must agree with;
* ``grid_share``: share of the embedding's spatial power at the Nyquist frequency
  (:func:`alise.metrics.nyquist_share`; checkerboard artefacts), for the model and its twin;
* paired differences per seed (model − the stronger twin, model − GF-LP).

Model-free references on the same splits: GF-LP (gap-filled 5-day grid), monthly medians, Presto.
With ``--change ROOT --years Y1,Y2``: Eq. 12 change ROC-AUC of the model, its twin and GF on every
site of ROOT (e.g. ``alise synth`` sites with ``change/Y1_Y2.tif``).

    python benchmarks/representation.py builtin ../shared/data/worldcereal-flanders-2018 --seeds 5
    python benchmarks/representation.py models/malice-s2 ../shared/data/worldcereal-flanders-2018
    python benchmarks/representation.py runs/a/model runs/b/model DATA --lp-only --no-references --min-clear 0.5
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings


def sklearn_reference(probe, run, labels, Cs) -> dict:
    """Test macro-F1 of scikit-learn's LogisticRegression on the probe's own pixel tables."""
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from alise.metrics import segmentation_metrics

    (xt, yt), (xv, yv), (xs, ys) = (probe._table(items) for items in (run.train, run.val, run.test))
    scaler = StandardScaler().fit(xt.double().numpy())
    tr, va, te = (scaler.transform(x.double().numpy()) for x in (xt, xv, xs))

    def f1(y, p):
        return segmentation_metrics(y, p, labels.num_classes, ignore=labels.ignore)["macro_f1"]

    best = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for c in sorted(Cs):
            clf = LogisticRegression(C=c, max_iter=5000).fit(tr, yt.numpy())
            s = f1(yv.numpy(), clf.predict(va))
            if best is None or s > best[0]:
                best = (s, c, clf)
    return {"macro_f1": f1(ys.numpy(), best[2].predict(te)), "C": best[1]}


def probe_features(name, parts_fn, sources, labels, runs, cfg, with_sklearn=False) -> dict:
    """Macro-F1 per run of a frozen feature source (and optionally the sklearn reference)."""
    import torch

    from alise.downstream.probe import Probe
    from alise.metrics import mean_std

    out = {"runs": []}
    for r in runs:
        torch.manual_seed(cfg.seed)
        probe = Probe(sources, labels, cfg, parts_fn())
        res = probe.fit(r, progress=False)
        row = {"run": r.name, "macro_f1": res.metrics["macro_f1"], "C": res.fit.C, "stopped": res.fit.stopped,
               "iterations": res.fit.steps}
        if with_sklearn:
            row["sklearn"] = sklearn_reference(probe, r, labels, cfg.Cs)
        out["runs"].append(row)
    out["macro_f1"] = mean_std([r["macro_f1"] for r in out["runs"]])
    if with_sklearn:
        out["sklearn_macro_f1"] = mean_std([r["sklearn"]["macro_f1"] for r in out["runs"]])
    print(f"{name}: macro-F1 {out['macro_f1']['mean']:.3f} ± {out['macro_f1']['std']:.3f}", file=sys.stderr)
    return out


def change_auc(model, root, years) -> dict:
    """Eq. 12 ROC-AUC pooled over the sites of ``root`` (model) and GF, for the two years."""
    import numpy as np

    from alise.data import open_source
    from alise.downstream.change import alise_change_map, gf_change_map
    from alise.metrics import change_detection_metrics
    from pathlib import Path

    y1, y2 = years
    scores, gf, truths = [], [], []
    for site in sorted(p for p in Path(root).iterdir() if (p / "change" / f"{y1}_{y2}.tif").is_file()):
        a = open_source(site, start=f"{y1}-01-01", end=f"{y1}-12-31")
        b = open_source(site, start=f"{y2}-01-01", end=f"{y2}-12-31")
        sa, sb = a.read().to_sits(model.norm), b.read().to_sits(model.norm)
        scores.append(alise_change_map(model, sa, sb).ravel())
        gf.append(gf_change_map(sa, sb).ravel())
        truths.append(a.change_mask(y1, y2).ravel())
    truth = np.concatenate(truths)
    valid = truth != 255
    res = {}
    for key, s in (("model", scores), ("gf", gf)):
        flat = np.concatenate(s)
        ok = valid & np.isfinite(flat)
        res[key] = change_detection_metrics(flat, np.where(truth == 1, 1, 0), valid=ok)["auc"]
    res["sites"] = len(truths)
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", metavar="MODEL", help="model directories or 'builtin'; the last argument is DATA")
    p.add_argument("--seeds", type=int, default=5, help="split seeds 0..N-1 (default 5)")
    p.add_argument("--block", type=int, default=16)
    p.add_argument("--no-references", action="store_true", help="skip GF-LP, monthly medians and Presto")
    p.add_argument("--change", default=None, metavar="ROOT", help="sites with change/Y1_Y2.tif truth")
    p.add_argument("--years", default="2018,2019")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--lp-only", action="store_true",
                   help="only each model's own probe (no twins, no sklearn reference): ablation rows")
    p.add_argument("--min-clear", type=float, default=None,
                   help="encode only dates at least this clear (default: each model's input.min_clear)")
    a = p.parse_args(argv)
    *model_args, data = a.models
    if not model_args:
        p.error("give at least one MODEL and the DATA")

    import numpy as np
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    from alise.commands.probe import build_runs
    from alise.compare.runners import REGISTRY, Task
    from alise.data import open_sources
    from alise.downstream.controls import random_twin
    from alise.downstream.features import FeatureCache, SITSStore
    from alise.downstream.probe import LabelSpace, ProbeConfig, alise_parts
    from alise.metrics import nyquist_share
    from alise.model.io import load_model

    started = time.time()
    sources = open_sources([data])
    labels = LabelSpace.read(sources)
    runs = build_runs(sources, "blocks", block=a.block, seed=0, repeats=a.seeds)
    cfg = ProbeConfig()
    years = tuple(int(y) for y in a.years.split(","))
    out = {"benchmark": "representation", "data": data, "seeds": a.seeds, "block": a.block,
           "probe": "lbfgs logistic regression, standardised features, C in "
                    f"{list(cfg.Cs)} picked on validation macro-F1", "models": {}}
    first_norm = None
    for m in model_args:
        model, info = load_model(None if m == "builtin" else m)
        if a.min_clear is not None:
            model.input_min_clear = a.min_clear
        first_norm = first_norm or model.norm
        store = SITSStore(sources, model.norm)
        twin = random_twin(model, seed=0)
        twins = () if a.lp_only else (
            ("random_twin", twin), ("random_twin_calibrated", random_twin(model, sources, seed=0, calibrate=True)))
        entry = {"name": info["name"], "sha256": info["sha256"], "input_min_clear": model.input_min_clear}
        for key, net in (("lp", model), *twins):
            cache = FeatureCache(net, store)
            entry[key] = probe_features(f"{info['name']} {key}", lambda: alise_parts(net, "lp", labels.num_classes,
                                                                                     store, cache),
                                        sources, labels, runs, cfg, with_sklearn=not a.lp_only)
            entry[key]["grid_share"] = nyquist_share(cache.get(0))
        if a.change and not a.lp_only:
            entry["change_auc"] = {"model": change_auc(model, a.change, years),
                                   "random_twin": change_auc(twin, a.change, years)["model"]}
        out["models"][m] = entry
    if not a.no_references:
        task = Task(sources, labels, runs, cfg, first_norm)
        for kind in ("gf-lp", "median-lp", "presto-lp"):
            out[kind] = probe_features(kind, lambda k=kind: REGISTRY[k].build(task), sources, labels, runs, cfg)
    for m, entry in out["models"].items():
        lp = np.array(entry["lp"]["macro_f1"]["values"])
        if "gf-lp" in out:
            entry["minus_gf_lp"] = [round(float(v), 4) for v in lp - np.array(out["gf-lp"]["macro_f1"]["values"])]
        if a.lp_only:
            continue
        stronger = max(("random_twin", "random_twin_calibrated"), key=lambda k: entry[k]["macro_f1"]["mean"])
        entry["stronger_twin"] = stronger
        entry["minus_random_twin"] = [round(float(v), 4) for v in lp - np.array(entry[stronger]["macro_f1"]["values"])]
    out["seconds"] = round(time.time() - started, 1)
    print(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
