"""The models of ``alise compare`` ([P] Table II): one registry entry per model kind.

Every kind is trained and evaluated by the same :class:`alise.downstream.probe.Probe` — same
splits (:func:`alise.commands.probe.build_runs`), solvers, loss and metric (macro-F1 over the
labelled classes, background/void ignored). An entry of :data:`REGISTRY` says what the kind is
(its row of Table II, frozen or trained end to end, which pre-trained model it needs) and how to
build its :class:`~alise.downstream.probe.ProbeParts`:

============ ============ ====================================================================
kind         trains       parts
============ ============ ====================================================================
alise-lp     frozen       ALISE embeddings Y (Q·D) → Linear(Q·D → K)
alise-ft/fs  end to end   ALISE encoder + that head (fine-tuned / from a fresh initialisation)
ubarn-fr     frozen       per-date U-BARN features → U-BARN's shallow classifier (13.8K)
ubarn-ft/fs  end to end   U-Net + Transformer + shallow classifier
utae         end to end   U-TAE from scratch
presto-lp    frozen       Presto mean embedding (128) of monthly median composites → Linear
gf-lp        frozen       series gap-filled on a 5-day grid (G·C) → Linear
median-lp    frozen       monthly median composites of clear pixels (M·C) → Linear
============ ============ ====================================================================

Adding a kind: one :class:`ModelKind` in :data:`REGISTRY` and its builder (and a row in
:data:`alise.compare.table.PAPER`). Frozen features are computed once per task and shared by all
runs (:meth:`Task.features`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from einops import rearrange
from torch import Tensor, nn

from alise.model.config import ALISEConfig
from alise.downstream.heads import LinearProbe, count_parameters
from alise.downstream.probe import ProbeParts
from alise.errors import AliseError

PAPER_WIDTHS = ((64, 64, 64, 128), (32, 32, 64, 128))


@dataclass
class Task:
    """Everything a builder needs: sources, label space, runs, protocol, and the models to reuse."""

    sources: list
    labels: object  # alise.downstream.probe.LabelSpace
    runs: list  # [alise.downstream.probe.Run]
    probe: object  # alise.downstream.probe.ProbeConfig (mode is set per kind)
    norm: object  # NormStats of the data, for models trained from scratch
    config: ALISEConfig = field(default_factory=ALISEConfig)
    alise: object = None  # pre-trained ALISE (alise-lp/ft)
    ubarn: object = None  # pre-trained UBARN (ubarn-fr/ft)
    progress: bool = False
    min_clear: float = 0.0  # dates read by the models trained from scratch (0: every date)
    _stores: dict = field(default_factory=dict)
    _features: dict = field(default_factory=dict)

    def store(self, norm):
        """The :class:`~alise.downstream.features.SITSStore` of the sources under ``norm`` (one per norm)."""
        from alise.downstream.features import SITSStore

        if norm not in self._stores:
            self._stores[norm] = SITSStore(self.sources, norm)
        return self._stores[norm]

    def features(self, key: str, make: Callable[[], object]):
        """The frozen feature source ``key``, built once by ``make()`` and shared by every run."""
        if key not in self._features:
            self._features[key] = make()
        return self._features[key]


@dataclass(frozen=True)
class ModelKind:
    """One model of the comparison.

    Attributes:
        name: the ``--models`` key.
        row: its row in [P] Table II (or the closest).
        mode: ``lp`` (frozen features + head), ``ft`` (pre-trained, end to end) or ``fs`` (from scratch).
        pretrained: which pre-trained model it needs: ``"alise"``, ``"ubarn"``, ``"presto"``
            (published weights, shipped) or None.
        build: ``build(task) → ProbeParts`` for one run (fresh trainable parts every call).
        count: ``count(config, num_classes) → int`` trainable parameters, without data.
    """

    name: str
    row: str
    mode: str
    pretrained: str | None
    build: Callable[[Task], ProbeParts]
    count: Callable[[ALISEConfig, int], int]


@dataclass
class ModelRun:
    """Results of one model kind: ``(Run, ProbeResult)`` per run and its trainable parameters."""

    kind: str
    results: list
    trainable_parameters: int
    details: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------- networks
class UBarnSegmenter(nn.Module):
    """U-BARN^FT/FS: U-Net + Transformer + shallow classifier, ``(x, days, valid) → (B, K, H, W)``."""

    def __init__(self, ubarn, num_classes: int):
        super().__init__()
        from alise.baselines import UBarnShallowClassifier

        self.ubarn = ubarn
        self.sc = UBarnShallowClassifier(ubarn.config.d_model, num_classes)

    def forward(self, x: Tensor, days: Tensor, valid_dates: Tensor) -> Tensor:
        return self.sc(self.ubarn.sste(x, days, valid_dates), valid_dates)

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The encoder path (no reconstruction head) and the classifier."""
        mods = {**self.ubarn.encoder_modules(), "sc": self.sc}
        return [p for m in mods.values() for p in m.parameters()]


