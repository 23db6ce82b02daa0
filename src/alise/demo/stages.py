"""Demo stages 1–4: data, pre-training, embeddings, gap-filling (see :mod:`alise.demo.pipeline`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from alise.errors import AliseError

if TYPE_CHECKING:
    from alise.demo.state import Demo

from alise.demo.state import RGB_LIMITS


# ====================================================================== 1. data
def _describe(src, sits_valid: np.ndarray) -> dict:
    """Facts of one source: dates, span, clear fractions (exact, full resolution), grid, labels."""
    clear = sits_valid.reshape(sits_valid.shape[0], -1).mean(1)
    return {"name": src.name, "path": str(src.path), "n_dates": src.n_dates, "first": src.dates[0].isoformat(),
            "last": src.dates[-1].isoformat(), "height": src.grid.height, "width": src.grid.width,
            "crs": str(src.grid.crs), "clear_mean": float(clear.mean()), "dates_clear_90": int((clear >= 0.9).sum()),
            "dates_clear_0": int((clear == 0).sum()), "clear_per_date": [round(float(c), 4) for c in clear]}


def _mask_rgb(valid: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool clear mask → ``(H, W, 3)`` uint8: clear light grey, not clear dark red."""
    out = np.empty(valid.shape + (3,), np.uint8)
    out[valid] = (225, 225, 225)
    out[~valid] = (150, 20, 40)
    return out


def _thumbnails(demo: Demo, src, key: str, title: str) -> None:
    """Row of true-colour thumbnails along time and, below, their clear masks."""
    from alise.plots import plot_image_grid, rgb_thumbnail

    raw = src.read()
    n = min(demo.p.thumbnails, src.n_dates)
    idx = np.unique(np.linspace(0, src.n_dates - 1, n).round().astype(int))
    clear = raw.valid.reshape(raw.valid.shape[0], -1).mean(1)
    imgs = [(f"{src.dates[t]}  clear {clear[t]:.0%}", rgb_thumbnail(raw.dn[t], limits=RGB_LIMITS)) for t in idx]
    imgs += [(f"mask {src.dates[t]}", _mask_rgb(raw.valid[t])) for t in idx]
    plot_image_grid(imgs, demo.figure(key, f"{key}.png"), ncols=len(idx), title=title)


def stage_data(demo: Demo, rec: dict, real_path: Path | None) -> None:
    from alise.data import open_source, open_sources
    from alise.plots import plot_timeline
    from alise.synth import write_synthetic

    p, seed = demo.p, demo.opts.seed
    root = demo.work / "data" / "synthetic"
    t0 = time.perf_counter()
    write_synthetic(root, size=p.size, sites=p.sites, years=p.years, seed=seed, progress=demo.opts.progress)
    rec["synth_seconds"] = round(time.perf_counter() - t0, 2)
    years = ",".join(map(str, p.years))
    rec["synth_command"] = f"alise synth synthetic --sites {p.sites} --size {p.size} --years {years} --seed {seed}"
    demo.synth = open_sources(root)
    rec["synthetic"] = [_describe(s, s.read().valid) for s in demo.synth]
    rec["real_found"] = demo.results["meta"]["real_found"]
    if real_path is not None:
        start, end = p.real_dates or (None, None)
        demo.real = open_source(real_path, start=start, end=end)
        raw = demo.real.read()
        rec["real"] = _describe(demo.real, raw.valid)
        rec["real"]["date_filter"] = list(p.real_dates) if p.real_dates else None
        lab = raw.labels
        names = demo.real.class_names or {}
        ids, counts = np.unique(lab, return_counts=True)
        rec["real"]["label_pixels"] = {names.get(int(i), str(int(i))): int(c) for i, c in zip(ids, counts)}
    else:
        rec["real"] = None
    series = {s["name"]: (s_src.dates, np.asarray(s["clear_per_date"]))
              for s, s_src in zip(rec["synthetic"], demo.synth)}
    if demo.real is not None:
        series = {f"{demo.real.name} (real)": (demo.real.dates, np.asarray(rec["real"]["clear_per_date"])), **series}
    plot_timeline(series, demo.figure("timeline", "timeline.png"), title="Acquisition dates (colour: clear fraction)")
    _thumbnails(demo, demo.synth[0], "thumbs_synthetic", f"Synthetic {demo.synth[0].name}: RGB and clear mask")
    if demo.real is not None:
        _thumbnails(demo, demo.real, "thumbs_real", f"Real {demo.real.name}: RGB and clear mask (SCL 4/5/6)")


