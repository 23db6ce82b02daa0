"""Named pre-training recipes: an architecture, its pre-training hyper-parameters and a schedule.

``alise pretrain --preset NAME`` starts from one (any option given on the command line wins), and
the demo, the tests and the benchmarks use them instead of loose dictionaries:

============= ========================================================================================
``paper``     the paper's configuration ([P] Table I, §III-C; 1.11 M-parameter encoder): 64 × 64
              crops of 60 consecutive dates, t_w 2, batch 2, 260 epochs, Adam 1e-3 with warm
              restarts. A GPU job (about 18 s a step on the 2-core CPU, docs/performance.md).
``cpu-small`` the recipe of the built-in model ``alise-s2-small`` (docs/pretraining.md, "A recipe
              that learns on a CPU"): reduced widths (U-Net 16-16-16-32, d_model 32, 2 Transformer
              layers; 100,624 encoder parameters), 32 × 32 crops of 32 dates at least half clear,
              cross-reconstruction only (``w_inv 0``: on a few CPU-sized series the invariance term
              is met by a pattern tied to the pixel grid and costs linear-probe accuracy), 1,500
              steps of batch 2 with 64 samples per epoch, the paper's optimiser and schedule
              otherwise; the ablations behind each choice are in docs/pretraining.md.
``tiny``      the smallest network the code accepts, for tests and smoke runs.
============= ========================================================================================

``alise compare --preset NAME`` also takes the preset's downstream budget (:attr:`Preset.protocol`,
options of :class:`alise.downstream.probe.ProbeConfig`) and the dates the models trained from
scratch read (:attr:`Preset.downstream_min_clear`): the paper's for ``paper``; for ``cpu-small``
32 px crops of the dates at least half clear, end-to-end runs of 10-step epochs stopped after 4
epochs without progress (at most 20), and Adam over pixels for 1,500 steps with a patience of
300, so that a comparison of every kind on one 64 × 64 patch fits in minutes on a 2-core CPU
(docs/compare.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from alise.model.config import ALISEConfig
from alise.errors import AliseError


@dataclass(frozen=True)
class Preset:
    """A pre-training recipe (see the module docstring). ``max_steps`` / ``max_epochs``: the budget
    (None: no limit of that kind); ``samples_per_epoch`` None: one sample per crop tile.
    ``protocol``: :class:`~alise.downstream.probe.ProbeConfig` values ``alise compare`` uses for
    options not given; ``downstream_min_clear``: the dates (clear fraction, 0: all) read there by
    the models trained from scratch."""

    name: str
    summary: str
    config: ALISEConfig = field(default_factory=ALISEConfig)
    crop: int = 64
    batch_size: int = 2
    max_steps: int | None = None
    max_epochs: int | None = 260
    samples_per_epoch: int | None = None
    lr: float = 1e-3
    min_clear: float = 0.5
    protocol: dict = field(default_factory=dict)
    downstream_min_clear: float = 0.0

    def overrides(self) -> dict:
        """The configuration keys that differ from the paper's."""
        paper = ALISEConfig()
        return {k: v for k, v in self.config.to_dict().items() if v != paper.to_dict()[k]}


CPU_SMALL_ARCH = dict(encoder_widths=(16, 16, 16, 32), decoder_widths=(16, 16, 16, 32), d_model=32, n_heads=4,
                      d_ffn=64, n_layers=2, proj_d_k=8, d_emb=64, d_proj_hidden=32)
TINY_ARCH = dict(encoder_widths=(8, 8, 8, 16), decoder_widths=(8, 8, 8, 16), d_model=16, n_heads=2, d_ffn=32,
                 n_layers=1, n_q=4, proj_d_k=8, d_emb=16, d_proj_hidden=16, n_groups=4)

PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("paper", "the paper's configuration and schedule ([P] Table I, §III-C)"),
    Preset("cpu-small", "reduced widths, 32 px crops of 32 dates, cross-reconstruction only, 1,500 steps; "
                        "the built-in model's recipe",
           ALISEConfig().replace(**CPU_SMALL_ARCH, n_dates=32, w_inv=0.0), crop=32, max_steps=1500,
           max_epochs=None, samples_per_epoch=64,
           protocol=dict(crop=32, epochs=20, patience=4, min_steps_per_epoch=10, steps=1500, patience_steps=300),
           downstream_min_clear=0.5),
    Preset("tiny", "the smallest network, for tests and smoke runs",
           ALISEConfig().replace(**TINY_ARCH, n_dates=12), crop=16, max_steps=4, max_epochs=None,
           samples_per_epoch=8,
           protocol=dict(crop=16, epochs=2, patience=1, min_steps_per_epoch=2, steps=20, patience_steps=10)),
)}


def preset(name: str) -> Preset:
    """The preset ``name`` (an :class:`AliseError` listing the known ones otherwise)."""
    if name not in PRESETS:
        raise AliseError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    return PRESETS[name]
