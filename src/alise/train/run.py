"""The ``alise pretrain`` job: validate, normalise, train, select, export, report.

Layout of a run folder ``RUN``::

    RUN/job.json            options, configuration and normalisation statistics (written first)
    RUN/checkpoints/        last.ckpt (what --resume continues from), epochNNNN.ckpt, best.ckpt
    RUN/logs/version_K/     Lightning CSVLogger metrics.csv (one version per start or resume)
    RUN/metrics.csv         all versions merged, one row per step (replayed steps deduplicated)
    RUN/model/              config.json + model.safetensors of the best epoch (alise.load)
    RUN/loss.png            every loss term and the learning rate over optimiser steps
    RUN/run.json            job + versions, duration, best/final losses, baseline comparison
    RUN/README.md           the same, for people

Order of work: every option is checked (:meth:`PretrainJob.validate`) before anything is read or
written; then the sources are opened, the normalisation statistics computed from a sample of clear
training pixels (or read back from ``job.json`` on ``--resume``), the Trainer runs, and the best
checkpoint (lowest ``val/loss``, the paper's model selection) is exported.

Under DDP, Lightning re-executes the command line once per extra process (``LOCAL_RANK`` > 0);
those processes skip every write outside the Trainer.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from alise.model.config import ALISEConfig
from alise.errors import AliseError
from alise.outputs import atomic_file, check_output
from alise.train.checkpoint import CHECKPOINT_DIR, LAST, resume_checkpoint

PRECISIONS = ("32", "bf16-mixed", "16-mixed")
STRATEGIES = ("auto", "ddp")
ACCELERATORS = ("auto", "cpu", "gpu")
PAPER_EPOCHS = 260  # [P] §III-C
_OWNED = ("job.json", CHECKPOINT_DIR, "logs", "metrics.csv", "model", "loss.png", "run.json", "README.md")
# What --resume must find unchanged (anything else, e.g. --max-epochs or --devices, may change).
_FIXED = ("data", "val", "config", "batch_size", "crop", "samples_per_epoch", "seed", "lr", "min_clear", "stats_pixels",
          "date_pattern")


def is_launcher_child() -> bool:
    """True in the extra processes that DDP launchers start (they must not write run files)."""
    return any(os.environ.get(k, "0") not in ("", "0") for k in ("LOCAL_RANK", "NODE_RANK"))


@dataclass
class PretrainJob:
    """Every option of one pre-training run (the command line, typed). Paper defaults (§III-C, Table I)."""

    data: list[str]
    out: str
    config: ALISEConfig = field(default_factory=ALISEConfig)
    overrides: dict = field(default_factory=dict)
    config_file: str | None = None
    max_epochs: int | None = None
    max_steps: int | None = None
    batch_size: int = 2
    crop: int = 64
    samples_per_epoch: int | None = None
    val: list[str] | None = None
    resume: bool = False
    overwrite: bool = False
    devices: int = 1
    strategy: str = "auto"
    accelerator: str = "auto"
    precision: str = "32"
    seed: int = 0
    num_workers: int = 0
    lr: float = 1e-3
    min_clear: float = 0.5
    stats_pixels: int = 100_000
    keep_checkpoints: int = 3
    progress: bool = True
    preset: str = "paper"
    date_pattern: str | None = None  # --date-pattern: dates in file names (alise.dates.date_from_name)

    # ------------------------------------------------------------------ before any work
    def validate(self) -> "PretrainJob":
        """Raise :class:`AliseError` on the first bad option; nothing has been read or written yet."""
        self.config.validate()
        for p in list(self.data) + list(self.val or []):
            if not Path(p).exists():
                raise AliseError(f"data path {p} does not exist")
        if not self.data:
            raise AliseError("give at least one training data path")
        checks = [("--batch-size", self.batch_size, 1), ("--crop", self.crop, 8), ("--devices", self.devices, 1),
                  ("--seed", self.seed, 0), ("--num-workers", self.num_workers, 0), ("--stats-pixels", self.stats_pixels, 2)]
        checks += [(n, v, 1) for n, v in (("--max-epochs", self.max_epochs), ("--max-steps", self.max_steps),
                                           ("--samples-per-epoch", self.samples_per_epoch)) if v is not None]
        for name, value, low in checks:
            if value < low:
                raise AliseError(f"{name} must be ≥ {low} (got {value})")
        if self.keep_checkpoints < 1 and self.keep_checkpoints != -1:
            raise AliseError(f"--keep-checkpoints must be ≥ 1, or -1 to keep all (got {self.keep_checkpoints})")
        if not self.lr > 0:
            raise AliseError(f"--lr must be > 0 (got {self.lr})")
        if not 0.0 <= self.min_clear <= 1.0:
            raise AliseError(f"--min-clear must be in [0, 1] (got {self.min_clear})")
        if self.crop % self.config.multiple:
            raise AliseError(f"--crop {self.crop} must be a multiple of {self.config.multiple} "
                             f"(the UNet halves the resolution {len(self.config.encoder_widths) - 1} times)")
        for name, value, allowed in (("--precision", self.precision, PRECISIONS), ("--strategy", self.strategy, STRATEGIES),
                                     ("--accelerator", self.accelerator, ACCELERATORS)):
            if value not in allowed:
                raise AliseError(f"{name} {value!r}: choose one of {', '.join(allowed)}")
        if self.resume and self.overwrite:
            raise AliseError("--resume and --overwrite exclude each other: resume continues RUN, overwrite restarts it")
        out = Path(self.out)
        if self.resume:
            resume_checkpoint(out)
            self._check_same_as_saved(out)
        elif not is_launcher_child() and out.exists():
            if not self.overwrite:
                raise AliseError(f"output {out} already exists: pass --resume to continue it, --overwrite to restart it, "
                                 "or choose another --out")
            if not out.is_dir():
                raise AliseError(f"output {out} exists and is not a run folder")
        else:
            check_output(out, overwrite=self.overwrite or is_launcher_child())
        return self

    def record(self) -> dict:
        """JSON-ready options (the config as a dict)."""
        d = asdict(self)
        d["config"] = self.config.to_dict()
        d["data"] = [str(Path(p).resolve()) for p in self.data]
        d["val"] = None if self.val is None else [str(Path(p).resolve()) for p in self.val]
        d["out"] = str(Path(self.out).resolve())
        return d

    def _check_same_as_saved(self, out: Path) -> None:
        path = out / "job.json"
        if not path.is_file():
            raise AliseError(f"--resume: {path} is missing; {out} is not an alise pretrain run")
        saved, now = json.loads(path.read_text())["job"], self.record()
        for key in _FIXED:
            if saved.get(key) != now.get(key):
                raise AliseError(f"--resume: {key} differs from the interrupted run ({saved.get(key)!r} there, "
                                 f"{now.get(key)!r} now); resume with the same options or start a new --out")

    @property
    def epochs(self) -> int:
        """Epoch budget: --max-epochs, else unlimited if --max-steps is given, else the paper's 260."""
        if self.max_epochs is not None:
            return self.max_epochs
        return -1 if self.max_steps is not None else PAPER_EPOCHS