# ====================================================================== 2. models
def stage_model(demo: Demo, rec: dict) -> None:
    """The evaluated encoder (built-in by default) and its random twin, the control."""
    from alise.model import builtin as models
    from alise.downstream.controls import random_twin

    info, m = demo.model_info, demo.model
    demo.random_model = random_twin(m, seed=demo.opts.seed)
    card = models.describe(models.DEFAULT)["summary"] if info.get("builtin") else None
    rec.update(name=info["name"], sha256=info["sha256"], builtin=bool(info.get("builtin")), card_summary=card,
               param_counts=m.param_counts(), input_min_clear=float(m.input_min_clear),
               config={k: list(v) if isinstance(v, tuple) else v for k, v in m.config.to_dict().items()},
               command=f"alise info {models.DEFAULT if info.get('builtin') else info['path']}")


def stage_pretrain(demo: Demo, rec: dict) -> None:
    """A short pre-training of the demo's architecture on the demo's series (the training loop at work)."""
    from alise.model.config import ALISEConfig, format_overrides
    from alise.model.io import load
    from alise.plots import plot_loss_curves
    from alise.train import PretrainJob, run_pretraining

    p, o = demo.p, demo.opts
    overrides = {} if o.arch == "paper" else dict(p.arch)
    overrides["n_dates"] = p.n_dates
    config = ALISEConfig().replace(**overrides)
    data = [str(s.path) for s in demo.synth] + ([str(demo.real.path)] if demo.real is not None else [])
    steps = o.max_steps or p.max_steps
    run = demo.work / "pretrain"
    job = PretrainJob(data=data, out=str(run), config=config, overrides=overrides, max_steps=steps,
                      batch_size=p.batch_size, crop=p.crop, samples_per_epoch=p.samples_per_epoch,
                      val=[str(demo.synth[0].path)], seed=o.seed,
                      keep_checkpoints=1, progress=o.progress)
    record = run_pretraining(job)
    demo.short_model = load(run / "model")
    sets = " ".join(format_overrides(overrides))
    rec.update(
        arch=o.arch, overrides={k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
        param_counts=record["param_counts"], steps=record["steps_done"], epochs=record["epochs_done"],
        train_seconds=record["duration_s"], selected_epoch=record["selected_epoch"], final=record["final"],
        best=record["best"], baseline=record.get("baseline"), batch_size=p.batch_size, crop=p.crop,
        n_series=len(data), validation=record["validation"],
        command=f"alise pretrain {' '.join(Path(d).name for d in data)} --out pretrain --max-steps {steps} "
                f"--batch-size {p.batch_size} --crop {p.crop} "
                f"{f'--samples-per-epoch {p.samples_per_epoch} ' if p.samples_per_epoch else ''}--val {demo.synth[0].name} --seed {o.seed} --set {sets}")
    rec["steps_per_second"] = rec["steps"] / max(record["duration_s"], 1e-9)  # includes validation
    # dates seen per step ≈ n_dates per series, two views → B·n_dates images of crop² pixels
    rec["pixel_dates_per_second"] = rec["steps_per_second"] * p.batch_size * p.n_dates * p.crop ** 2
    rec["run_dir"] = "pretrain"
    plot_loss_curves(run / "metrics.csv", demo.figure("loss", "pretrain_loss.png"),
                     title=f"ALISE pre-training ({rec['steps']} steps, {o.arch} architecture)")


# ====================================================================== 3. embeddings
def stage_embeddings(demo: Demo, rec: dict) -> None:
    from alise.plots import pca_rgb, plot_image_grid, rgb_thumbnail

    q = demo.model.config.n_q
    queries = sorted({0, q // 2, q - 1})
    rec["queries"] = queries
    rec["n_q"], rec["d_model"] = q, demo.model.config.d_model
    year = demo.p.years[-1]
    sets = [("synthetic", demo.synth[0], year)] + ([("real", demo.real, None)] if demo.real is not None else [])
    for key, src, yr in sets:
        s = demo.sits(src, yr)
        clear = s.valid_pixels.flatten(1).float().mean(1).numpy()
        t = int(np.argmax(clear))
        dn = demo.model.norm.invert(s.x[t]).numpy()
        y = demo.embed("alise", src, yr)
        name = demo.model_label
        imgs = [(f"RGB {s.meta['dates'][t]}", rgb_thumbnail(dn, limits=RGB_LIMITS)),
                (f"{name}: all queries", pca_rgb(y))]
        imgs += [(f"{name}: query {k}", pca_rgb(y[k])) for k in queries]
        if "short" in demo.models():
            imgs += [("demo pre-training: all queries", pca_rgb(demo.embed("short", src, yr)))]
        imgs += [("random twin: all queries", pca_rgb(demo.embed("random", src, yr)))]
        n_in = int(demo.model_input(s, demo.model).x.shape[0])
        label = f"{src.name}, {yr}" if yr else f"{src.name}, {n_in} of {s.x.shape[0]} dates"
        plot_image_grid(imgs, demo.figure(f"pca_{key}", f"pca_{key}.png"), ncols=len(imgs),
                        title=f"Embedding PCA → RGB ({label})")
        rec[key] = {"source": src.name, "year": yr, "n_dates": int(s.x.shape[0]), "n_input_dates": n_in,
                    "shape": list(y.shape),
                    "feature_std": float(y.std())}


# ====================================================================== 4. gap-filling
def _pick(indices: np.ndarray, n: int) -> list[int]:
    """``n`` entries of ``indices`` spread evenly (all if fewer)."""
    if len(indices) <= n:
        return [int(i) for i in indices]
    return [int(indices[k]) for k in np.linspace(0, len(indices) - 1, n).round().astype(int)]


def stage_gapfill(demo: Demo, rec: dict) -> None:
    import torch

    from alise.downstream.reconstruct import heldout_comparison, reconstruct
    from alise.baselines.gapfill import gapfill_linear
    from alise.plots import plot_image_grid, rgb_thumbnail

    src, yr = (demo.real, None) if demo.real is not None else (demo.synth[0], demo.p.years[-1])
    s = demo.sits(src, yr)
    dates = s.meta["dates"]
    clear = s.valid_pixels.flatten(1).float().mean(1).numpy()
    good = np.flatnonzero(clear >= 0.8)
    if len(good) < 2:
        raise AliseError(f"{src.name}: fewer than two dates ≥ 80 % clear, nothing to compare a gap-filling with")
    cand = np.array([t for t in range(len(clear)) if clear[t] < 0.25 and good[0] < t < good[-1]], dtype=int)
    season = np.array([t for t in cand if 4 <= int(dates[t][5:7]) <= 9], dtype=int)
    targets = _pick(season if len(season) else cand, 3)
    if not targets:
        raise AliseError(f"{src.name}: no cloudy date between two clear ones")
    days = s.days.numpy().astype(np.float64)
    s_in = demo.model_input(s, demo.model)  # the dates the model was trained to read
    rec_dn = reconstruct(demo.model, s_in, days[targets])  # (n, C, H, W) DN
    gf = gapfill_linear(s.x[None], s.days[None], s.valid_pixels[None], days[targets])[0]
    gf_dn = demo.model.norm.invert(torch.nan_to_num(gf, nan=0.0)).numpy()
    dn = demo.model.norm.invert(s.x).numpy()  # (T, C, H, W), clipped to q05–q95 by the normalisation

    def rgb(a):
        return rgb_thumbnail(a, limits=RGB_LIMITS)

    imgs, rows = [], []
    for k, t in enumerate(targets):
        before, after = int(good[good < t].max()), int(good[good > t].min())
        imgs += [(f"clear {dates[before]}", rgb(dn[before])), (f"target {dates[t]} ({clear[t]:.0%} clear)", rgb(dn[t])),
                 (f"clear {dates[after]}", rgb(dn[after])), (f"linear GF {dates[t]}", rgb(gf_dn[k])),
                 (f"ALISE decoder {dates[t]}", rgb(rec_dn[k]))]
        rows.append({"date": dates[t], "clear": float(clear[t]), "before": dates[before], "after": dates[after]})
    plot_image_grid(imgs, demo.figure("gapfill", "gapfill.png"), ncols=5,
                    title=f"Gap-filling at cloudy dates of {src.name} (images clipped to the normalisation range)")
    held = _pick(np.flatnonzero(clear >= 0.9), 4)
    rec.update(source=src.name, targets=rows, heldout_dates=[dates[t] for t in held])
    if held:
        rec["heldout"] = heldout_comparison(demo.model, s, held, min_clear=demo.model.input_min_clear)
    rec["command"] = (f"alise reconstruct {demo.model_arg()}{src.path} --dates {','.join(r['date'] for r in rows)} "
                      "--out gapfilled")
