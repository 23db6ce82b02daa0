"""One runner per model of the comparison ([P] Table II), all on the downstream probe's training loop.

Every runner trains and evaluates with :class:`alise.downstream.probe.Probe` — same splits
(:func:`alise.commands.probe.build_runs`), same protocol (Adam, ReduceLROnPlateau, best validation
macro-F1, early stopping), same loss and the same metric (macro-F1 over the labelled classes,
background/void ignored). The probe knows two shapes of model, so each baseline is plugged
into one of them through a thin adapter:

============ ===================================== =============================================
kind         what trains                           plugged in as
============ ===================================== =============================================
alise-lp     Linear(n_q·D → K) on frozen ALISE Y   probe ``lp`` as is
alise-ft/fs  ALISE encoder + that head             probe ``ft`` / ``fs`` as is
ubarn-fr     U-BARN shallow classifier (13.8K)     ``lp`` on cached per-date U-BARN features,
                                                   head swapped (:class:`TemporalFeatureHead`)
ubarn-ft/fs  U-BARN (U-Net+Transformer) + SC       ``ft`` with an encoder returning logits
utae         U-TAE from scratch                    ``ft`` with an encoder returning logits
presto-lp    Linear(128 → K) on frozen Presto      ``lp`` on cached Presto embeddings
gf-lp        Linear(G·C → K) on gap-filled series  ``lp`` on cached GF features (5-day grid)
============ ===================================== =============================================

"Encoder returning logits": the probe's ``ft`` path computes ``head(encoder.encode(x, days,
valid))``; our wrappers return ``(B, 1, K, H, W)`` from ``encode`` and the head becomes a reshape,
so the probe trains the whole network end to end. Cached features are ``(F, H, W)`` per source,
computed once (duck-typed :class:`FeatureTable`, like :class:`~alise.downstream.features.FeatureCache`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import torch
from einops import rearrange
from torch import Tensor, nn

from alise.config import ALISEConfig
from alise.downstream.heads import LinearProbe, SegmentationModel, count_parameters
from alise.errors import AliseError

KINDS: tuple[str, ...] = ("alise-lp", "alise-ft", "alise-fs", "ubarn-fr", "ubarn-ft", "ubarn-fs", "utae",
                          "presto-lp", "gf-lp")
PAPER_WIDTHS = ((64, 64, 64, 128), (32, 32, 64, 128))


@dataclass
class Task:
    """Everything a runner needs: sources, label space, runs, protocol, and the models to reuse."""

    sources: list
    labels: object  # alise.downstream.probe.LabelSpace
    runs: list  # [alise.downstream.probe.Run]
    probe: object  # alise.downstream.probe.ProbeConfig (mode is set per runner)
    norm: object  # NormStats of the data, for models trained from scratch
    config: ALISEConfig = field(default_factory=ALISEConfig)
    alise: object = None  # pre-trained ALISE (alise-lp/ft)
    ubarn: object = None  # pre-trained UBARN (ubarn-fr/ft)
    progress: bool = False
    _stores: dict = field(default_factory=dict)

    def store(self, norm):
        from alise.downstream.features import SITSStore

        if norm not in self._stores:
            self._stores[norm] = SITSStore(self.sources, norm)
        return self._stores[norm]


@dataclass
class ModelRun:
    """Results of one model kind: ``(Run, ProbeResult)`` per run and its trainable parameters."""

    kind: str
    results: list
    trainable_parameters: int
    details: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------- adapters
class FeatureTable:
    """Per-source features ``(F, H, W)`` computed once by ``fn(i)``; the probe reads windows of them."""

    def __init__(self, fn: Callable[[int], np.ndarray], dtype=np.float32):
        self.fn, self.dtype, self._data, self.n_encoded = fn, np.dtype(dtype), {}, 0

    def get(self, i: int) -> np.ndarray:
        if i not in self._data:
            self._data[i] = np.asarray(self.fn(i), dtype=self.dtype)
            self.n_encoded += 1
        return self._data[i]

    def window(self, i: int, window) -> Tensor:
        """``(F, h, w)`` float32 of ``window = (row, col, h, w)``."""
        r, c, h, w = window
        return torch.from_numpy(np.ascontiguousarray(self.get(i)[:, r:r + h, c:c + w], dtype=np.float32))


def feature_spec(n_features: int, multiple: int = 1) -> SimpleNamespace:
    """Stand-in "model" for the probe's lp mode: its head becomes Linear(n_features → K)."""
    return SimpleNamespace(config=SimpleNamespace(n_q=1, d_model=int(n_features),
                                                  encoder_widths=(0,) * (int(math.log2(multiple)) + 1)))


