"""Downstream segmentation: one probe for every model ([P] §IV-B-1, Tables II–III).

A :class:`Probe` trains and evaluates a per-pixel classifier on a task's runs (train/val/test
splits). What a model brings is injected as :class:`ProbeParts`, so ALISE, U-BARN, U-TAE,
Presto, gap-filling and any future model go through the same code, splits, losses and metric:

* **frozen** parts — a feature source (``get(i) → (F, H, W)``, computed once per series, e.g.
  :class:`alise.downstream.features.FeatureCache`) and a head (``forward_flat((N, F)) → (N, K)``,
  e.g. :class:`alise.downstream.heads.LinearProbe`). ALISE^LP, U-BARN^FR, Presto^LP, GF-LP.
* **end-to-end** parts — a network ``(x (B, T, C, H, W), days (B, T), valid (B, T)) → (B, K, H, W)``
  logits, the normalised series it reads and its trainable parameters. ALISE^FT/FS, U-BARN^FT/FS,
  U-TAE.

Solvers (:mod:`alise.downstream.solvers`), chosen by ``ProbeConfig.solver``:

================ ======================================================== =======================
solver           what                                                     when
================ ======================================================== =======================
``lbfgs``        full-batch L-BFGS logistic regression on every labelled  training pixels × features
                 training pixel, standardised; L2 strength C picked on    fit in memory (default)
                 the validation split from a grid; converges
``adam``         mini-batch Adam over training pixels, step budget,       tables too large for RAM
                 early stopping in steps                                  (rows in a memory map)
``paper``        Adam lr 1e-4 + ReduceLROnPlateau(10, 0.05) over          PASTIS-size data, as in
                 crop-size tiles, epochs, patience 20 epochs              [P] §IV-B-1
================ ======================================================== =======================

Features are standardised with statistics of the training pixels only, stored in the head.
End-to-end training (ft/fs) uses the paper's optimiser (Adam 1e-4, ReduceLROnPlateau) on random
``crop × crop`` windows centred on labelled training pixels; an epoch is at least
``min_steps_per_epoch`` steps, and early stopping is counted in steps (``patience`` epochs of
that many steps), so a task with a single small raster still gets a real optimisation.
Every fit reports how it stopped (``converged`` / ``early_stop`` / ``budget``) and its loss curve.

Shapes: ``K`` classes; a window is ``(row, col, h, w)``; label maps ``(h, w)`` int64.
"""

from __future__ import annotations

import copy
import math
import sys
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from alise.downstream.solvers import C_GRID, FitReport, LoopConfig, fit_lbfgs, fit_minibatch
from alise.errors import AliseError

#: Target value of pixels the loss ignores.
IGNORE_INDEX = -100
#: The three downstream configurations of [P] Table II.
MODES: tuple[str, ...] = ("lp", "ft", "fs")
SOLVERS: tuple[str, ...] = ("auto", "lbfgs", "adam", "paper")
#: Largest training table (pixels × features, float64) the ``auto`` solver hands to L-BFGS.
LBFGS_TABLE_BYTES = 2 << 30


