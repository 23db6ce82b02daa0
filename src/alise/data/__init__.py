"""Reading Sentinel-2 image time series from disk (docs/design.md §2; layouts in ``docs/data-formats.md``).

::

    from alise.data import open_source, open_sources, PretrainDataset, sample_clear_pixels
    src = open_source("worldcereal-flanders-2018")        # folder of dates, PASTIS patch or cube
    raw = src.read(window=(0, 0, 64, 64), dates=slice(0, 60))   # RawSITS: DN (T, C, h, w) + valid
    sits = raw.to_sits(NormStats.paper())                  # alise.batch.SITS for the model
"""

from __future__ import annotations

from alise.data.cube import CubeSource
from alise.data.dataset import PretrainDataset
from alise.data.discover import detect_layout, open_source, open_sources
from alise.data.filelist import ListSource
from alise.data.folder import FolderSource
from alise.data.pastis import PASTIS_CLASSES, PastisSource, open_pastis
from alise.data.safe import SafeSource
from alise.data.source import RasterGrid, RawSITS, SITSSource
from alise.data.stats import sample_clear_pixels
from alise.data.units import OFFSET_START, OffsetDecision
from alise.data.validity import DEFAULT_CLEAR_SCL, parse_clear_scl


def change_mask(source: SITSSource, year_a: int, year_b: int, window=None):
    """``(h, w)`` uint8 change truth between two years (1 changed, 0 unchanged, 255 excluded), or None."""
    return source.change_mask(year_a, year_b, window)


__all__ = [
    "CubeSource", "DEFAULT_CLEAR_SCL", "FolderSource", "ListSource", "OFFSET_START", "OffsetDecision",
    "PASTIS_CLASSES", "PastisSource", "PretrainDataset", "RasterGrid", "RawSITS", "SITSSource", "SafeSource",
    "change_mask", "detect_layout", "open_pastis", "open_source", "open_sources", "parse_clear_scl", "sample_clear_pixels",
]