class TemporalFeatureHead(nn.Module):
    """U-BARN's shallow classifier on cached per-date features.

    A pixel's feature vector is ``T_max`` blocks of ``1 + D`` values: a validity flag (1 = real
    date, 0 = padding) followed by the D U-BARN features of that date, so series of different
    lengths share one table and padded dates are masked in the attention.
    """

    def __init__(self, d_model: int, num_classes: int):
        super().__init__()
        from alise.baselines import UBarnShallowClassifier

        self.d_model = d_model
        self.sc = UBarnShallowClassifier(d_model, num_classes)

    def forward_flat(self, f: Tensor) -> Tensor:
        """``(N, T·(1+D))`` → ``(N, K)`` logits."""
        seq = rearrange(f, "n (t e) -> n t e", e=self.d_model + 1)
        valid = seq[..., 0] > 0.5  # (N, T)
        return self.sc(seq[..., 1:, None, None], valid)[..., 0, 0]  # pixels as a batch of 1×1 images

    def forward(self, y: Tensor) -> Tensor:
        """``(B, T·(1+D), H, W)`` → ``(B, K, H, W)``."""
        b, _, h, w = y.shape
        out = self.forward_flat(rearrange(y, "b f h w -> (b h w) f"))
        return rearrange(out, "(b h w) k -> b k h w", b=b, h=h, w=w)


class _SSTE(nn.Module):
    """``encode`` = U-BARN's per-date features, so :func:`encode_sits` tiles/pads them: (B, T, D, H, W)."""

    def __init__(self, ubarn):
        super().__init__()
        self.ubarn, self.config = ubarn, ubarn.config

    def encode(self, x, days, valid_dates):
        return self.ubarn.sste(x, days, valid_dates)


class LogitsEncoder(nn.Module):
    """A whole segmentation network posing as an encoder: ``encode → (B, 1, K, H, W)`` logits.

    Subclasses implement ``logits(x, days, valid_dates) -> (B, K, H, W)`` and ``encoder_modules``.
    """

    def __init__(self, num_classes: int, multiple: int):
        super().__init__()
        self.config = SimpleNamespace(n_q=1, d_model=num_classes, encoder_widths=(0,) * (int(math.log2(multiple)) + 1))

    def encode(self, x: Tensor, days: Tensor, valid_dates: Tensor) -> Tensor:
        return self.logits(x, days, valid_dates)[:, None]


class _Squeeze(nn.Module):
    """The "head" of a :class:`LogitsEncoder`: ``(B, 1, K, H, W)`` → ``(B, K, H, W)`` (4-D passes through)."""

    def forward(self, y: Tensor) -> Tensor:
        return y.flatten(1, 2) if y.ndim == 5 else y


class UBarnSegmenter(LogitsEncoder):
    """U-BARN^FT/FS: U-Net + Transformer + shallow classifier, trained end to end."""

    def __init__(self, ubarn, num_classes: int):
        super().__init__(num_classes, 2 ** (len(ubarn.config.encoder_widths) - 1))
        from alise.baselines import UBarnShallowClassifier

        self.ubarn = ubarn
        self.sc = UBarnShallowClassifier(ubarn.config.d_model, num_classes)

    def logits(self, x: Tensor, days: Tensor, valid_dates: Tensor) -> Tensor:
        return self.sc(self.ubarn.sste(x, days, valid_dates), valid_dates)

    def encoder_modules(self) -> dict[str, nn.Module]:
        return {**self.ubarn.encoder_modules(), "sc": self.sc}


