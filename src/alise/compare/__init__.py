"""``alise compare``: the paper's baselines side by side on one split and one metric ([P] Table II).

* :mod:`alise.compare.runners` — one runner per model kind (:data:`KINDS`), all on the downstream
  probe's training loop; :func:`trainable_parameter_counts` counts what each one trains.
* :mod:`alise.compare.table` — the Table-II-like Markdown and JSON.

The command itself (pre-training what is missing, writing ``comparison.json`` / ``.md``) is
:mod:`alise.commands.compare`; see docs/compare.md.
"""

from __future__ import annotations

from alise.compare.runners import KINDS, ModelRun, Task, run_model, trainable_parameter_counts
from alise.compare.table import PAPER, human_count, model_entry, render_markdown

__all__ = ["KINDS", "PAPER", "ModelRun", "Task", "human_count", "model_entry", "render_markdown", "run_model",
           "trainable_parameter_counts"]
