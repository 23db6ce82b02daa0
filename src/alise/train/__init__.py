"""Pre-training ALISE at the training edge: Lightning module, data module, checkpoints, the job.

::

    from alise.train import PretrainJob, run_pretraining
    record = run_pretraining(PretrainJob(data=["site/"], out="run", max_epochs=2))

* :mod:`alise.train.datamodule` — view pairs, deterministic per (seed, epoch, step), DDP split;
* :mod:`alise.train.module` — Adam + cosine warm restarts, per-term logging, per-step reseeding;
* :mod:`alise.train.checkpoint` — atomic checkpoint IO plugin, seeds and RNG state;
* :mod:`alise.train.run` — the ``alise pretrain`` job: statistics, Trainer, best-epoch export, report.

The model code (:mod:`alise.model.network`) knows nothing of Lightning.
"""

from __future__ import annotations

from alise.train.run import PretrainJob, run_pretraining

__all__ = ["PretrainJob", "run_pretraining"]