def build_utae(config: ALISEConfig, num_classes: int) -> nn.Module:
    """U-TAE with the paper's widths, or widths scaled like a reduced ALISE ``config`` (L-TAE shrunk to match)."""
    from alise.baselines import UTAE

    enc, dec = tuple(config.encoder_widths), tuple(config.decoder_widths)
    if (enc, dec) == PAPER_WIDTHS:
        return UTAE(config.in_channels, num_classes)
    n_head = math.gcd(16, *enc)  # the attention groups split every skip width
    return UTAE(config.in_channels, num_classes, encoder_widths=enc, decoder_widths=dec, out_conv=(dec[0],),
                n_head=n_head, d_model=2 * enc[-1], mlp=(2 * enc[-1], enc[-1]))


# ---------------------------------------------------------------------------- frozen features
def ubarn_features(ubarn, store) -> tuple[Callable[[int], np.ndarray], int]:
    """``(fn, T_max)``: ``fn(i) -> (T_max·(1+D), H, W)`` frozen U-BARN features with a validity flag
    per date, of the dates clear enough for the model (its ``input_min_clear``, as ALISE's
    :class:`FeatureCache`); ``T_max`` is the most such dates of any source."""
    from alise.encode.array import encode_array

    ubarn = ubarn.eval()
    store = store.clear_dates(ubarn.alise.input_min_clear)
    t_max = max(store.n_dates(i) for i in range(len(store.sources)))

    def fn(i: int) -> np.ndarray:
        s = store.read(i)
        with torch.inference_mode():
            y = encode_array(ubarn, s.x, s.days, forward=lambda x, d, v, **_: ubarn.sste(x, d, v),
                             multiple=ubarn.config.multiple)  # (T, D, H, W)
        t, d, h, w = y.shape
        out = y.new_zeros((t_max, 1 + d, h, w))
        out[:t, 0] = 1.0
        out[:t, 1:] = y
        return rearrange(out, "t e h w -> (t e) h w").numpy()

    return fn, t_max


def presto_features(sources) -> Callable[[int], np.ndarray]:
    """``fn(i) -> (128, H, W)``: monthly median composites of clear pixels → frozen Presto → mean embedding.

    Presto accepts at most 24 months: longer series keep their last 24 months.
    """
    from alise.baselines import PrestoEncoder, monthly_median_composites
    from alise.baselines.presto import MAX_MONTHS

    enc = PrestoEncoder.from_pretrained().eval()

    def fn(i: int) -> np.ndarray:
        raw = sources[i].read()
        comp, month, comp_valid = monthly_median_composites(raw.dn, raw.days, raw.valid)
        comp, month, comp_valid = comp[-MAX_MONTHS:], month[-MAX_MONTHS:], comp_valid[-MAX_MONTHS:]
        with torch.inference_mode():
            return enc.encode_image(comp, month, comp_valid, centre_latlon(sources[i].grid)).numpy()

    return fn


def centre_latlon(grid) -> tuple[float, float] | None:
    """(lat, lon) in degrees of the grid centre, or None without georeferencing."""
    if grid.crs is None or grid.transform is None:
        return None
    from rasterio.warp import transform

    x, y = grid.transform @ (grid.width / 2, grid.height / 2)
    lon, lat = transform(grid.crs, "EPSG:4326", [x], [y])
    return (float(lat[0]), float(lon[0]))


def gf_grid(sources, step: float = 5.0) -> np.ndarray:
    """The 5-day grid over the data's period (first to last date of all sources), days since 2014-03-03."""
    from alise.baselines.gapfill import regular_grid

    return regular_grid(float(min(s.days[0] for s in sources)), float(max(s.days[-1] for s in sources)), step)


def gf_features_fn(store, grid: np.ndarray) -> Callable[[int], np.ndarray]:
    """``fn(i) -> (G·C, H, W)``: clear observations linearly interpolated on ``grid`` (normalised units)."""
    from alise.baselines.gapfill import gf_features

    def fn(i: int) -> np.ndarray:
        s = store.read(i)
        return gf_features(s.x[None], s.days, s.valid_pixels[None], grid)[0].numpy()

    return fn