# ---------------------------------------------------------------------- data
def split_validation(job: PretrainJob, sources: list) -> tuple[list, list, str]:
    """``(train sources, val sources, description)``; see docs/pretraining.md "Validation".

    ``--val`` given: those. Otherwise, with ≥ 2 series, ~10 % of them (at least one), drawn with the
    seed, are held out (the paper validates on separate tiles, §IV-A); with a single series the
    centre crop of the training series is used (not independent: it only tracks the fit).
    """
    from alise.data import open_sources

    if job.val:
        val = open_sources(job.val, date_pattern=getattr(job, "date_pattern", None))
        return sources, val, f"--val: {len(val)} series"
    if len(sources) >= 2:
        import numpy as np

        k = max(1, round(0.1 * len(sources)))
        held = set(np.random.default_rng(job.seed).permutation(len(sources))[:k].tolist())
        val = [s for i, s in enumerate(sources) if i in held]
        train = [s for i, s in enumerate(sources) if i not in held]
        return train, val, f"held out {k} of {len(sources)} series: {', '.join(s.name for s in val)}"
    return sources, sources, "centre crop of the single training series (not independent of training)"


def normalisation(job: PretrainJob, train_sources: list):
    """Statistics of the training data (§IV-A): median, q05, q95 of a sample of clear pixels."""
    from alise.data import sample_clear_pixels
    from alise.normalise import NormStats

    out = Path(job.out)
    if job.resume or is_launcher_child():
        saved = out / "job.json"
        if saved.is_file():  # computed once, by the first start
            return NormStats.from_dict(json.loads(saved.read_text())["normalisation"])
    values = sample_clear_pixels(train_sources, job.stats_pixels, job.seed)
    return NormStats.from_samples(values)


