"""Realistic synthetic Sentinel-2 image time series (``alise synth``).

The built-in data source of the demo, the tests and the benchmarks: multi-year SITS of
agricultural landscapes with crop rotations, clear-cuts, class-specific phenology, plausible
10-band spectra, irregular acquisition dates, clouds with displaced shadows, cirrus and a
Sen2Cor-like scene classification, written in the same folder layout as the shipped real data.
See ``docs/synthetic-data.md``.

Chapters: :mod:`~alise.synth.classes` (legend, rotations), :mod:`~alise.synth.parcels` (fields),
:mod:`~alise.synth.phenology` (what covers a field when), :mod:`~alise.synth.spectra`
(endmember mixing), :mod:`~alise.synth.acquisitions` (dates, sun), :mod:`~alise.synth.clouds`
(sky and SCL), :mod:`~alise.synth.generator` (one site), :mod:`~alise.synth.writer` (files).

    from alise.synth import generate_site, write_synthetic
    site = generate_site(64, years=(2018, 2019), rng=0)   # arrays, no files
    write_synthetic("synthetic", sites=2, seed=0)           # the folder layout
"""

from __future__ import annotations

from alise.synth.classes import CLASSES, CLASS_NAMES
from alise.synth.generator import SiteSimulator, generate_site
from alise.synth.writer import write_synthetic

__all__ = ["CLASSES", "CLASS_NAMES", "SiteSimulator", "generate_site", "write_synthetic"]
