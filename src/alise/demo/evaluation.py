"""Demo stages 5–6: segmentation by linear probing and change detection (see :mod:`alise.demo.pipeline`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from alise.errors import AliseError

if TYPE_CHECKING:
    from alise.demo.state import Demo


# ====================================================================== 5. segmentation
def _methods(demo: Demo) -> tuple[tuple[str, str], ...]:
    """``(key, name)`` of every feature source probed: the encoders of the demo, then GF."""
    return (*demo.method_names(" (LP)").items(), ("gf", "GF linear, 5-day grid (LP)"))


def _features(demo: Demo, kind: str, src, year: int | None) -> np.ndarray:
    """``(F, H, W)`` float32 per-pixel features of one series for the linear probe."""
    from alise.baselines.gapfill import gf_features, regular_grid, year_grid

    if kind != "gf":
        y = demo.embed(kind, src, year)
        return y.reshape(-1, *y.shape[2:])  # query-major Q·D, as the paper's LP head
    s = demo.sits(src, year)
    d = s.days.numpy()
    grid = year_grid(year) if year is not None else regular_grid(float(d.min()), float(d.max()), 5.0)
    return gf_features(s.x[None], s.days[None], s.valid_pixels[None], grid)[0].numpy()


class _Labels:
    """A labelled series as :class:`alise.downstream.probe.Probe` reads it: ``labels() → (H, W)``."""

    def __init__(self, labels: np.ndarray):
        self._labels = labels

    def labels(self) -> np.ndarray:
        return self._labels


def _linear_probe(tasks, k: int, ignore, names, seed: int):
    """``alise probe --mode lp --solver lbfgs`` on precomputed features: the same
    :class:`~alise.downstream.probe.Probe`, head and solver, over ``tasks`` = ``[(features (F, H, W),
    labels (H, W), split (H, W) 0 train / 1 val / 2 test)]``. Returns the
    :class:`~alise.downstream.probe.ProbeResult` (test metrics, fit report)."""
    from alise.downstream.features import FeatureTable
    from alise.downstream.heads import LinearProbe
    from alise.downstream.probe import Item, LabelSpace, Probe, ProbeConfig, ProbeParts, Run

    feats = [f for f, _, _ in tasks]
    parts = ProbeParts(head=LinearProbe(1, feats[0].shape[0], k), features=FeatureTable(lambda i: feats[i]))
    probe = Probe([_Labels(lab) for _, lab, _ in tasks], LabelSpace(k, tuple(ignore), list(names)),
                  ProbeConfig(mode="lp", solver="lbfgs"), parts)

    def items(code: int) -> list:
        return [Item(i, (0, 0, *split.shape), split == code) for i, (_, _, split) in enumerate(tasks)]

    return probe.fit(Run(f"split seed {seed}", items(0), items(1), items(2)), progress=False)


def _n_labelled(tasks, split_code: int, ignore) -> int:
    """Labelled pixels of one split over ``tasks`` (see :func:`_linear_probe`)."""
    return int(sum(((split == split_code) & (lab >= 0) & ~np.isin(lab, ignore)).sum() for _, lab, split in tasks))


def _segmentation_sets(demo: Demo) -> list[dict]:
    """The two labelled tasks: real patch (one raster, LPIS labels) and synthetic sites (last year)."""
    from alise.synth import CLASS_NAMES

    year = demo.p.years[-1]
    sets = []
    if demo.real is not None:
        names = demo.real.class_names or {}
        lab = np.asarray(demo.sits(demo.real).meta["labels"], dtype=np.int64)
        k = max(max(names, default=0), int(lab.max())) + 1
        sets.append({"key": "real", "title": f"Real: {demo.real.name} (LPIS crop types)", "k": k,
                     "names": [names.get(i, str(i)) for i in range(k)], "series": [(demo.real, None, lab)]})
    k = max(CLASS_NAMES) + 1
    sets.append({"key": "synthetic", "title": f"Synthetic: {len(demo.synth)} sites, labels {year}", "k": k,
                 "names": [CLASS_NAMES[i] for i in range(k)],
                 "series": [(src, year, src.labels(year=year).astype(np.int64)) for src in demo.synth]})
    return sets


def stage_segmentation(demo: Demo, rec: dict) -> None:
    from alise.metrics import mean_std
    from alise.plots import plot_confusion
    from alise.splits import describe_split, spatial_block_split

    ignore = (0,)
    block = 16 if demo.p.size >= 64 else 8
    rec.update(block=block, fractions=[0.6, 0.2, 0.2], seeds=list(demo.p.split_seeds), ignore=list(ignore),
               probe="Linear(F → K) per pixel on frozen features standardised with training statistics; "
                     "L-BFGS logistic regression to convergence, L2 strength C picked on the validation blocks "
                     "(alise probe's Probe with its lbfgs solver)",
               methods=dict(_methods(demo)), ubarn="not run: U-BARN FR needs its own masked-autoencoder pre-training "
                                             "(alise compare --models ubarn-fr), beyond the demo's time budget")
    for task in _segmentation_sets(demo):
        out = rec.setdefault(task["key"], {"title": task["title"], "classes": task["names"], "methods": {}})
        feats = {kind: [_features(demo, kind, src, yr) for src, yr, _ in task["series"]] for kind, _ in _methods(demo)}
        out["n_features"] = {kind: int(f[0].shape[0]) for kind, f in feats.items()}
        for kind, name in _methods(demo):
            runs = []
            for seed in demo.p.split_seeds:
                tasks = []
                for i, (src, yr, lab) in enumerate(task["series"]):
                    split = spatial_block_split(*lab.shape, block=block, seed=seed + 7919 * i)  # as alise probe
                    tasks.append((feats[kind][i], lab, split))
                res = _linear_probe(tasks, task["k"], ignore, task["names"], seed)
                m, fit = res.metrics, res.fit
                n = [_n_labelled(tasks, code, ignore) for code in (0, 1, 2)]
                runs.append({"seed": seed, "macro_f1": m["macro_f1"], "overall_accuracy": m["overall_accuracy"],
                             "miou": m["miou"], "per_class_f1": m["per_class_f1"], "n_train": n[0],
                             "n_val": n[1], "n_test": n[2], "C": fit.C, "stopped": fit.stopped,
                             "iterations": fit.steps, "confusion": m["confusion"]})
                if seed == demo.p.split_seeds[0]:
                    out.setdefault("split", describe_split(tasks[0][2], block=block, method="spatial_block"))
            out["methods"][kind] = {"name": name, "runs": runs,
                                    "macro_f1": mean_std([r["macro_f1"] for r in runs]),
                                    "overall_accuracy": mean_std([r["overall_accuracy"] for r in runs])}
            if kind in ("alise", "gf"):
                plot_confusion(runs[0]["confusion"], task["names"],
                               demo.figure(f"cm_{task['key']}_{kind}", f"confusion_{task['key']}_{kind}.png"),
                               title=f"{name}, {task['key']}, split seed {runs[0]['seed']}")
    if demo.real is not None:
        rec["command"] = (f"alise probe {demo.model_arg()}{demo.real.path} --mode lp --split blocks --block {block} "
                          f"--repeats {len(demo.p.split_seeds)} --out probe-real")


# ====================================================================== 6. change detection
def stage_change(demo: Demo, rec: dict) -> None:
    import torch

    from alise.downstream.change import embedding_distance, gf_change_map
    from alise.metrics import change_detection_metrics
    from alise.plots import plot_image_grid, plot_roc

    y1, y2 = demo.p.years[0], demo.p.years[1]
    names = {**demo.method_names(" (Eq. 12)"), "gf": "GF (5-day grid)"}
    scores = {k: [] for k in names}
    truths = []
    for src in demo.synth:
        truth = src.change_mask(y1, y2)
        if truth is None:
            raise AliseError(f"{src.path}: no change/{y1}_{y2}.tif truth")
        truths.append(truth)
        for k in demo.models():
            a, b = (torch.from_numpy(demo.embed(k, src, y)) for y in (y1, y2))
            scores[k].append(embedding_distance(a, b).numpy())
        scores["gf"].append(gf_change_map(demo.sits(src, y1), demo.sits(src, y2)))
    truth = np.concatenate([t.ravel() for t in truths])
    flat = {k: np.concatenate([v.ravel() for v in vs]) for k, vs in scores.items()}
    valid = (truth != 255) & np.all([np.isfinite(v) for v in flat.values()], axis=0)
    rec.update(years=[y1, y2], sites=len(demo.synth), methods={}, n_excluded_background=int((truth == 255).sum()))
    for k, name in names.items():
        m = change_detection_metrics(flat[k], np.where(truth == 1, 1, 0), valid=valid)
        rec["methods"][k] = {"name": name, **m}
    plot_roc({names[k]: (v["fpr"], v["tpr"], v["auc"]) for k, v in rec["methods"].items()},
             demo.figure("roc", "change_roc.png"), title=f"Change {y1}→{y2}, {len(demo.synth)} synthetic sites")
    t0 = truths[0].astype(np.float32)
    t0[truths[0] == 255] = np.nan
    plot_image_grid([(f"truth {y1}→{y2} (1 = changed)", t0)] + [(names[k], scores[k][0]) for k in names],
                    demo.figure("change_maps", "change_maps.png"), ncols=len(names) + 1, cmap="magma",
                    title=f"Change maps, {demo.synth[0].name} (blank = background, excluded)")
    rec["command"] = (f"alise change {demo.model_arg()}data/synthetic/{demo.synth[0].name} --years {y1},{y2} "
                      f"--truth data/synthetic/{demo.synth[0].name}/change/{y1}_{y2}.tif --out change.tif")