# ---------------------------------------------------------------------- the job
def _clear_owned(out: Path) -> None:
    """--overwrite: remove what a previous run wrote (only our files, never the whole folder)."""
    for name in _OWNED:
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def _write_json(path: Path, obj: dict) -> None:
    with atomic_file(path, "w") as f:
        json.dump(obj, f, indent=2, default=str)
        f.write("\n")


def build_trainer(job: PretrainJob, out: Path):
    """The Lightning Trainer with atomic checkpoints, per-epoch + best + last files, CSV logs."""
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger
    from lightning.pytorch.strategies import DDPStrategy

    from alise.train.checkpoint import AtomicCheckpointIO

    ckpt_dir = out / CHECKPOINT_DIR
    epochs = ModelCheckpoint(dirpath=ckpt_dir, filename="epoch{epoch:04d}", auto_insert_metric_name=False,
                             monitor="step", mode="max", save_top_k=job.keep_checkpoints, every_n_epochs=1,
                             save_last=True, save_on_train_epoch_end=True, enable_version_counter=False)
    best = ModelCheckpoint(dirpath=ckpt_dir, filename="best", auto_insert_metric_name=False, monitor="val/loss",
                           mode="min", save_top_k=1, save_on_train_epoch_end=True, enable_version_counter=False)
    cfg = job.config
    strategy = job.strategy
    if job.strategy == "ddp":
        # Unused heads (w_rec = 0, or w_inv = w_cov = 0) get no gradient; DDP must be told.
        unused = cfg.w_rec == 0 or (cfg.w_inv == 0 and cfg.w_cov == 0)
        strategy = DDPStrategy(find_unused_parameters=unused)
    return L.Trainer(
        default_root_dir=out, max_epochs=job.epochs, max_steps=job.max_steps or -1,
        accelerator=job.accelerator, devices=job.devices, strategy=strategy,
        precision="32-true" if job.precision == "32" else job.precision,
        plugins=[AtomicCheckpointIO()], callbacks=[epochs, best],
        logger=CSVLogger(out, name="logs"), log_every_n_steps=1, num_sanity_val_steps=0,
        use_distributed_sampler=False, enable_progress_bar=job.progress, enable_model_summary=False,
    )


def run_pretraining(job: PretrainJob) -> dict | None:
    """Run ``job`` end to end; returns the ``run.json`` record (None in DDP child processes)."""
    job.validate()
    import logging
    import warnings

    import lightning as L
    import torch

    # Lightning's start-up banners (GPU/TPU availability, tips) and a deprecation inside Lightning
    # itself say nothing about the run: keep the terminal for our progress and errors.
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*is deprecated")

    from alise.data import PretrainDataset, open_sources
    from alise.train.datamodule import PretrainDataModule
    from alise.train.module import PretrainModule

    started = time.time()
    out = Path(job.out)
    primary = not is_launcher_child()
    sources = open_sources(job.data, date_pattern=job.date_pattern)
    train_sources, val_sources, val_desc = split_validation(job, sources)
    cfg = job.config
    kw = dict(n_dates=cfg.n_dates, seed=job.seed, min_clear=job.min_clear)
    train_set = PretrainDataset(train_sources, norm := normalisation(job, train_sources), crop=job.crop + cfg.view_shift,
                                samples_per_epoch=job.samples_per_epoch, **kw)
    val_set = PretrainDataset(val_sources, norm, center=True, crop=job.crop, **kw)
    if primary:
        if job.overwrite and out.exists():
            _clear_owned(out)
        if not job.resume:
            out.mkdir(parents=True, exist_ok=True)
            _write_json(out / "job.json", {"job": job.record(), "normalisation": norm.to_dict(), "validation": val_desc,
                                           "command": sys.argv})
    L.seed_everything(job.seed, workers=True, verbose=False)
    module = PretrainModule(cfg.to_dict(), norm.to_dict(), lr=job.lr, seed=job.seed)
    data = PretrainDataModule(train_set, val_set, batch_size=job.batch_size, n_dates=cfg.n_dates, t_w=cfg.t_w,
                              seed=job.seed, num_workers=job.num_workers, shift=cfg.view_shift)
    trainer = build_trainer(job, out)
    ckpt = str(resume_checkpoint(out)) if job.resume else None
    trainer.fit(module, datamodule=data, ckpt_path=ckpt)
    if not trainer.is_global_zero:
        return None
    torch.set_grad_enabled(True)
    return export_run(job, trainer, module, out, val_desc=val_desc, started=started, n_train=len(train_sources),
                      n_val=len(val_sources))


