"""When the satellite looks: irregular acquisition dates and the sun's position at each.

Sentinel-2A and 2B together revisit a place every 5 days from one relative orbit. A site in the
overlap of two adjacent orbits is seen twice per cycle, a few days apart (the real Flanders patch
has median gaps of 3 days). Acquisitions go missing at random (downlink, processing, archive
gaps) and now and then for weeks (satellite safe mode, reprocessing holes). Each site draws its
own orbit phase, overlap and losses, so two sites never share a calendar.

The sun angles at overpass time (≈ 11:00 local solar time over Belgium) set the direction
and length of cloud shadows (:mod:`alise.synth.clouds`) and are written as GeoTIFF tags.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

#: Latitude used for the sun geometry (degrees north): northern France / Belgium.
LATITUDE = 50.8
#: Local solar time of the overpass, hours (10:50–11:07 UTC at 3° E; matches the real patch's tags).
SOLAR_TIME = 11.0


def acquisition_dates(start: dt.date, end: dt.date, revisit: int, rng: np.random.Generator) -> list[dt.date]:
    """Irregular acquisition dates in ``[start, end]``, ascending and unique.

    ``revisit`` is the nominal revisit in days (5 for S2A+S2B). Returns a list of ``T`` dates:
    the nominal cycle from a random phase, plus (on some sites) a second orbit offset by 1 to
    ``revisit − 1`` days, minus ~8 % random losses and about one multi-week outage per year.
    """
    span = (end - start).days + 1
    if span <= 0:
        return []
    days = np.arange(int(rng.integers(revisit)), span, revisit)
    if revisit >= 2 and rng.random() < 0.6:  # site in the overlap of two relative orbits
        extra = days + int(rng.integers(1, revisit))
        days = np.concatenate([days, extra[rng.random(extra.size) < 0.8]])
    days = days[(days < span) & (rng.random(days.size) >= 0.08)]
    for _ in range(int(rng.poisson(span / 365.25))):  # multi-week outages
        first = rng.integers(-20, span)
        days = days[(days < first) | (days >= first + rng.integers(8, 31))]
    days = np.unique(days)
    return [start + dt.timedelta(days=int(d)) for d in days]


def day_of_year(dates: list[dt.date]) -> np.ndarray:
    """Day of year (1 = 1 January): ``(T,)`` float32."""
    return np.array([d.timetuple().tm_yday for d in dates], np.float32)


def sun_angles(dates: list[dt.date], latitude: float = LATITUDE) -> tuple[np.ndarray, np.ndarray]:
    """Solar zenith and azimuth at overpass time, degrees: two ``(T,)`` float32 arrays.

    Azimuth is clockwise from north (≈ 150–165° in the morning overpass, i.e. south-south-east).
    Standard declination / hour-angle formulas; accurate to a degree or two, plenty for shadows.
    """
    doy = day_of_year(dates).astype(np.float64)
    phi = np.radians(latitude)
    decl = np.radians(23.44) * np.sin(2 * np.pi * (284 + doy) / 365.0)
    hour = np.radians(15.0 * (SOLAR_TIME - 12.0))
    cos_z = np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.cos(hour)
    zenith = np.degrees(np.arccos(np.clip(cos_z, -1, 1)))
    az = np.degrees(np.arctan2(np.sin(hour), np.cos(hour) * np.sin(phi) - np.tan(decl) * np.cos(phi))) + 180.0
    return zenith.astype(np.float32), np.mod(az, 360.0).astype(np.float32)


def overpass_times(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` UTC overpass times ``HH:MM:SS`` between 10:50 and 11:07 (as in the real data)."""
    secs = rng.integers(10 * 3600 + 50 * 60, 11 * 3600 + 7 * 60, size=n)
    return [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in secs]
