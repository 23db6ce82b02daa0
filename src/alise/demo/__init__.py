"""``alise demo``: the whole paper on built-in data in minutes, ending in a report a scientist can read.

::

    from alise.demo import DemoOptions, run_demo
    results = run_demo(DemoOptions(out="demo-output"))      # demo-output/report.md, report.html, results.json

* :mod:`alise.demo.state` — presets, options and the state the stages share;
* :mod:`alise.demo.pipeline` — the stages (data → pre-training → embeddings → gap-filling →
  segmentation → change detection → run facts), their timings and ``results.json``;
* :mod:`alise.demo.report` — ``report.md`` and the self-contained ``report.html`` written from
  ``results.json`` only, so every number in the report is one computed in the run.
"""

from __future__ import annotations

from alise.demo.pipeline import run_demo
from alise.demo.state import PRESETS, DemoOptions, Preset, resolve_real

__all__ = ["PRESETS", "DemoOptions", "Preset", "resolve_real", "run_demo"]