def time_one_step(sources: list, config: ALISEConfig, *, crop: int = 64, batch_size: int = 2, seed: int = 0) -> float:
    """Seconds of one pre-training step (forward, backward, Adam) of ``config`` on a real batch of
    ``sources`` on this machine: what ``compare`` measures before refusing to start an unbounded
    pre-training."""
    import torch

    from alise.data import PretrainDataset, sample_clear_pixels
    from alise.model.network import ALISE
    from alise.normalise import NormStats
    from alise.train.datamodule import ViewCollate

    norm = NormStats.from_samples(sample_clear_pixels(sources, 10_000, seed))
    crop = min(crop, *(min(s.grid.height, s.grid.width) for s in sources))
    crop -= crop % config.multiple
    data = PretrainDataset(sources, norm, crop=crop, n_dates=config.n_dates, seed=seed, samples_per_epoch=batch_size)
    a, b = ViewCollate(seed, config.n_dates, config.t_w)([(0, i, data[i]) for i in range(batch_size)])
    model = ALISE(config, norm).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    loss = model.pretrain_step(a, b)["loss"]
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return time.perf_counter() - start


# ---------------------------------------------------------------------- export and report
def merged_metrics(log_root: Path) -> dict[str, dict[int, float]]:
    """All CSVLogger versions under ``log_root`` merged: ``{column: {step: value}}``.

    Versions are read in order; a step replayed after a resume overwrites the interrupted value
    (they are equal: the run is deterministic). Val rows keep their own columns.
    """
    import csv

    out: dict[str, dict[int, float]] = {}
    versions = sorted(log_root.glob("version_*"), key=lambda p: int(p.name.split("_")[-1]))
    for v in versions:
        path = v / "metrics.csv"
        if not path.is_file():
            continue
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                step = int(float(row["step"]))
                for k, val in row.items():
                    if k != "step" and val not in (None, ""):
                        out.setdefault(k, {})[step] = float(val)
    return out


def _write_metrics_csv(path: Path, metrics: dict[str, dict[int, float]]) -> None:
    cols = sorted(metrics)
    steps = sorted({s for m in metrics.values() for s in m})
    with atomic_file(path, "w") as f:
        f.write(",".join(["step", *cols]) + "\n")
        for s in steps:
            f.write(",".join([str(s)] + [f"{metrics[c][s]:.8g}" if s in metrics[c] else "" for c in cols]) + "\n")


def _versions() -> dict:
    import platform

    import lightning
    import numpy
    import torch

    from alise._version import __version__

    return {"alise": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "lightning": lightning.__version__, "numpy": numpy.__version__}


def summarise(metrics: dict[str, dict[int, float]], best_epoch: int | None) -> dict:
    """Final training losses (last logged step) and the validation losses of ``best_epoch``."""
    res: dict = {"final": {}, "best": {}}
    for k, series in metrics.items():
        if k.startswith("train/") and series:
            res["final"][k] = series[max(series)]
    epochs = metrics.get("epoch", {})
    val_steps = sorted(s for s in metrics.get("val/loss", {}) if best_epoch is None or int(epochs.get(s, -1)) == best_epoch)
    if val_steps:
        s = val_steps[-1]
        res["best"] = {k: v[s] for k, v in metrics.items() if k.startswith("val/") and s in v}
        res["best"]["epoch"] = int(epochs.get(s, -1))
    rec, base = res["best"].get("val/rec"), res["best"].get("val/rec_baseline")
    if rec is not None and base:
        res["baseline"] = {"val_rec": rec, "band_mean_rec": base, "reduction_percent": 100.0 * (1.0 - rec / base)}
    return res


