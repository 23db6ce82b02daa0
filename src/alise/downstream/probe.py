"""Downstream segmentation: linear probing, fine-tuning, training from scratch ([P] §IV-B-1, Table II–III).

One per-pixel linear head on the aligned representation (:mod:`alise.downstream.heads`), three
configurations:

* ``lp`` — frozen pre-trained encoder (eval mode, no gradient). Embeddings of every source are
  computed once (:class:`alise.downstream.features.FeatureCache`) and the head trains on the cache.
* ``ft`` — encoder initialised from the pre-trained model, trained end to end with the head.
* ``fs`` — same architecture from a random initialisation (the model only gives config + normalisation).

Protocol ([P] §IV-B-1; REFERENCE §7): Adam, lr 1e-4; ReduceLROnPlateau(patience 10, factor 0.05,
min lr 1e-6) on the validation loss; cross-entropy with ``ignore_index`` on unlabeled pixels;
model selection by validation macro-F1 (best epoch kept, early stop after ``patience`` epochs
without improvement). FT/FS train on random ``crop × crop`` (64) windows, ``batch_size`` (2)
per step; LP trains on the cached embeddings of the same ``crop × crop`` tiles. Evaluation uses
the windows of the run (centre 64 × 64 crops for PASTIS, the full raster for block splits).

Shapes: ``K`` classes; a window is ``(row, col, h, w)``; label maps ``(h, w)`` int64.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from alise.downstream.features import FeatureCache, SITSStore, encode_sits, multiple_of
from alise.downstream.heads import MODES, LinearProbe, SegmentationModel, count_parameters
from alise.encode.array import extend
from alise.encode.tiling import padded_size
from alise.errors import AliseError

#: Target value of pixels the loss ignores.
IGNORE_INDEX = -100


@dataclass(frozen=True)
class ProbeConfig:
    """Training hyper-parameters; defaults are the paper's ([P] §IV-B-1) and REFERENCE §7."""

    mode: str = "lp"
    epochs: int = 120
    lr: float = 1e-4
    batch_size: int = 2
    patience: int = 20
    lr_patience: int = 10
    lr_factor: float = 0.05
    min_lr: float = 1e-6
    crop: int = 64
    seed: int = 0

    def __post_init__(self):
        if self.mode not in MODES:
            raise AliseError(f"unknown probe mode {self.mode!r}: choose one of {', '.join(MODES)}")
        for name in ("epochs", "batch_size", "patience", "crop"):
            if getattr(self, name) <= 0:
                raise AliseError(f"--{name.replace('_', '-')} must be > 0 (got {getattr(self, name)})")
        if not self.lr > 0:
            raise AliseError(f"--lr must be > 0 (got {self.lr})")


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
class ProbeResult:
    """Outcome of one run: test metrics, training history, and the test predictions."""

    metrics: dict
    history: list[dict]
    best_epoch: int
    trainable_parameters: int
    predictions: list[tuple[Item, np.ndarray, np.ndarray]]  # (item, pred (h, w), truth (h, w))