def month_span(sources) -> tuple[int, int]:
    """First and last calendar month (months since January 2014) over all sources."""
    from alise.baselines.composites import calendar_months

    months = [calendar_months(torch.as_tensor(np.asarray(s.days, dtype=np.float64))) for s in sources]
    return int(min(int(m.min()) for m in months)), int(max(int(m.max()) for m in months))


def median_features_fn(sources, norm, span: tuple[int, int]) -> Callable[[int], np.ndarray]:
    """``fn(i) -> (M·C, H, W)``: monthly median composites of clear pixels on the common months
    ``span``, normalised like the model inputs; months without a clear observation are 0."""
    from alise.baselines.composites import calendar_months, monthly_median_composites

    first, last = span
    m_all = last - first + 1

    def fn(i: int) -> np.ndarray:
        raw = sources[i].read()
        comp, _, comp_valid = monthly_median_composites(raw.dn, raw.days, raw.valid)  # (M_i, C, H, W)
        start = int(calendar_months(torch.as_tensor(np.asarray(raw.days, dtype=np.float64))).min()) - first
        x = norm.apply(comp).numpy()
        x = np.where(comp_valid.numpy()[:, None], x, 0.0)
        out = np.zeros((m_all, *x.shape[1:]), np.float32)
        out[start:start + x.shape[0]] = x
        return out.reshape(-1, *x.shape[2:])

    return fn


# ---------------------------------------------------------------------------- builders
def _k(task: Task) -> int:
    return task.labels.num_classes


def _alise(mode: str) -> Callable[[Task], ProbeParts]:
    def build(task: Task) -> ProbeParts:
        from alise.downstream.features import FeatureCache
        from alise.downstream.probe import alise_parts
        from alise.model.network import ALISE

        if mode == "fs":
            model = task.alise if task.alise is not None else ALISE(task.config, task.norm)
        else:
            model = task.alise
        store = task.store(model.norm)
        feats = task.features("alise", lambda: FeatureCache(model, store)) if mode == "lp" else None
        return alise_parts(model, mode, _k(task), store, feats, min_clear=task.min_clear if mode == "fs" else None)

    return build


def _ubarn_fr(task: Task) -> ProbeParts:
    from alise.baselines import UBarnFeatureHead
    from alise.downstream.features import FeatureTable

    ub = task.ubarn
    feats = task.features("ubarn", lambda: FeatureTable(ubarn_features(ub, task.store(ub.norm))[0],
                                                        dtype=np.float16))
    return ProbeParts(head=UBarnFeatureHead(ub.config.d_model, _k(task)), features=feats)


def _ubarn_e2e(pretrained: bool) -> Callable[[Task], ProbeParts]:
    def build(task: Task) -> ProbeParts:
        from alise.baselines.ubarn import UBARN

        ub = copy.deepcopy(task.ubarn) if pretrained else UBARN(task.config, task.norm)
        net = UBarnSegmenter(ub, _k(task))
        dates = ub.alise.input_min_clear if pretrained else task.min_clear  # what it was pre-trained on
        return ProbeParts(network=net, store=task.store(ub.norm).clear_dates(dates), multiple=ub.config.multiple,
                          trainable=net.trainable_parameters())

    return build


def _utae(task: Task) -> ProbeParts:
    net = build_utae(task.config, _k(task))
    return ProbeParts(network=_UTAEForward(net), store=task.store(task.norm).clear_dates(task.min_clear),
                      multiple=task.config.multiple)


class _UTAEForward(nn.Module):
    """U-TAE as a probe network: ``(x, days, valid) → (B, K, H, W)``."""

    def __init__(self, utae: nn.Module):
        super().__init__()
        self.utae = utae

    def forward(self, x: Tensor, days: Tensor, valid_dates: Tensor) -> Tensor:
        return self.utae(x, days, valid_dates)


def _frozen_linear(key: str, make_fn: Callable[[Task], tuple[Callable[[int], np.ndarray], int]]):
    def build(task: Task) -> ProbeParts:
        from alise.downstream.features import FeatureTable

        fn, n = make_fn(task)
        feats = task.features(key, lambda: FeatureTable(fn))
        return ProbeParts(head=LinearProbe(1, n, _k(task)), features=feats)

    return build


def _presto_fn(task: Task):
    return presto_features(task.sources), 128


def _gf_fn(task: Task):
    grid = gf_grid(task.sources)
    return gf_features_fn(task.store(task.norm), grid), len(grid) * task.config.in_channels


