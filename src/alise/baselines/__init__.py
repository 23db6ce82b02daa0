"""Baselines of the ALISE paper ([P] §IV-C, Table II), each in one file with its paper's names.

* :class:`UTAE` — U-TAE (Garnot & Landrieu 2021), fully supervised, ``utae.py``.
* :class:`PrestoEncoder`, :class:`PrestoLP` — Presto (Tseng et al. 2023) with its published
  weights (vendored, MIT) and the linear probe, ``presto.py``; its input,
  :func:`monthly_median_composites`, in ``composites.py``.
* :class:`UBarnShallowClassifier` — U-BARN's master-query shallow classifier (Dumeur et al.
  2024) for the frozen U-BARN^FR baseline, ``ubarn_head.py``.

See docs/baselines.md for what exactly is implemented and the parameter counts.
"""

from alise.baselines.composites import monthly_median_composites
from alise.baselines.presto import PrestoEncoder, PrestoLP
from alise.baselines.ubarn_head import UBarnFeatureHead, UBarnShallowClassifier
from alise.baselines.utae import UTAE

__all__ = ["UTAE", "PrestoEncoder", "PrestoLP", "UBarnFeatureHead", "UBarnShallowClassifier", "monthly_median_composites"]
