"""Building blocks of the ALISE model ([P] §III, Fig. 1–3), each a plain ``nn.Module``.

=================== ============================================= ==========================
module              block                                         paper
=================== ============================================= ==========================
:mod:`.unet`        spatial-spectral encoder (per-date U-Net)     §III-A, Table VIII
:mod:`.encoding`    sinusoidal encoding of days since 2014-03-03  §III-A, Eq. 8 footnote
:mod:`.transformer` temporal Transformer (per pixel)              Table IX
:mod:`.projector`   temporal projector (learned queries)          Eq. 1, App. E-2
:mod:`.decoder`     cross-reconstruction decoder                  Eq. 8–9, Fig. 3
:mod:`.latent`      latent projector π_w                          §III-B-2, Fig. 12
:mod:`.dropout`     dropout with a cheaper CPU random source      Table IX (dropout 0.1)
=================== ============================================= ==========================
"""

from alise.model.nn.decoder import CrossReconstructionDecoder
from alise.model.nn.encoding import date_encoding
from alise.model.nn.latent import LatentProjector
from alise.model.nn.projector import TemporalProjector
from alise.model.nn.transformer import TemporalTransformer, TransformerLayer
from alise.model.nn.unet import SpatialSpectralEncoder

__all__ = [
    "CrossReconstructionDecoder",
    "LatentProjector",
    "SpatialSpectralEncoder",
    "TemporalProjector",
    "TemporalTransformer",
    "TransformerLayer",
    "date_encoding",
]
