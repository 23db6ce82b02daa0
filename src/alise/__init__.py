"""alise — ALigned SITS Encoder.

Turns irregular, unaligned Sentinel-2 image time series into aligned, fixed-size per-pixel
embeddings ``(n_q, d_model, H, W)`` (Dumeur, Valero, Inglada: *Paving the way toward foundation
models for irregular and unaligned Satellite Image Time Series*).

Public API (imported lazily so that ``import alise`` and ``alise --help`` stay fast)::

    import alise
    emb = alise.encode_array(dn, dates, valid)   # L2A DN (T, C, H, W) + dates -> (n_q, d_model, H, W) numpy
    model, info = alise.load_model()             # the built-in pre-trained model (alise models)
    x, days = model.norm.apply(dn), alise.days_since_origin(dates)   # the model's own inputs
    y = model.encode(x[None], days)              # (B, T, C, H, W) -> (B, n_q, d_model, H, W) tensor
    model = alise.ALISE(alise.ALISEConfig())     # the paper's configuration, random weights
    model.save("my-model"); model = alise.load("my-model")
"""

from __future__ import annotations

import importlib

from alise._version import __version__

_LAZY = {
    "ALISE": "alise.model.network",
    "ALISEConfig": "alise.model.config",
    "load": "alise.model.io",
    "load_model": "alise.model.io",
    "days_since_origin": "alise.dates",
    "open_source": "alise.data",
    "SITS": "alise.batch",
    "SITSBatch": "alise.batch",
    "collate": "alise.batch",
    "NormStats": "alise.normalise",
    "AliseError": "alise.errors",
    "AliseInputWarning": "alise.errors",
    "encode_array": "alise.api",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'alise' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names (``__all__``, loaded lazily) and the module's basic attributes."""
    return sorted({*__all__, "__version__", "__doc__", "__name__", "__file__", "__path__", "__all__"})
