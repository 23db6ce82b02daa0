"""Which pixel-dates are usable: the validity mask ([P] §III-B-3, Eq. 11; docs/reference.md §1.3).

ALISE never shows the mask to the network: it only removes cloudy / no-data pixels from the
reconstruction loss (Eq. 11, ``M_t^valid``) and from the normalisation statistics. One convention
everywhere: ``True`` = a clear, real observation.

Rules (documented in ``docs/data-formats.md``):

* **Sen2Cor SCL**: clear if ``SCL ∈ clear_scl``, default ``{4 vegetation, 5 not vegetated, 6 water}``.
  Everything else is invalid by default: 0 no data, 1 saturated, 2 dark area / cast shadow,
  3 cloud shadow, 7 unclassified, 8–9 cloud, 10 cirrus, 11 snow. The authors keep 2 and 11 valid;
  we do not, because in the shipped real data (worldcereal-flanders-2018/README.md) SCL 11 marks
  bright clouds in September and December, and SCL 7 mixes clear soil with haze and cloud edges.
  ``clear_scl`` is configurable (``--clear-scl 4,5,6,7`` to keep unclassified pixels).
* **Binary mask** (``mask/DATE.tif``): ``0`` = clear, any other value (1 = cloudy) = invalid.
* **Values**: a pixel is invalid if any band is NaN/±inf or equals the nodata value (0 for
  Sentinel-2 L2A digital numbers unless the file declares another).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from alise.errors import AliseError

#: Sen2Cor scene classes counted as clear by default: 4 vegetation, 5 not vegetated, 6 water.
DEFAULT_CLEAR_SCL: frozenset[int] = frozenset({4, 5, 6})

#: Sen2Cor SCL class names (for reports).
SCL_NAMES: dict[int, str] = {
    0: "no data", 1: "saturated/defective", 2: "dark area", 3: "cloud shadow", 4: "vegetation",
    5: "not vegetated", 6: "water", 7: "unclassified", 8: "cloud medium probability",
    9: "cloud high probability", 10: "thin cirrus", 11: "snow/ice",
}

#: SCL classes that are cloud or cloud shadow (used by ``check`` to call a date "otherwise clear").
CLOUDY_SCL: frozenset[int] = frozenset({3, 8, 9, 10})


def parse_clear_scl(value: str | Iterable[int] | None) -> frozenset[int]:
    """``"4,5,6"`` or an iterable of ints → a validated frozenset of SCL classes (0–11)."""
    if value is None:
        return DEFAULT_CLEAR_SCL
    if isinstance(value, str):
        try:
            items = [int(v) for v in value.replace(" ", "").split(",") if v]
        except ValueError:
            raise AliseError(f"--clear-scl {value!r}: expected comma-separated SCL classes, e.g. 4,5,6") from None
    else:
        items = [int(v) for v in value]
    bad = [v for v in items if not 0 <= v <= 11]
    if bad or not items:
        raise AliseError(f"clear SCL classes {items}: each must be a Sen2Cor class 0–11 (e.g. 4,5,6)")
    return frozenset(items)


def valid_from_scl(scl: np.ndarray, clear_scl: Iterable[int] = DEFAULT_CLEAR_SCL) -> np.ndarray:
    """Sen2Cor scene classification ``(..., h, w)`` → bool, True where the class is clear."""
    return np.isin(scl, np.fromiter(clear_scl, dtype=np.int64))


def valid_from_mask(mask: np.ndarray) -> np.ndarray:
    """Binary cloud mask ``(..., h, w)`` with 1 = cloudy → bool, True where the mask is 0."""
    return np.asarray(mask) == 0


def valid_from_values(dn: np.ndarray) -> np.ndarray:
    """Digital numbers ``(..., C, h, w)`` with NaN marking nodata → bool ``(..., h, w)``.

    True where every band is finite (readers turn nodata values into NaN before this).
    """
    return np.isfinite(dn).all(axis=-3)


def nodata_to_nan(raw: np.ndarray, nodata: float | None) -> np.ndarray:
    """Raw band values → float32 with NaN where a value is the nodata value or ±inf.

    Args:
        raw: any numeric array (e.g. ``(T, C, h, w)`` uint16 digital numbers).
        nodata: the nodata value (None: only non-finite values are nodata).
    """
    out = np.asarray(raw, dtype=np.float32).copy()
    bad = ~np.isfinite(out)
    if nodata is not None and np.isfinite(nodata):
        bad |= out == np.float32(nodata)
    out[bad] = np.nan
    return out
