"""alise — ALigned SITS Encoder.

Turns irregular, unaligned Sentinel-2 image time series into aligned, fixed-size per-pixel
embeddings ``(n_q, d_model, H, W)`` (Dumeur, Valero, Inglada: *Paving the way toward foundation
models for irregular and unaligned Satellite Image Time Series*).

Public API (imported lazily so that ``import alise`` and ``alise --help`` stay fast)::

    from alise import ALISE, ALISEConfig, load, load_model
    model, info = load_model()                   # the built-in pre-trained model (alise models)
    model = ALISE(ALISEConfig())                 # the paper's configuration, random weights
    y = model.encode(x, days, valid_dates)       # (B, T, C, H, W) -> (B, n_q, d_model, H, W)
    model.save("my-model"); model = load("my-model")
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "ALISE": "alise.model",
    "ALISEConfig": "alise.config",
    "load": "alise.model_io",
    "load_model": "alise.model_io",
    "days_since_origin": "alise.dates",
    "open_source": "alise.data",
    "SITS": "alise.batch",
    "SITSBatch": "alise.batch",
    "collate": "alise.batch",
    "NormStats": "alise.normalise",
    "AliseError": "alise.errors",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'alise' has no attribute {name!r}")
