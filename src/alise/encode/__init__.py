"""Whole-raster encoding: tiles with overlap, seamless blending, resumable and shardable runs.

::

    from alise.encode import EncodeOptions, encode, merge
    from alise.data import open_source
    from alise.model.io import load

    report = encode(load("model"), open_source("site", start="2018-01-01"), "emb.tif",
                    EncodeOptions(tile=256, overlap=32))  # the suffix picks the format: .tif COG, .zarr zarr

Chapters: ``tiling.py`` (grid and blending weights), ``writers.py`` (pieces, COG, zarr),
``runner.py`` (the read → model → write pipeline, resume, shards, merge). User guide:
``docs/encode.md``.
"""

from __future__ import annotations

from alise.encode.runner import EncodeOptions, EncodeReport, encode, merge, parse_shard, parts_dir
from alise.encode.tiling import Tile, TileGrid
from alise.encode.writers import band_names, n_clear_path

__all__ = ["EncodeOptions", "EncodeReport", "Tile", "TileGrid", "band_names", "encode", "merge", "n_clear_path",
           "parse_shard", "parts_dir"]
