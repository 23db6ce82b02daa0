"""Acquisition dates as the model sees them: integer days since 2014-03-03 ([P] §III-A).

The paper replaces U-BARN's day-of-year by ``δ_t``, the number of days between the acquisition
and a fixed reference date, so that multi-year series keep their order. 2017–2020 dates give
positions ≈ 1035–2495.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import numpy as np

from alise.errors import AliseError

#: Reference date of the temporal positional encoding ([P] §III-A).
DATE_ORIGIN = dt.date(2014, 3, 3)


def parse_date(text: str, where: str = "") -> dt.date:
    """Parse ``YYYY-MM-DD`` or ``YYYYMMDD``; raise :class:`AliseError` naming ``where`` otherwise."""
    s = str(text).strip()
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return dt.datetime.strptime(s, fmt).date()
        except ValueError:
            continue
    loc = f" ({where})" if where else ""
    raise AliseError(f"cannot parse date {s!r}{loc}: expected YYYY-MM-DD or YYYYMMDD")


def days_since_origin(dates: Iterable[dt.date | str]) -> np.ndarray:
    """Dates → float32 array ``(T,)`` of days since 2014-03-03 (the model's date input)."""
    out = []
    for d in dates:
        if not isinstance(d, dt.date):
            d = parse_date(d)
        out.append((d - DATE_ORIGIN).days)
    return np.asarray(out, dtype=np.float32)


def date_from_days(days: float) -> dt.date:
    """Inverse of :func:`days_since_origin` for one value."""
    return DATE_ORIGIN + dt.timedelta(days=int(round(float(days))))