@dataclass(frozen=True)
class ProbeConfig:
    """Training hyper-parameters ([P] §IV-B-1 where the paper gives them; see the module docstring).

    ``lr = None`` takes the solver's default: 1e-3 for ``adam`` over pixels, the paper's 1e-4 for
    ``paper`` and for end-to-end training.
    """

    mode: str = "lp"
    solver: str = "auto"
    Cs: tuple[float, ...] = C_GRID
    max_iter: int = 1000
    tol: float = 1e-4
    steps: int = 3000
    batch_pixels: int = 4096
    eval_every: int = 100
    patience_steps: int = 1000
    epochs: int = 120
    patience: int = 20
    min_steps_per_epoch: int = 25
    lr: float | None = None
    batch_size: int = 2
    lr_patience: int = 10
    lr_factor: float = 0.05
    min_lr: float = 1e-6
    crop: int = 64
    seed: int = 0

    def __post_init__(self):
        if self.mode not in MODES:
            raise AliseError(f"unknown probe mode {self.mode!r}: choose one of {', '.join(MODES)}")
        if self.solver not in SOLVERS:
            raise AliseError(f"unknown --solver {self.solver!r}: choose one of {', '.join(SOLVERS)}")
        for name in ("epochs", "batch_size", "patience", "crop", "steps", "batch_pixels", "eval_every",
                     "patience_steps", "max_iter", "min_steps_per_epoch"):
            if getattr(self, name) <= 0:
                raise AliseError(f"--{name.replace('_', '-')} must be > 0 (got {getattr(self, name)})")
        if self.lr is not None and not self.lr > 0:
            raise AliseError(f"--lr must be > 0 (got {self.lr})")
        if not self.Cs or any(not c > 0 for c in self.Cs):
            raise AliseError(f"--C values must be > 0 (got {', '.join(map(str, self.Cs)) or 'none'})")

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["Cs"] = list(self.Cs)
        return d


@dataclass
class Item:
    """A region of one source in one split: ``window (row, col, h, w)``; ``mask (h, w)`` bool = pixels
    of the split (None = all pixels of the window)."""

    source: int
    window: tuple[int, int, int, int]
    mask: np.ndarray | None = None


@dataclass
class Run:
    """One train/val/test experiment (a PASTIS fold rotation, a split seed, a scarcity subset)."""

    name: str
    train: list[Item]
    val: list[Item]
    test: list[Item]
    split: dict = field(default_factory=dict)


