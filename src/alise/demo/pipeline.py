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

import contextlib
import datetime as dt
import json
import os
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from alise.errors import AliseError

#: Fixed DN stretch of every true-colour thumbnail (clouds saturate, surfaces keep their colour).
RGB_LIMITS = (0.0, 2500.0)


@dataclass(frozen=True)
class Preset:
    """Sizes of one demo configuration (``full`` for ``make demo``, ``quick`` for the tests)."""

    name: str
    sites: int  # synthetic sites, each its own SITS
    size: int  # side of a synthetic site, pixels
    years: tuple[int, ...]  # synthetic label years (change between the first two)
    arch: dict  # ALISEConfig overrides of the "demo" architecture (empty = paper)
    max_steps: int  # pre-training optimiser steps
    crop: int  # pre-training crop side, pixels
    n_dates: int  # consecutive dates per pre-training sample
    batch_size: int
    split_seeds: tuple[int, ...]  # spatial-block splits averaged for the probe
    thumbnails: int  # dates shown per series
    samples_per_epoch: int | None = None  # pre-training samples per epoch (None: one per crop tile)
    real_dates: tuple[str, str] | None = None  # keep only these dates of the real patch (None: all)


from alise.model.presets import TINY_ARCH, preset as _preset  # noqa: E402

#: The full demo pre-trains with the built-in model's recipe (architecture and losses), briefly.
DEMO_ARCH = {k: tuple(v) if isinstance(v, list) else v for k, v in _preset("cpu-small").overrides().items()
             if k != "n_dates"}
PRESETS = {
    "full": Preset("full", sites=4, size=64, years=(2018, 2019), arch=DEMO_ARCH, max_steps=300, crop=32, n_dates=32,
                   batch_size=2, split_seeds=(0, 1, 2), thumbnails=8),
    "quick": Preset("quick", sites=2, size=32, years=(2018, 2019), arch=TINY_ARCH, max_steps=4, crop=16, n_dates=12,
                    batch_size=2, split_seeds=(0,), thumbnails=4, samples_per_epoch=8,
                    real_dates=("2018-03-01", "2018-10-31")),
}


@dataclass
class DemoOptions:
    """The command line of ``alise demo``, typed."""

    out: str
    quick: bool = False
    real: str | None = None  # None = look for ../shared/data/worldcereal-flanders-2018
    seed: int = 0
    arch: str = "demo"  # "demo" (reduced widths) or "paper"
    model: str | None = None  # the pre-trained encoder evaluated (None: the built-in default)
    max_steps: int | None = None  # override the preset's pre-training steps
    overwrite: bool = False
    progress: bool = True

    @property
    def preset(self) -> Preset:
        return PRESETS["quick" if self.quick else "full"]


def resolve_real(explicit: str | None) -> tuple[Path | None, str]:
    """Where the shipped real patch is: ``--real``, else ``$ALISE_SHARED/data/…``, else ``<repo>/../shared/data/…``.

    Returns ``(path or None, how it was found / why not)``. An explicit ``--real`` that does not
    exist is a user mistake (:class:`AliseError`); a missing default only drops the real-data parts.
    """
    name = "worldcereal-flanders-2018"
    if explicit:
        p = Path(explicit)
        if not (p / "s2").is_dir():
            raise AliseError(f"--real {p}: not a folder of dates (no s2/ inside)")
        return p.resolve(), "--real"
    candidates = []
    if os.environ.get("ALISE_SHARED"):
        candidates.append((Path(os.environ["ALISE_SHARED"]) / "data" / name, "$ALISE_SHARED"))
    repo = Path(__file__).resolve().parents[3]  # <X>/main/src/alise/demo/pipeline.py → <X>/main
    candidates.append((repo.parent / "shared" / "data" / name, "beside the repository"))
    candidates.append((Path.cwd().parent / "shared" / "data" / name, "beside the working directory"))
    for p, how in candidates:
        if (p / "s2").is_dir():
            return p.resolve(), how
    return None, "not found (looked in " + ", ".join(str(p) for p, _ in candidates) + ")"


