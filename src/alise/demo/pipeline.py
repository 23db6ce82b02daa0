"""The demo's stages, in the paper's order, each timed, each writing its numbers into ``results.json``.

1. **data** — ``alise synth`` sites (several years, rotations, clear-cuts, clouds) and the shipped
   real patch (``worldcereal-flanders-2018``): thumbnails with cloud masks, acquisition timelines.
2. **model** — the built-in pre-trained encoder (``alise-s2-small``, or ``--model``) and its
   random twin (same architecture, fresh weights, same input statistics) as the control.
   **pretrain** — a short ALISE pre-training (:func:`alise.train.run_pretraining`) on all series,
   to show the training loop and what a few minutes of it give.
3. **embeddings** — aligned representations ``Y (Q, D, H, W)`` of both datasets, PCA → RGB.
4. **gapfill** — decoder reconstructions at cloudy dates vs. nearest clear images and linear GF;
   held-out clear dates scored for both ([P] Eq. 8–9).
5. **segmentation** — the paper's linear probe (one ``Linear`` per pixel) on frozen features:
   built-in vs. the short pre-training vs. the random twin vs. GF, spatially blocked splits
   ([P] §IV-B-1).
6. **change** — Eq. 12 distance vs. GF distance against the synthetic change truth ([P] §IV-B-2).

Every encoder is fed the dates it was trained on: those at least ``input_min_clear`` clear
(:mod:`alise.data.subset`), as ``alise encode`` does.
7. **run facts** — timings, throughput, versions, seeds, commands.

A stage that cannot run (no real data, an error in a building block) records why, and the report
says so: no number is ever typed in. Everything is built in a temporary folder renamed onto
``--out`` at the end (:func:`alise.outputs.atomic_dir`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from alise.demo.state import Demo, DemoOptions, resolve_real
from alise.errors import AliseError

def run_demo(opts: DemoOptions) -> dict:
    """Run every stage into a temporary folder, write results.json + report.md + report.html, rename onto ``out``."""
    import torch

    from alise.demo import report
    from alise.outputs import atomic_dir, check_output

    out = check_output(opts.out, overwrite=opts.overwrite)
    if opts.arch not in ("demo", "paper"):
        raise AliseError(f"--arch {opts.arch!r}: choose demo (reduced widths) or paper")
    from alise.model.io import load_model

    model, model_info = load_model(opts.model)  # a bad --model is a user mistake: refuse before any work
    real_path, real_how = resolve_real(opts.real)
    started = time.perf_counter()
    with atomic_dir(out, overwrite=opts.overwrite) as work:
        demo = Demo(opts, work)
        demo.model, demo.model_info = model, model_info
        r = demo.results
        r["meta"] = {"started_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                     "options": asdict(opts), "preset": asdict(opts.preset), "real_path": None if real_path is None
                     else str(real_path), "real_found": real_how, "torch_threads": torch.get_num_threads(),
                     "cpu_count": os.cpu_count()}
        for name, fn, needs in _stages():
            with demo.stage(name, needs) as rec:
                if rec is not None:
                    fn(demo, rec, real_path) if name == "data" else fn(demo, rec)
        r["meta"]["model"] = {k: model_info.get(k) for k in ("name", "sha256", "builtin", "path")}
        r["meta"]["total_seconds"] = round(time.perf_counter() - started, 2)
        run_facts(demo)
        with open(work / "results.json", "w") as f:
            json.dump(r, f, indent=2, default=_json_default)
            f.write("\n")
        report.write_reports(r, work)
        _cleanup(demo)
    print(f"[demo] report: {Path(out) / 'report.md'} and report.html ({r['meta']['total_seconds']:.0f} s)",
          file=sys.stderr)
    return r


def _cleanup(demo: Demo) -> None:
    """Drop the bulky pre-training checkpoints (the exported model stays in pretrain/model)."""
    import shutil

    shutil.rmtree(demo.work / "pretrain" / "checkpoints", ignore_errors=True)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (Path, dt.date)):
        return str(o)
    return str(o)




# ====================================================================== 7. run facts
def run_facts(demo: Demo) -> None:
    """Versions, seeds, stage times, throughput and the commands that reproduce each number."""
    import platform

    import lightning
    import sklearn
    import torch

    from alise._version import __version__

    r, o = demo.results, demo.opts
    enc = r.get("throughput", {}).get("encode")
    if enc and enc["seconds"] > 0:
        enc["pixel_dates_per_second"] = enc["pixel_dates"] / enc["seconds"]
    r["run"] = {
        "versions": {"alise": __version__, "python": platform.python_version(), "torch": torch.__version__,
                     "lightning": lightning.__version__, "numpy": np.__version__, "scikit-learn": sklearn.__version__},
        "platform": platform.platform(), "processor": platform.machine(),
        "seeds": {"demo": o.seed, "synth": o.seed, "pretrain": o.seed, "random_init": o.seed, "probe": o.seed,
                  "splits": list(demo.p.split_seeds)},
        "stage_seconds": {k: v.get("seconds") for k, v in r["stages"].items()},
        "commands": {
            "demo": f"alise demo --out {Path(o.out).name}{' --quick' if o.quick else ''} --seed {o.seed}"
                    f"{'' if o.arch == 'demo' else ' --arch paper'}{f' --model {o.model}' if o.model else ''}",
            **{k: r["stages"][k]["command"] for k in ("data", "model", "pretrain", "gapfill", "segmentation", "change")
               if r["stages"].get(k, {}).get("command")},
        },
    }
    if r["stages"].get("data", {}).get("synth_command"):
        r["run"]["commands"]["data"] = r["stages"]["data"]["synth_command"]


def _stages():
    """``(name, function, stages it needs)`` in the order of the paper."""
    from alise.demo.evaluation import stage_change, stage_segmentation
    from alise.demo.stages import stage_data, stage_embeddings, stage_gapfill, stage_model, stage_pretrain

    return (
        ("data", stage_data, ()),
        ("model", stage_model, ()),
        ("pretrain", stage_pretrain, ("data",)),
        ("embeddings", stage_embeddings, ("data", "model")),
        ("gapfill", stage_gapfill, ("data", "model")),
        ("segmentation", stage_segmentation, ("data", "model")),
        ("change", stage_change, ("data", "model")),
    )