@dataclass
class LabelSpace:
    """Class ids of a task: ``K`` outputs (ids ``0 … K-1``), ids ignored by loss and metric, names."""

    num_classes: int
    ignore: tuple[int, ...]
    class_names: list[str]

    @classmethod
    def from_sources(cls, sources, labels: list[np.ndarray] | None = None) -> "LabelSpace":
        """K = 1 + the largest non-ignored id (from ``class_names``, else from ``labels``)."""
        ignore = tuple(sorted({int(v) for s in sources for v in s.ignore_labels}))
        names: dict[int, str] = {}
        for s in sources:
            names.update({int(k): str(v) for k, v in (s.class_names or {}).items()})
        ids = set(names)
        for lab in labels or []:
            ids.update(int(v) for v in np.unique(lab) if v >= 0)
        kept = [i for i in ids if i not in ignore]
        if not kept:
            raise AliseError("the labels hold no class besides the ignored ones "
                             f"({', '.join(map(str, ignore))}): nothing to learn")
        k = max(kept) + 1
        return cls(k, ignore, [names.get(i, str(i)) for i in range(k)])

    @classmethod
    def read(cls, sources, command: str = "probe") -> "LabelSpace":
        """Read every source's labels (an :class:`AliseError` naming the first unlabelled one) and
        build the label space from them."""
        maps = []
        for s in sources:
            lab = s.labels()
            if lab is None:
                raise AliseError(f"{s.path}: no labels ({command} needs labels.tif, labels/YYYY.tif or PASTIS annotations)")
            maps.append(lab)
        return cls.from_sources(sources, maps)

    def targets(self, raw: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Loss targets: raw ids → ``(h, w)`` int64, ``IGNORE_INDEX`` where ignored, unknown or outside ``mask``."""
        t = np.asarray(raw, dtype=np.int64).copy()
        bad = (t < 0) | (t >= self.num_classes) | np.isin(t, self.ignore)
        unknown = (t >= self.num_classes) & ~np.isin(t, self.ignore)
        if unknown.any():
            raise AliseError(f"label id {int(t[unknown].max())} is not a known class (0–{self.num_classes - 1}); "
                             "list it in classes.csv")
        if mask is not None:
            bad |= ~mask
        t[bad] = IGNORE_INDEX
        return t

    def truth(self, raw: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Metric truth: raw ids, ``-1`` outside ``mask`` (metrics skip negatives and ``ignore``)."""
        t = np.asarray(raw, dtype=np.int64).copy()
        if mask is not None:
            t[~mask] = -1
        return t




@dataclass
class ProbeParts:
    """What a model brings to the :class:`Probe` (see the module docstring).

    Frozen: ``features`` (``get(i) → (F, H, W)`` and ``window(i, (r, c, h, w)) → (F, h, w)``)
    and ``head`` (``forward_flat((N, F)) → (N, K)``, ``fit_standardisation((N, F))``,
    ``regularised()``). End to end: ``network`` (``(x (B, T, C, H, W), days (B, T), valid (B, T))
    → (B, K, H, W)``), ``store`` (:class:`alise.downstream.features.SITSStore`) and ``multiple``
    (the side multiple the network needs). ``trainable``: the parameters that train (default:
    all of the head's or the network's).
    """

    head: nn.Module | None = None
    features: object | None = None
    network: nn.Module | None = None
    store: object | None = None
    multiple: int = 1
    trainable: list | None = None

    def __post_init__(self):
        frozen, e2e = self.features is not None, self.network is not None
        if frozen == e2e or (frozen and self.head is None) or (e2e and self.store is None):
            raise ValueError("ProbeParts: give features + head (frozen) or network + store (end to end)")

    @property
    def frozen(self) -> bool:
        return self.features is not None


@dataclass
class ProbeResult:
    """Outcome of one run: test metrics, the fit report (solver, how it stopped, loss curve) and
    the test predictions."""

    metrics: dict
    fit: FitReport
    trainable_parameters: int
    predictions: list[tuple[Item, np.ndarray, np.ndarray]]  # (item, pred (h, w), truth (h, w))

    @property
    def history(self) -> list[dict]:
        return self.fit.history


class Probe:
    """Train on ``run.train``, select on ``run.val``, evaluate on ``run.test`` (module docstring).

    Args:
        sources: the task's :class:`alise.data.source.SITSSource` objects (labels, grids).
        labels: the :class:`LabelSpace`.
        cfg: :class:`ProbeConfig`.
        parts: :class:`ProbeParts` of the model under test (never modified outside ``parts``).
    """

    def __init__(self, sources, labels: LabelSpace, cfg: ProbeConfig, parts: ProbeParts):
        self.sources, self.labels, self.cfg, self.parts = list(sources), labels, cfg, parts
        module = parts.head if parts.frozen else parts.network
        self.trainable = list(parts.trainable) if parts.trainable is not None else \
            [p for p in module.parameters() if p.requires_grad]
        self.rng = np.random.default_rng(cfg.seed)
        self._labels: dict[int, np.ndarray] = {}

    # ---------------------------------------------------------------- data
    def raw_labels(self, i: int, window) -> np.ndarray:
        """``(h, w)`` raw class ids of ``window`` of source ``i`` (each source read once)."""
        if i not in self._labels:
            self._labels[i] = np.asarray(self.sources[i].labels(), dtype=np.int64)
        r, c, h, w = window
        return self._labels[i][r:r + h, c:c + w]

    def _targets(self, it: Item) -> np.ndarray:
        return self.labels.targets(self.raw_labels(it.source, it.window), it.mask)

    def _table(self, items: list[Item], limit: int | None = None) -> tuple[Tensor, Tensor]:
        """Labelled pixels of ``items``: features ``(N, F)`` float32 and targets ``(N,)`` int64
        (at most ``limit`` pixels, drawn at random, when given)."""
        xs, ys = [], []
        for it in items:
            tgt = self._targets(it)
            keep = tgt != IGNORE_INDEX
            if not keep.any():
                continue
            f = self.parts.features.window(it.source, it.window)  # (F, h, w)
            xs.append(f[:, torch.from_numpy(keep)].T)
            ys.append(torch.from_numpy(tgt[keep]))
        if not xs:
            return torch.zeros(0, 0), torch.zeros(0, dtype=torch.int64)
        x, y = torch.cat(xs), torch.cat(ys)
        if limit is not None and x.shape[0] > limit:
            pick = torch.from_numpy(np.sort(self.rng.choice(x.shape[0], limit, replace=False)))
            x, y = x[pick], y[pick]
        return x, y

    def _n_labelled(self, items: list[Item]) -> int:
        return int(sum((self._targets(it) != IGNORE_INDEX).sum() for it in items))

    # ---------------------------------------------------------------- forward passes
    def logits(self, i: int, window) -> Tensor:
        """``(K, h, w)`` logits of ``window`` of source ``i`` (current weights, no gradient)."""
        from einops import rearrange

        with torch.inference_mode():
            if self.parts.frozen:
                f = self.parts.features.window(i, window)  # (F, h, w)
                head = self.parts.head
                out = head.forward_flat(rearrange(f, "f h w -> (h w) f").to(_dtype_of(head)))
                return rearrange(out.float(), "(h w) k -> k h w", h=f.shape[1], w=f.shape[2])
            from alise.encode.array import encode_array

            net = self.parts.network
            net.eval()
            s = self.parts.store.read(i, window)
            return encode_array(net, s.x, s.days, forward=lambda x, d, v, **_: net(x, d, v),
                                multiple=self.parts.multiple)

    def evaluate(self, items: list[Item]) -> dict:
        """Loss, metrics and predictions on ``items``: ``{"loss", "macro_f1", "metrics", "predictions"}``."""
        from alise.metrics import segmentation_metrics

        loss_sum, n, preds, truths, out = 0.0, 0, [], [], []
        for it in items:
            logits = self.logits(it.source, it.window)  # (K, h, w)
            tgt = torch.from_numpy(self._targets(it))
            keep = tgt != IGNORE_INDEX
            if keep.any():
                from alise.downstream.solvers import _masked_ce

                m = int(keep.sum())
                loss_sum += float(_masked_ce(logits[:, keep].T, tgt[keep])) * m
                n += m
            pred = logits.argmax(0).numpy()
            truth = self.labels.truth(self.raw_labels(it.source, it.window), it.mask)
            preds.append(pred.ravel())
            truths.append(truth.ravel())
            out.append((it, pred, truth))
        metrics = segmentation_metrics(np.concatenate(truths), np.concatenate(preds), self.labels.num_classes,
                                       ignore=self.labels.ignore, class_names=self.labels.class_names)
        return {"loss": loss_sum / max(n, 1), "macro_f1": metrics["macro_f1"], "metrics": metrics,
                "predictions": out}

    def predict(self, i: int) -> np.ndarray:
        """``(H, W)`` class map of the whole source ``i`` with the selected weights."""
        g = self.sources[i].grid
        return self.logits(i, (0, 0, g.height, g.width)).argmax(0).numpy()

    # ---------------------------------------------------------------- training
    def solver(self, run: Run) -> str:
        """The solver used for ``run``: ``cfg.solver``, or for ``auto`` L-BFGS for a linear head whose
        training table fits in memory, ``adam`` over pixels otherwise (larger tables, non-linear
        heads such as U-BARN's shallow classifier); ``paper`` for end-to-end training."""
        if not self.parts.frozen:
            return "paper"
        if self.cfg.solver != "auto":
            return self.cfg.solver
        from alise.downstream.heads import LinearProbe

        if not isinstance(self.parts.head, LinearProbe):
            return "adam"  # a non-convex head (U-BARN's shallow classifier): gradient steps, early stopping
        n = self._n_labelled(run.train) + self._n_labelled(run.val)
        f = int(self.parts.features.get(run.train[0].source).shape[0])
        return "lbfgs" if n * f * 8 <= LBFGS_TABLE_BYTES else "adam"

    def fit(self, run: Run, progress: bool = True) -> ProbeResult:
        """Fit on ``run.train`` (model selection on ``run.val``), evaluate on ``run.test``."""
        if not run.train or not run.val or not run.test:
            raise AliseError(f"run {run.name}: train, validation and test splits must all be non-empty")
        if self._n_labelled(run.train) == 0:
            raise AliseError(f"run {run.name}: no labelled training pixel (check labels and split)")
        torch.manual_seed(self.cfg.seed)
        solver = self.solver(run)
        desc = f"{self.cfg.mode} {run.name}"
        if solver == "lbfgs":
            report = self._fit_lbfgs(run)
        elif solver == "adam":
            report = self._fit_pixels(run, progress, desc)
        elif self.parts.frozen:
            report = self._fit_tiles(run, progress, desc)
        else:
            report = self._fit_end_to_end(run, progress, desc)
        test = self.evaluate(run.test)
        return ProbeResult(test["metrics"], report, int(sum(p.numel() for p in self.trainable)), test["predictions"])

    def _prepare_head(self, x: Tensor, y: Tensor) -> None:
        prepare_head(self.parts.head, x, y)

    def _fit_lbfgs(self, run: Run) -> FitReport:
        return fit_lbfgs_head(self.parts.head, self._table(run.train), self._table(run.val), self.labels, self.cfg)

    def _loop(self, lr: float, steps: int, eval_every: int, patience: int, weight_decay: float = 0.0) -> LoopConfig:
        c = self.cfg
        return LoopConfig(lr=lr, steps=steps, eval_every=eval_every, patience=patience, lr_patience=c.lr_patience,
                          lr_factor=c.lr_factor, min_lr=c.min_lr, weight_decay=weight_decay)

    def _state_fns(self, module: nn.Module):
        return (lambda: copy.deepcopy(module.state_dict())), module.load_state_dict

    def _fit_pixels(self, run: Run, progress: bool, desc: str) -> FitReport:
        """Mini-batch Adam over the labelled training pixels (``batch_pixels`` rows per step)."""
        c, head = self.cfg, self.parts.head
        x, y = self._table(run.train)
        self._prepare_head(x[: 1 << 18], y)
        n = x.shape[0]

        def step_loss(step: int):
            idx = torch.from_numpy(self.rng.integers(0, n, min(c.batch_pixels, n)))
            return F.cross_entropy(head.forward_flat(x[idx]), y[idx], reduction="sum"), idx.numel()

        def evaluate():
            return self.evaluate(run.val)

        wd = 0.0 if c.Cs == C_GRID else 1.0 / (c.Cs[0] * n)
        state, load = self._state_fns(head)
        return fit_minibatch(self.trainable, step_loss, evaluate, state, load,
                             self._loop(c.lr or 1e-3, c.steps, c.eval_every, c.patience_steps, wd),
                             solver="adam", progress=progress, desc=desc)

    def _fit_tiles(self, run: Run, progress: bool, desc: str) -> FitReport:
        """The paper's protocol on frozen features: epochs over crop-size tiles, ``batch_size`` tiles
        per step, Adam 1e-4 + ReduceLROnPlateau, patience in epochs ([P] §IV-B-1)."""
        c, head = self.cfg, self.parts.head
        tiles = []
        for it in run.train:
            r0, c0, h, w = it.window
            for r in range(0, h, c.crop):
                for q in range(0, w, c.crop):
                    sub = Item(it.source, (r0 + r, c0 + q, min(c.crop, h - r), min(c.crop, w - q)),
                               _sub_mask(it, (r0 + r, c0 + q, min(c.crop, h - r), min(c.crop, w - q))))
                    tiles.append(sub)
        x, y = self._table(run.train, limit=1 << 18)
        self._prepare_head(x, y)
        spe = math.ceil(len(tiles) / c.batch_size)
        order: list[int] = []

        def step_loss(step: int):
            nonlocal order
            if step % spe == 0:
                order = self.rng.permutation(len(tiles)).tolist()
            k = step % spe
            xb, yb = self._table([tiles[j] for j in order[k * c.batch_size:(k + 1) * c.batch_size]])
            if yb.numel() == 0:
                return None, 0
            return F.cross_entropy(head.forward_flat(xb), yb, reduction="sum"), yb.numel()

        state, load = self._state_fns(head)
        return fit_minibatch(self.trainable, step_loss, lambda: self.evaluate(run.val), state, load,
                             self._loop(c.lr or 1e-4, c.epochs * spe, spe, c.patience * spe),
                             solver="paper", progress=progress, desc=desc)

    def _fit_end_to_end(self, run: Run, progress: bool, desc: str) -> FitReport:
        """ft/fs: random crops centred on labelled training pixels, at least ``min_steps_per_epoch``
        steps per epoch, the paper's optimiser, early stopping counted in steps."""
        from alise.encode.array import extend
        from alise.encode.tiling import padded_size

        c, net, store = self.cfg, self.parts.network, self.parts.store
        pools = []  # (item, (n, 2) labelled coordinates inside the item's window)
        for it in run.train:
            rr, cc = np.nonzero(self._targets(it) != IGNORE_INDEX)
            if rr.size:
                pools.append((it, np.stack([rr, cc], 1)))
        weights = np.array([len(p[1]) for p in pools], dtype=np.float64)
        area = sum(it.window[2] * it.window[3] for it in run.train)
        spe = max(c.min_steps_per_epoch, math.ceil(area / (c.crop * c.crop) / c.batch_size))

        def crop_window(it: Item, rc) -> tuple[int, int, int, int]:
            r0, c0, h, w = it.window
            g = self.sources[it.source].grid
            ch, cw = min(c.crop, g.height), min(c.crop, g.width)
            top = int(np.clip(r0 + rc[0] - ch // 2, 0, g.height - ch))
            left = int(np.clip(c0 + rc[1] - cw // 2, 0, g.width - cw))
            return top, left, ch, cw

        def crop_targets(it: Item, win) -> np.ndarray:
            """Targets of ``win``: labelled pixels of the item's split only."""
            r, q, h, w = win
            raw = self.raw_labels(it.source, win)
            inside = np.zeros(raw.shape, dtype=bool)
            r0, c0, ih, iw = it.window
            a0, a1 = max(r, r0), min(r + h, r0 + ih)
            b0, b1 = max(q, c0), min(q + w, c0 + iw)
            if a0 < a1 and b0 < b1:
                m = np.ones((a1 - a0, b1 - b0), bool) if it.mask is None else it.mask[a0 - r0:a1 - r0, b0 - c0:b1 - c0]
                inside[a0 - r:a1 - r, b0 - q:b1 - q] = m
            return self.labels.targets(raw, inside)

        def step_loss(step: int):
            total, n = None, 0
            for _ in range(c.batch_size):
                k = int(self.rng.choice(len(pools), p=weights / weights.sum()))
                it, coords = pools[k]
                win = crop_window(it, coords[int(self.rng.integers(len(coords)))])
                tgt = torch.from_numpy(crop_targets(it, win))
                s = store.read(it.source, win)
                h, w = tgt.shape
                m = self.parts.multiple
                x = extend(s.x, padded_size(h, m), padded_size(w, m))
                valid = torch.ones(1, s.days.shape[0], dtype=torch.bool)
                logits = net(x.unsqueeze(0), s.days.view(1, -1), valid)[..., :h, :w]  # (1, K, h, w)
                loss = F.cross_entropy(logits, tgt.unsqueeze(0), ignore_index=IGNORE_INDEX, reduction="sum")
                total = loss if total is None else total + loss
                n += int((tgt != IGNORE_INDEX).sum())
            return total, n

        state, load = self._state_fns(net)
        loop = self._loop(c.lr or 1e-4, c.epochs * spe, spe, c.patience * spe)

        def announce(sec: float) -> None:
            lo, hi = min(loop.patience, loop.steps), loop.steps
            span = f"{hi:,} steps (≈ {_duration(hi * sec)})" if lo == hi else \
                f"{lo:,} to {hi:,} steps (≈ {_duration(lo * sec)} to {_duration(hi * sec)})"
            print(f"alise: {desc or 'end-to-end training'}: {sec:.2f} s a step; this run stops after {span}; "
                  "--epochs, --patience and --crop bound it", file=sys.stderr, flush=True)

        return fit_minibatch(self.trainable, step_loss, lambda: self.evaluate(run.val), state, load, loop,
                             solver="paper", train_mode=net.train, progress=progress, desc=desc, announce=announce)


def _duration(seconds: float) -> str:
    """``"40 s"``, ``"12 min"`` or ``"2.5 h"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def prepare_head(head: nn.Module, x: Tensor, y: Tensor) -> None:
    """Fit the head's standardisation on training features ``x (N, F)`` and mark the classes of
    ``y (N,)`` as the ones it can predict."""
    head.fit_standardisation(x.to(_dtype_of(head)))
    if hasattr(head, "active"):
        active = torch.zeros_like(head.active)
        active[torch.unique(y)] = True
        head.active.copy_(active)


def fit_lbfgs_head(head: nn.Module, train: tuple[Tensor, Tensor], val: tuple[Tensor, Tensor], labels: LabelSpace,
                   cfg: ProbeConfig) -> FitReport:
    """The ``lbfgs`` solver on pixel tables ``(x (N, F), y (N,))``: standardisation from ``train``,
    float64 L-BFGS for each ``cfg.Cs``, the C with the best validation macro-F1 kept (in place)."""
    from alise.metrics import segmentation_metrics

    def score(y: Tensor, logits: Tensor) -> float:
        return segmentation_metrics(y.numpy(), logits.argmax(1).numpy(), labels.num_classes,
                                    ignore=labels.ignore)["macro_f1"]

    head.double()  # float64: the gradient tolerance means what it says
    x, y = train[0].double(), train[1]
    xv = val[0].double()
    prepare_head(head, x, y)
    forward = None
    if hasattr(head, "standardised_logits"):
        # Standardise the tables once instead of at each of the hundreds of evaluations (half their
        # cost); the head keeps its statistics and applies them to new features as before.
        with torch.no_grad():
            x, xv = head.standardise(x), head.standardise(xv)
        forward = head.standardised_logits
    report = fit_lbfgs(head, (x, y), (xv, val[1]), score, cfg.Cs, cfg.max_iter, cfg.tol, forward=forward)
    head.float()
    return report


def alise_parts(model, mode: str, num_classes: int, store, features=None, min_clear: float | None = None) -> ProbeParts:
    """ALISE^LP / FT / FS ([P] Table II) as :class:`ProbeParts`.

    ``lp``: frozen embeddings ``(Q·D, H, W)`` (``features``, default a new
    :class:`~alise.downstream.features.FeatureCache`) and ``Linear(Q·D → K)``; ``ft``: a copy of
    ``model`` + that head, trained end to end; ``fs``: the same architecture freshly initialised
    (``model`` gives configuration and normalisation only). Seed the generator before calling.
    End to end, the network reads the dates at least ``min_clear`` clear (default: the model's
    ``input_min_clear``, as the frozen features): what the model was pre-trained on, and fewer
    dates per step.
    """
    from alise.downstream.features import FeatureCache
    from alise.downstream.heads import LinearProbe, SegmentationModel
    from alise.model.network import ALISE

    c = model.config
    head = LinearProbe(c.n_q, c.d_model, num_classes)
    if mode == "lp":
        return ProbeParts(head=head, features=features if features is not None else FeatureCache(model, store))
    encoder = copy.deepcopy(model) if mode == "ft" else ALISE(c, norm=model.norm)
    net = SegmentationModel(encoder, head)
    mc = getattr(model, "input_min_clear", 0.0) if min_clear is None else min_clear
    return ProbeParts(network=net, store=store.clear_dates(mc), multiple=c.multiple,
                      trainable=net.trainable_parameters())


def _dtype_of(module: nn.Module) -> torch.dtype:
    return next(module.parameters()).dtype


def _sub_mask(item: Item, win) -> np.ndarray | None:
    """The split mask of ``item`` restricted to the sub-window ``win``."""
    if item.mask is None:
        return None
    r, c, h, w = win
    return item.mask[r - item.window[0]: r - item.window[0] + h, c - item.window[1]: c - item.window[1] + w]