class Demo:
    """State shared by the stages: the working folder, the results and the models."""

    def __init__(self, opts: DemoOptions, work: Path):
        self.opts, self.p, self.work = opts, opts.preset, work
        self.fig_dir = work / "figures"
        self.fig_dir.mkdir(parents=True, exist_ok=True)
        self.results: dict = {"stages": {}, "figures": {}}
        self.synth: list = []  # FolderSource per synthetic site
        self.real = None  # FolderSource or None
        self.model = None  # the pre-trained ALISE evaluated (built-in by default)
        self.model_info: dict = {}
        self.random_model = None  # its random twin: same architecture, fresh weights
        self.short_model = None  # the demo's own short pre-training
        self._sits: dict = {}
        self._emb: dict = {}

    # ---------------------------------------------------------------- bookkeeping
    @contextlib.contextmanager
    def stage(self, name: str, needs: tuple[str, ...] = ()):
        """Time one stage; an exception is recorded (status ``failed``) and the demo goes on."""
        rec = self.results["stages"].setdefault(name, {})
        missing = [n for n in needs if self.results["stages"].get(n, {}).get("status") != "ok"]
        started = time.perf_counter()
        print(f"[demo] {name} …", file=sys.stderr, flush=True)
        if missing:
            rec.update(status="skipped", reason=f"needs stage {', '.join(missing)}", seconds=0.0)
            print(f"[demo] {name} skipped: needs {', '.join(missing)}", file=sys.stderr, flush=True)
            yield None
            return
        try:
            yield rec
            rec["status"] = "ok"
        except AliseError as e:
            rec.update(status="failed", reason=str(e))
        except Exception as e:  # a bug in a building block must not lose the rest of the report
            rec.update(status="failed", reason=f"{type(e).__name__}: {e}", traceback=traceback.format_exc(limit=6))
        rec["seconds"] = round(time.perf_counter() - started, 2)
        tail = "" if rec["status"] == "ok" else f" ({rec['status']}: {rec.get('reason', '')})"
        print(f"[demo] {name} done in {rec['seconds']:.1f} s{tail}", file=sys.stderr, flush=True)

    def figure(self, key: str, name: str) -> Path:
        """Path of figure ``name`` (PNG) registered under ``key`` (relative path in results.json)."""
        self.results["figures"][key] = f"figures/{name}"
        return self.fig_dir / name

    def models(self) -> dict:
        """``{"alise", "short", "random"}`` → model, the short pre-training only when it ran."""
        out = {"alise": self.model, "short": self.short_model, "random": self.random_model}
        return {k: m for k, m in out.items() if m is not None}

    def sits(self, src, year: int | None = None, norm=None):
        """Normalised :class:`SITS` of a whole source (dates of ``year`` only if given; normalised
        with ``norm``, default that of the evaluated model), cached."""
        norm = norm or self.model.norm
        key = (src.name, year, id(norm))
        if key not in self._sits:
            idx = None if year is None else [i for i, d in enumerate(src.dates) if d.year == year]
            raw = src.read(dates=idx)
            labels = raw.labels
            raw.labels = None
            s = raw.to_sits(norm)
            s.meta["labels"] = labels
            self._sits[key] = s
        return self._sits[key]

    @staticmethod
    def model_input(s, model):
        """``s`` without its dates less than ``model.input_min_clear`` clear (:meth:`SITS.keep_clear`)."""
        return s.keep_clear(getattr(model, "input_min_clear", 0.0))

    def model_arg(self) -> str:
        """How a stand-alone command names the evaluated model (nothing for the built-in default)."""
        return "" if self.opts.model is None else f"{self.opts.model} "

    @property
    def model_label(self) -> str:
        """Short name of the evaluated model: the built-in name, or its directory's name."""
        return Path(self.model_info["name"].split(" (")[0]).name

    def method_names(self, suffix: str) -> dict:
        """``{key: display name}`` of the encoders evaluated (see :meth:`models`), ``suffix`` appended."""
        short = self.results["stages"].get("pretrain", {})
        names = {"alise": f"ALISE {self.model_label}{suffix}",
                 "short": f"ALISE, demo pre-training ({short.get('steps', '?')} steps){suffix}",
                 "random": f"random twin of the first (fresh weights){suffix}"}
        return {k: names[k] for k in self.models()}

    def embed(self, which: str, src, year: int | None = None):
        """``(Q, D, H, W)`` float32 numpy embedding by model ``which`` (a key of :meth:`models`), cached.

        The series keeps the dates at least ``model.input_min_clear`` clear (all if none is)."""
        import torch

        from alise.downstream.features import encode_sits

        key = (which, src.name, year)
        if key not in self._emb:
            model = self.models()[which]
            s = self.model_input(self.sits(src, year, model.norm), model)
            model.eval()
            t0 = time.perf_counter()
            with torch.inference_mode():
                y = encode_sits(model, s, flatten=False).numpy()
            sec = time.perf_counter() - t0
            thr = self.results.setdefault("throughput", {}).setdefault("encode", {"pixel_dates": 0, "seconds": 0.0})
            thr["pixel_dates"] += int(s.x.shape[0] * s.x.shape[-1] * s.x.shape[-2])
            thr["seconds"] += sec
            self._emb[key] = y
        return self._emb[key]


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
