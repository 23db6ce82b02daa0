"""Downstream tasks on ALISE embeddings ([P] §IV-B): segmentation probes, change detection, gap-filling.

=============================== ================================================ ====================
module                          what                                             paper
=============================== ================================================ ====================
:mod:`.heads`                   per-pixel linear head, query-major flattening    Fig. 5, Table II
:mod:`.features`                frozen embeddings computed once, tiled encoding  §IV-B
:mod:`.probe`                   LP / FT / FS training and evaluation             §IV-B-1, Tables II–III
:mod:`.change`                  Eq. 12 distance, GF baseline, change truth, AUC  §IV-B-2, Table IV
:mod:`.reconstruct`             decoder gap-filling, GeoTIFF outputs             Eq. 8–9
=============================== ================================================ ====================
"""

from __future__ import annotations

import os
from collections.abc import Iterable


def open_inputs(paths: str | os.PathLike | Iterable[str | os.PathLike], *, start=None, end=None, model=None,
                date_pattern=None) -> list:
    """Sources of every layout the downstream commands read (:func:`alise.data.open_sources`:
    site folders, .SAFE products, file lists, PASTIS, MultiSenGE, cubes); with ``model``, checked with
    :func:`check_compatible`. ``date_pattern``: see ``open_sources``."""
    from alise.data import open_sources

    sources = open_sources(paths, start=start, end=end, date_pattern=date_pattern)
    if model is not None:
        check_compatible(model, sources)
    return sources


def check_compatible(model, sources) -> None:
    """Fail before any work if a source cannot feed ``model``: other bands than the model's
    normalisation statistics, or units that are not L2A digital numbers (e.g. 0–1 reflectance)."""
    from alise.errors import AliseError

    for s in sources:
        if tuple(model.norm.bands) != tuple(s.bands):
            raise AliseError(f"the model expects bands {list(model.norm.bands)} but {s.path} provides {list(s.bands)}")
        s.offsets()  # the units survey raises on values that are not reflectance × 10 000