class Probe:
    """Head (+ encoder for ft/fs) for one run; see the module docstring for the protocol.

    Args:
        model: the pre-trained ALISE model (never modified: ft/fs work on copies).
        store: :class:`SITSStore` over the task's sources.
        labels: the :class:`LabelSpace`.
        cfg: :class:`ProbeConfig`.
        cache: shared :class:`FeatureCache` (LP only; reused across runs so each source is encoded once).
    """

    def __init__(self, model, store: SITSStore, labels: LabelSpace, cfg: ProbeConfig, cache: FeatureCache | None = None):
        from alise.model import ALISE

        self.store, self.labels, self.cfg = store, labels, cfg
        torch.manual_seed(cfg.seed)
        c = model.config
        self.head = LinearProbe(c.n_q, c.d_model, labels.num_classes)
        if cfg.mode == "lp":
            self.encoder = model
            self.cache = cache if cache is not None else FeatureCache(model, store)
            self.params = list(self.head.parameters())
        else:
            self.encoder = copy.deepcopy(model) if cfg.mode == "ft" else ALISE(c, norm=model.norm)
            self.cache = None
            self.net = SegmentationModel(self.encoder, self.head)
            self.params = self.net.trainable_parameters()
        self.multiple = multiple_of(model)
        self.rng = np.random.default_rng(cfg.seed)
        self._masks: dict = {}

    # ---------------------------------------------------------------- forward passes
    def logits(self, i: int, window) -> Tensor:
        """``(K, h, w)`` logits of ``window`` of source ``i`` (current weights, no gradient)."""
        with torch.inference_mode():
            if self.cfg.mode == "lp":
                f = self.cache.window(i, window)  # (Q·D, h, w)
            else:
                self.encoder.eval()
                f = encode_sits(self.encoder, self.store.read(i, window))
            return self.head(f.unsqueeze(0))[0]

    def _train_loss(self, units: list[tuple[int, tuple]]) -> tuple[Tensor | None, int]:
        """Summed cross-entropy over a batch of ``(source, window)`` units and its labelled-pixel count."""
        total, n = None, 0
        for i, win in units:
            raw = self.store.read(i, win).labels.numpy()
            mask = self._unit_mask(i, win)
            tgt = torch.from_numpy(self.labels.targets(raw, mask))
            if not (tgt != IGNORE_INDEX).any():
                continue
            if self.cfg.mode == "lp":
                f = self.cache.window(i, win)  # (Q·D, h, w)
                keep = tgt != IGNORE_INDEX
                logits = self.head.forward_flat(f[:, keep].T)  # (N, K)
                loss = F.cross_entropy(logits, tgt[keep], reduction="sum")
            else:
                s = self.store.read(i, win)
                h, w = tgt.shape
                m = self.multiple  # reflect-extended to the UNet's multiple, as in encode_sits
                x = extend(s.x, padded_size(h, m), padded_size(w, m))
                days, valid = s.days.view(1, -1), torch.ones(1, s.days.shape[0], dtype=torch.bool)
                logits = self.net(x.unsqueeze(0), days, valid)[..., :h, :w]  # (1, K, h, w)
                loss = F.cross_entropy(logits, tgt.unsqueeze(0), ignore_index=IGNORE_INDEX, reduction="sum")
            total = loss if total is None else total + loss
            n += int((tgt != IGNORE_INDEX).sum())
        return total, n

    # ---------------------------------------------------------------- training
    def _units(self, items: list[Item]) -> list[tuple[int, tuple, Item]]:
        """Training units of an epoch: LP = all crop-size tiles; FT/FS = random crops (1 per source,
        or one per crop² of area for rasters larger than 4 crops)."""
        c = self.cfg.crop
        out = []
        for it in items:
            r0, c0, h, w = it.window
            if self.cfg.mode == "lp":
                for r in range(0, h, c):
                    for q in range(0, w, c):
                        out.append((it.source, (r0 + r, c0 + q, min(c, h - r), min(c, w - q)), it))
            else:
                ch, cw = min(c, h), min(c, w)
                n = 1 if h * w <= 4 * c * c else math.ceil(h * w / (c * c))
                for _ in range(n):
                    r, q = int(self.rng.integers(0, h - ch + 1)), int(self.rng.integers(0, w - cw + 1))
                    out.append((it.source, (r0 + r, c0 + q, ch, cw), it))
        return out

    def _unit_mask(self, i: int, win) -> np.ndarray | None:
        return self._masks.get((i, tuple(win)))

    def fit(self, run: Run, progress: bool = True) -> ProbeResult:
        """Train on ``run.train``, select on ``run.val``, evaluate on ``run.test``."""
        from tqdm.auto import tqdm

        cfg = self.cfg
        if not run.train or not run.val or not run.test:
            raise AliseError(f"run {run.name}: train, validation and test splits must all be non-empty")
        opt = torch.optim.Adam(self.params, lr=cfg.lr)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=cfg.lr_factor,
                                                           patience=cfg.lr_patience, min_lr=cfg.min_lr)
        best = (-1.0, 0, self._state())
        history, bad = [], 0
        bar = tqdm(range(1, cfg.epochs + 1), desc=f"{cfg.mode} {run.name}", unit="epoch", disable=not progress,
                   leave=False)
        for epoch in bar:
            units = self._units(run.train)
            self._masks = {(i, tuple(w)): _sub_mask(it, w) for i, w, it in units}
            order = self.rng.permutation(len(units))
            if self.cfg.mode != "lp":
                self.encoder.train()
            losses, n_pix = 0.0, 0
            for s in range(0, len(order), cfg.batch_size):
                batch = [units[k][:2] for k in order[s:s + cfg.batch_size]]
                loss, n = self._train_loss(batch)
                if loss is None:
                    continue
                opt.zero_grad(set_to_none=True)
                (loss / n).backward()
                opt.step()
                losses, n_pix = losses + float(loss.detach()), n_pix + n
            if n_pix == 0:
                raise AliseError(f"run {run.name}: no labelled training pixel (check labels and split)")
            val = self.evaluate(run.val)
            sched.step(val["loss"])
            history.append({"epoch": epoch, "train_loss": losses / n_pix, "val_loss": val["loss"],
                            "val_macro_f1": val["metrics"]["macro_f1"], "lr": opt.param_groups[0]["lr"]})
            bar.set_postfix(val_f1=f"{val['metrics']['macro_f1']:.3f}")
            if val["metrics"]["macro_f1"] > best[0]:
                best, bad = (val["metrics"]["macro_f1"], epoch, self._state()), 0
            else:
                bad += 1
                if bad >= cfg.patience:
                    break
        self._load_state(best[2])
        test = self.evaluate(run.test)
        return ProbeResult(test["metrics"], history, best[1], count_parameters(self.params), test["predictions"])

    def _state(self) -> dict:
        mod = self.head if self.cfg.mode == "lp" else self.net
        return copy.deepcopy(mod.state_dict())

    def _load_state(self, state: dict) -> None:
        (self.head if self.cfg.mode == "lp" else self.net).load_state_dict(state)

    # ---------------------------------------------------------------- evaluation
    def evaluate(self, items: list[Item]) -> dict:
        """Loss, metrics and predictions on ``items``: ``{"loss", "metrics", "predictions"}``."""
        from alise.metrics import segmentation_metrics

        loss_sum, n, preds, truths, out = 0.0, 0, [], [], []
        for it in items:
            logits = self.logits(it.source, it.window)  # (K, h, w)
            raw = self.store.read(it.source, it.window).labels.numpy()
            tgt = torch.from_numpy(self.labels.targets(raw, it.mask))
            keep = tgt != IGNORE_INDEX
            if keep.any():
                loss_sum += float(F.cross_entropy(logits[:, keep].T, tgt[keep], reduction="sum"))
                n += int(keep.sum())
            pred = logits.argmax(0).numpy()
            truth = self.labels.truth(raw, it.mask)
            preds.append(pred.ravel())
            truths.append(truth.ravel())
            out.append((it, pred, truth))
        metrics = segmentation_metrics(np.concatenate(truths), np.concatenate(preds), self.labels.num_classes,
                                       ignore=self.labels.ignore, class_names=self.labels.class_names)
        return {"loss": loss_sum / max(n, 1), "metrics": metrics, "predictions": out}

    def predict(self, i: int) -> np.ndarray:
        """``(H, W)`` class map of the whole source ``i`` with the selected weights."""
        g = self.store.sources[i].grid
        return self.logits(i, (0, 0, g.height, g.width)).argmax(0).numpy()


def _sub_mask(item: Item, win) -> np.ndarray | None:
    """The split mask of ``item`` restricted to the sub-window ``win``."""
    if item.mask is None:
        return None
    r, c, h, w = win
    return item.mask[r - item.window[0]: r - item.window[0] + h, c - item.window[1]: c - item.window[1] + w]