def export_run(job: PretrainJob, trainer, module, out: Path, *, val_desc: str, started: float, n_train: int,
               n_val: int) -> dict:
    """Export the best checkpoint to ``RUN/model`` and write metrics.csv, loss.png, run.json, README.md."""
    from alise.model.directory import save
    from alise.plots import plot_loss_curves
    from alise.train.checkpoint import AtomicCheckpointIO

    best_cb = next(c for c in trainer.checkpoint_callbacks if c.monitor == "val/loss")
    best_path = Path(best_cb.best_model_path) if best_cb.best_model_path else out / CHECKPOINT_DIR / LAST
    state = AtomicCheckpointIO().load_checkpoint(best_path)
    module.load_state_dict(state["state_dict"])
    model = module.model.to("cpu").eval()
    model.input_min_clear = job.min_clear  # it was trained on such dates: encode with such dates
    save(model, out / "model", overwrite=True)
    metrics = merged_metrics(out / "logs")
    _write_metrics_csv(out / "metrics.csv", metrics)
    curves = {k: (list(v), list(v.values())) for k, v in metrics.items() if k not in ("epoch",) and v}
    if curves:
        plot_loss_curves(curves, out / "loss.png", title=f"alise pretrain — {out.name}")
    summary = summarise(metrics, int(state.get("epoch", -1)))
    record = {
        "job": job.record(), "overrides": job.overrides, "config_file": job.config_file, "validation": val_desc,
        "n_train_series": n_train, "n_val_series": n_val, "normalisation": model.norm.to_dict(),
        "command": sys.argv, "versions": _versions(), "duration_s": round(time.time() - started, 2),
        "epochs_done": int(trainer.current_epoch), "steps_done": int(trainer.global_step),
        "selected_checkpoint": best_path.name, "selected_epoch": int(state.get("epoch", -1)),
        "param_counts": model.param_counts(), **summary,
    }
    _write_json(out / "run.json", record)
    with atomic_file(out / "README.md", "w") as f:
        f.write(readme(record))
    return record


def readme(r: dict) -> str:
    """The run's ``README.md``: what was trained on what, and how well."""
    job, cfg = r["job"], r["job"]["config"]
    lines = [f"# ALISE pre-training run `{Path(job['out']).name}`", "",
             f"Command: `alise {' '.join(r['command'][1:])}`", "",
             "## Data", "", *[f"- train: `{p}`" for p in job["data"]],
             f"- {r['n_train_series']} training series, validation: {r['validation']}",
             f"- crops {job['crop']}×{job['crop']} px, {cfg['n_dates']} consecutive dates, views of t_w = {cfg['t_w']}, "
             f"batch {job['batch_size']}, {job['samples_per_epoch'] or 'one sample per crop tile'} samples per epoch",
             "", "## Hyper-parameters", "",
             f"Adam lr {job['lr']:g}, cosine warm restarts T_0 = 2, T_mult = 2 (per epoch); precision {job['precision']}; "
             f"seed {job['seed']}; {r['epochs_done']} epochs, {r['steps_done']} steps in {r['duration_s']:.0f} s"
             f"{' (this part, resumed)' if job['resume'] else ''}.", "",
             "| key | value |", "|---|---|",
             *[f"| {k}{' (set)' if k in r['overrides'] else ''} | {v} |" for k, v in cfg.items()], "",
             "## Results", ""]
    best, base = r.get("best", {}), r.get("baseline")
    if best:
        lines.append(f"Selected epoch {r['selected_epoch']} (lowest val/loss = {best.get('val/loss', float('nan')):.4f}); "
                     f"exported to `model/` (`alise.load`).")
    if base:
        lines += ["", f"Reconstruction of held-out dates (val/rec, Eq. 10–11, normalised units²): **{base['val_rec']:.4f}** "
                      f"vs. {base['band_mean_rec']:.4f} for predicting each band's mean over the clear pixels — "
                      f"**{abs(base['reduction_percent']):.1f} % {'lower' if base['reduction_percent'] >= 0 else 'higher'}**."]
    if r["final"]:
        lines += ["", "Final training losses: " + ", ".join(f"{k} {v:.4f}" for k, v in sorted(r["final"].items()))]
    lines += ["", "Files: `model/`, `loss.png`, `metrics.csv`, `run.json`, `job.json`, `checkpoints/` "
                  "(`last.ckpt` for `--resume`).", ""]
    return "\n".join(lines)


__all__ = ["PretrainJob", "run_pretraining", "split_validation", "normalisation", "build_trainer", "LAST"]