def build_utae(config: ALISEConfig, num_classes: int) -> nn.Module:
    """U-TAE with the paper's widths, or widths scaled like a reduced ALISE ``config`` (L-TAE shrunk to match)."""
    from alise.baselines import UTAE

    enc, dec = tuple(config.encoder_widths), tuple(config.decoder_widths)
    if (enc, dec) == PAPER_WIDTHS:
        return UTAE(config.in_channels, num_classes)
    n_head = math.gcd(16, *enc)  # the attention groups split every skip width
    return UTAE(config.in_channels, num_classes, encoder_widths=enc, decoder_widths=dec, out_conv=(dec[0],),
                n_head=n_head, d_model=2 * enc[-1], mlp=(2 * enc[-1], enc[-1]))


class UTAESegmenter(LogitsEncoder):
    """U-TAE from scratch (its own paper's architecture, or scaled like ``config``)."""

    def __init__(self, config: ALISEConfig, num_classes: int):
        super().__init__(num_classes, 2 ** (len(config.encoder_widths) - 1))
        self.utae = build_utae(config, num_classes)

    def logits(self, x: Tensor, days: Tensor, valid_dates: Tensor) -> Tensor:
        return self.utae(x, days, valid_dates)

    def encoder_modules(self) -> dict[str, nn.Module]:
        return {"utae": self.utae}


def plug_end_to_end(probe) -> None:
    """Make a ``ft`` probe built on a :class:`LogitsEncoder` train it end to end with no extra head."""
    probe.head = _Squeeze()
    probe.net = SegmentationModel(probe.encoder, probe.head)
    probe.params = probe.net.trainable_parameters()


# ---------------------------------------------------------------------------- features
def ubarn_features(ubarn, store, t_max: int) -> Callable[[int], np.ndarray]:
    """``fn(i) -> (T_max·(1+D), H, W)``: frozen U-BARN features with a validity flag per date."""
    from alise.downstream.features import encode_sits

    shim = _SSTE(ubarn).eval()

    def fn(i: int) -> np.ndarray:
        s = store.read(i)
        with torch.inference_mode():
            y = encode_sits(shim, s, flatten=False)  # (T, D, H, W)
        t, d, h, w = y.shape
        out = y.new_zeros((t_max, 1 + d, h, w))
        out[:t, 0] = 1.0
        out[:t, 1:] = y
        return rearrange(out, "t e h w -> (t e) h w").numpy()

    return fn


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
    from alise.gapfill import regular_grid

    return regular_grid(float(min(s.days[0] for s in sources)), float(max(s.days[-1] for s in sources)), step)


def gf_features_fn(store, grid: np.ndarray) -> Callable[[int], np.ndarray]:
    """``fn(i) -> (G·C, H, W)``: clear observations linearly interpolated on ``grid`` (normalised units)."""
    from alise.gapfill import gf_features

    def fn(i: int) -> np.ndarray:
        s = store.read(i)
        return gf_features(s.x[None], s.days, s.valid_pixels[None], grid)[0].numpy()

    return fn