def _median_fn(task: Task):
    span = month_span(task.sources)
    return median_features_fn(task.sources, task.norm, span), (span[1] - span[0] + 1) * task.config.in_channels


def _count_alise_ft(config: ALISEConfig, k: int) -> int:
    from alise.downstream.heads import SegmentationModel
    from alise.model.network import ALISE

    return count_parameters(SegmentationModel(ALISE(config), LinearProbe(config.n_q, config.d_model, k))
                            .trainable_parameters())


def _count_ubarn_ft(config: ALISEConfig, k: int) -> int:
    from alise.baselines.ubarn import UBARN

    return count_parameters(UBarnSegmenter(UBARN(config), k).trainable_parameters())


def _count_ubarn_fr(config: ALISEConfig, k: int) -> int:
    from alise.baselines import UBarnFeatureHead

    return count_parameters(UBarnFeatureHead(config.d_model, k))


REGISTRY: dict[str, ModelKind] = {m.name: m for m in (
    ModelKind("alise-lp", "ALISE^LP", "lp", "alise", _alise("lp"),
              lambda c, k: count_parameters(LinearProbe(c.n_q, c.d_model, k))),
    ModelKind("alise-ft", "ALISE^FT", "ft", "alise", _alise("ft"), _count_alise_ft),
    ModelKind("alise-fs", "ALISE^FS", "fs", None, _alise("fs"), _count_alise_ft),
    ModelKind("ubarn-fr", "U-BARN^FR", "lp", "ubarn", _ubarn_fr, _count_ubarn_fr),
    ModelKind("ubarn-ft", "U-BARN^FT", "ft", "ubarn", _ubarn_e2e(True), _count_ubarn_ft),
    ModelKind("ubarn-fs", "U-BARN^FS", "fs", None, _ubarn_e2e(False), _count_ubarn_ft),
    ModelKind("utae", "U-TAE", "fs", None, _utae, lambda c, k: count_parameters(build_utae(c, k))),
    ModelKind("presto-lp", "Presto^LP", "lp", "presto", _frozen_linear("presto", _presto_fn),
              lambda c, k: count_parameters(LinearProbe(1, 128, k))),
    ModelKind("gf-lp", "GF^LP", "lp", None, _frozen_linear("gf", _gf_fn),
              lambda c, k, dates=73: count_parameters(LinearProbe(1, dates * c.in_channels, k))),
    ModelKind("median-lp", "monthly medians^LP", "lp", None, _frozen_linear("median", _median_fn),
              lambda c, k, months=12: count_parameters(LinearProbe(1, months * c.in_channels, k))),
)}
KINDS: tuple[str, ...] = tuple(REGISTRY)

DETAILS = {
    "ubarn-fr": lambda task: f"{ubarn_features(task.ubarn, task.store(task.ubarn.norm))[1]} dates × "
                             f"(1 + {task.ubarn.config.d_model}) per pixel (float16)",
    "presto-lp": lambda task: "Presto mean embedding (128) of monthly median composites of clear pixels",
    "gf-lp": lambda task: f"{len(gf_grid(task.sources))} dates (5-day grid) × {task.config.in_channels} bands",
    "median-lp": lambda task: (f"{month_span(task.sources)[1] - month_span(task.sources)[0] + 1} monthly medians × "
                               f"{task.config.in_channels} bands"),
}


# ---------------------------------------------------------------------------- running
def run_model(kind: str, task: Task) -> ModelRun:
    """Train and evaluate ``kind`` on every run of ``task``."""
    from dataclasses import replace

    from alise.downstream.probe import Probe

    if kind not in REGISTRY:
        raise AliseError(f"unknown model {kind!r}: choose among {', '.join(KINDS)}")
    entry = REGISTRY[kind]
    cfg = replace(task.probe, mode=entry.mode)
    results = []
    for r in task.runs:
        torch.manual_seed(cfg.seed)
        probe = Probe(task.sources, task.labels, cfg, entry.build(task))
        results.append((r, probe.fit(r, progress=task.progress)))
    details = {"features": DETAILS[kind](task)} if kind in DETAILS else {}
    return ModelRun(kind, results, results[0][1].trainable_parameters, details)


def trainable_parameter_counts(num_classes: int = 19, config: ALISEConfig = ALISEConfig()) -> dict[str, int]:
    """Trainable parameters of every kind, counted on the modules the builders make (no data needed).

    GF-LP is counted on a one-year 5-day grid (73 dates, e.g. PASTIS), monthly medians on 12 months.
    """
    return {name: entry.count(config, num_classes) for name, entry in REGISTRY.items()}
