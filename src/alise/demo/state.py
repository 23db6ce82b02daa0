"""The demo's state: its presets and options, where the real patch is, and :class:`Demo`, the
working folder, results and models shared by the stages (:mod:`alise.demo.stages`,
:mod:`alise.demo.evaluation`), which :mod:`alise.demo.pipeline` runs in order.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from alise.errors import AliseError
from alise.model.presets import TINY_ARCH
from alise.model.presets import preset as _preset

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