# ---------------------------------------------------------------------------- runners
def run_model(kind: str, task: Task) -> ModelRun:
    """Train and evaluate ``kind`` on every run of ``task``."""
    from dataclasses import replace

    from alise.downstream.probe import Probe

    if kind not in KINDS:
        raise AliseError(f"unknown model {kind!r}: choose among {', '.join(KINDS)}")
    k = task.labels.num_classes
    details: dict = {}
    mode = {"alise-lp": "lp", "alise-ft": "ft", "alise-fs": "fs"}.get(kind, "lp" if kind.endswith("-lp")
                                                                       or kind == "ubarn-fr" else "ft")
    cfg = replace(task.probe, mode=mode)

    if kind.startswith("alise"):
        model = task.alise
        cache = None
        if mode == "lp":
            from alise.downstream.features import FeatureCache

            cache = FeatureCache(model, task.store(model.norm))

        def make():
            return Probe(model, task.store(model.norm), task.labels, cfg, cache=cache)
    elif kind == "ubarn-fr":
        ub = task.ubarn
        t_max = max(s.n_dates for s in task.sources)
        table = FeatureTable(ubarn_features(ub, task.store(ub.norm), t_max), dtype=np.float16)
        details["features"] = f"{t_max} dates × (1 + {ub.config.d_model}) per pixel (float16)"

        def make():
            p = Probe(feature_spec(t_max * (1 + ub.config.d_model)), task.store(ub.norm), task.labels, cfg, cache=table)
            torch.manual_seed(cfg.seed)
            p.head = TemporalFeatureHead(ub.config.d_model, k)
            p.params = list(p.head.parameters())
            return p
    elif kind in ("presto-lp", "gf-lp"):
        if kind == "presto-lp":
            fn, n_feat, norm = presto_features(task.sources), 128, task.norm
            details["features"] = "Presto mean embedding (128) of monthly median composites of clear pixels"
        else:
            grid = gf_grid(task.sources)
            norm = task.norm
            fn, n_feat = gf_features_fn(task.store(norm), grid), len(grid) * task.config.in_channels
            details["features"] = f"{len(grid)} dates (5-day grid) × {task.config.in_channels} bands"
        table = FeatureTable(fn)

        def make():
            return Probe(feature_spec(n_feat), task.store(norm), task.labels, cfg, cache=table)
    else:  # end to end: ubarn-ft, ubarn-fs, utae
        def make():
            import copy

            from alise.baselines.ubarn import UBARN

            torch.manual_seed(cfg.seed)
            if kind == "utae":
                enc, norm = UTAESegmenter(task.config, k), task.norm
            elif kind == "ubarn-ft":
                enc, norm = UBarnSegmenter(copy.deepcopy(task.ubarn), k), task.ubarn.norm
            else:
                enc, norm = UBarnSegmenter(UBARN(task.config, task.norm), k), task.norm
            p = Probe(enc, task.store(norm), task.labels, cfg)
            plug_end_to_end(p)
            return p

    results = []
    for r in task.runs:
        probe = make()
        results.append((r, probe.fit(r, progress=task.progress)))
    return ModelRun(kind, results, results[0][1].trainable_parameters, details)


def trainable_parameter_counts(num_classes: int = 19, config: ALISEConfig = ALISEConfig(),
                               gf_dates: int = 73) -> dict[str, int]:
    """Trainable parameters of every kind, counted on the modules the runners train (no data needed).

    ``gf_dates``: grid length of GF-LP (73 = one year on a 5-day grid, e.g. PASTIS).
    """
    from alise.baselines.ubarn import UBARN
    from alise.model import ALISE

    k = num_classes
    alise = SegmentationModel(ALISE(config), LinearProbe(config.n_q, config.d_model, k))
    ubarn = UBarnSegmenter(UBARN(config), k)
    return {
        "alise-lp": count_parameters(LinearProbe(config.n_q, config.d_model, k)),
        "alise-ft": count_parameters(alise.trainable_parameters()),
        "alise-fs": count_parameters(alise.trainable_parameters()),
        "ubarn-fr": count_parameters(TemporalFeatureHead(config.d_model, k)),
        "ubarn-ft": count_parameters(SegmentationModel(ubarn, _Squeeze()).trainable_parameters()),
        "ubarn-fs": count_parameters(SegmentationModel(ubarn, _Squeeze()).trainable_parameters()),
        "utae": count_parameters(UTAESegmenter(config, k).utae),
        "presto-lp": count_parameters(LinearProbe(1, 128, k)),
        "gf-lp": count_parameters(LinearProbe(1, gf_dates * config.in_channels, k)),
    }
