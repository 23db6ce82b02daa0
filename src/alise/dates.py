"""Acquisition dates as the model sees them: integer days since 2014-03-03 ([P] §III-A).

The paper replaces U-BARN's day-of-year by ``δ_t``, the number of days between the acquisition
and a fixed reference date, so that multi-year series keep their order. 2017–2020 dates give
positions ≈ 1035–2495.
"""

from __future__ import annotations

import datetime as dt
import re
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


def period_text(start=None, end=None) -> str:
    """``"between 2018-01-01 and 2018-12-31"``, ``"from 2018-01-01"``, ``"until 2018-12-31"`` or ``"at all"``."""
    if start is not None and end is not None:
        return f"between {start} and {end}"
    if start is not None:
        return f"from {start} on"
    return f"until {end}" if end is not None else "at all"


#: ESA product names: ``S2A_MSIL2A_<sensing>_N0205_R051_T31UFS_<discriminator>``; the first
#: ``YYYYMMDDTHHMMSS`` is the sensing time, the second (often another day) is not an acquisition date.
_ESA_NAME = re.compile(r"S2[A-D]_MSI(?:L1C|L2A)_(\d{8})T\d{6}_N\d{4}_R\d{3}_T[0-9A-Z]{5}_\d{8}T\d{6}", re.I)
#: A date inside a name: YYYYMMDD, YYYY-MM-DD, YYYY_MM_DD or YYYY.MM.DD, not part of a longer number.
_NAME_DATE = re.compile(r"(?<!\d)(\d{4})([-_.]?)(\d{2})\2(\d{2})(?!\d)")
_SUFFIXES = (".tif", ".tiff", ".jp2", ".safe", ".csv")
#: Years accepted as dates in names (rejects 8-digit identifiers such as 12345678).
_YEARS = range(1950, 2101)
DATE_RULES = ("YYYY-MM-DD, YYYYMMDD, YYYY_MM_DD (also inside a longer name) or an ESA product name "
              "S2A_MSIL2A_YYYYMMDDT…")


def _stem(name: str) -> str:
    low = name.lower()
    for suf in _SUFFIXES:
        if low.endswith(suf):
            return name[: -len(suf)]
    return name


def compile_date_pattern(pattern: str | re.Pattern) -> re.Pattern:
    """Validate a ``--date-pattern``: a regex with named groups ``year``, ``month``, ``day`` or one ``date``.

    Raises:
        AliseError: not a regular expression, or without the named groups.
    """
    if isinstance(pattern, re.Pattern):
        rx = pattern
    else:
        try:
            rx = re.compile(str(pattern))
        except re.error as e:
            raise AliseError(f"--date-pattern {pattern!r}: not a regular expression ({e})") from None
    groups = set(rx.groupindex)
    if not ({"year", "month", "day"} <= groups or "date" in groups):
        raise AliseError(f"--date-pattern {rx.pattern!r}: needs the named groups "
                         "(?P<year>…)(?P<month>…)(?P<day>…), "
                         r"or one group (?P<date>…) holding YYYYMMDD or YYYY-MM-DD, e.g. 'img_(?P<date>\d{8})'")
    return rx


def dates_in_name(name: str) -> list[dt.date]:
    """Every distinct calendar date written in a file or folder name by the built-in rules, in order.

    An ESA product name gives its sensing date only. ``"S2_2017_08_04.tif"`` → [2017-08-04].
    """
    m = _ESA_NAME.search(name)
    if m:
        return [dt.datetime.strptime(m.group(1), "%Y%m%d").date()]
    out: list[dt.date] = []
    for y, _, mo, d in _NAME_DATE.findall(_stem(name)):
        if int(y) not in _YEARS:
            continue
        try:
            day = dt.date(int(y), int(mo), int(d))
        except ValueError:
            continue
        if day not in out:
            out.append(day)
    return out


def date_from_name(name: str, where: str = "", pattern: str | re.Pattern | None = None) -> dt.date:
    """The acquisition date written in a file or folder name (``name`` without its directory).

    Built-in rules (:data:`DATE_RULES`): ``2018-06-01.tif``, ``20180601.tif``, ``S2_2018_06_01.tif``,
    ``T31UFS_20180601_B02.tif``, ``S2A_MSIL2A_20180601T105031_N0206_R051_T31UFS_20180601T135420.SAFE``.
    ``pattern`` (a ``--date-pattern``) replaces them: it is searched in the name (extension included)
    and must capture ``year``/``month``/``day`` or one ``date`` (YYYYMMDD or YYYY-MM-DD).

    Raises:
        AliseError: no date, two different dates, or no match of ``pattern``; the message names ``where``.
    """
    stem = _stem(name)
    loc = f" ({where})" if where else ""
    if pattern is not None:
        rx = compile_date_pattern(pattern)
        m = rx.search(name)
        if m is None:
            raise AliseError(f"cannot parse date {stem!r}{loc}: the name does not match --date-pattern {rx.pattern!r}")
        g = m.groupdict()
        if g.get("date") is not None:
            return parse_date(g["date"], where=where or name)
        try:
            return dt.date(int(g["year"]), int(g["month"]), int(g["day"]))
        except (TypeError, ValueError):
            raise AliseError(f"cannot parse date {stem!r}{loc}: --date-pattern captured year={g.get('year')!r}, "
                             f"month={g.get('month')!r}, day={g.get('day')!r}, not a calendar date") from None
    found = dates_in_name(name)
    if len(found) == 1:
        return found[0]
    if not found:
        raise AliseError(f"cannot parse date {stem!r}{loc}: no date in the name; expected {DATE_RULES}; "
                         "rename the file or pass --date-pattern REGEX")
    raise AliseError(f"cannot parse date {stem!r}{loc}: the name holds {len(found)} different dates "
                     f"({', '.join(d.isoformat() for d in found)}); keep one, or pass --date-pattern REGEX to say "
                     "which is the acquisition date")


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
