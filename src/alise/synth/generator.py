"""One synthetic site from start to finish: landscape → phenology → reflectance → sky → digital numbers.

:class:`SiteSimulator` draws everything static once (fields, rotations, phenology jitter,
texture) and then renders the dates in fixed-size chunks, each from its own random stream, so
the result does not depend on how a caller iterates and memory stays bounded for large tiles.
:func:`generate_site` is the array API used by tests and benchmarks: no files are written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence

import numpy as np

from alise.dates import days_since_origin
from alise.errors import AliseError
from alise.synth import classes as C
from alise.synth.acquisitions import acquisition_dates, day_of_year, overpass_times, sun_angles
from alise.synth.clouds import draw_sky, observe, scene_classification
from alise.synth.fields import fine_noise, smooth_field
from alise.synth.parcels import change_map, make_landscape
from alise.synth.phenology import draw_phenology
from alise.synth.spectra import GREEN, NIR_GAIN, SOIL, TEXTURE, mix

#: Pixel-dates rendered at once (≈ 0.5 M: ~100 MB of temporaries, fastest in measurements).
CHUNK_PIXEL_DATES = 2**19


def _key(rng: np.random.Generator | int | Sequence[int] | None) -> tuple[int, ...]:
    """A tuple of non-negative ints that seeds every random stream of a site."""
    if rng is None:
        return (0,)
    if isinstance(rng, np.random.Generator):
        return tuple(int(v) for v in rng.integers(0, 2**32, size=2))
    if isinstance(rng, (int, np.integer)):
        return (int(rng),)
    return tuple(int(v) for v in rng)


class SiteSimulator:
    """A synthetic multi-year SITS of one ``size × size`` site (10 m pixels).

    ``dates``: the acquisition dates (ascending, unique); ``years``: label years (ascending);
    ``key``: seed tuple; ``cloudiness``: mean cloud fraction in [0, 1].
    """

    def __init__(self, size: int, dates: Sequence[dt.date], years: Sequence[int], key: tuple[int, ...],
                 cloudiness: float = 0.3):
        self.size, self.key, self.cloudiness = int(size), tuple(key), float(cloudiness)
        self.dates = list(dates)
        self.years = tuple(sorted(int(y) for y in years))
        rng = lambda *s: np.random.default_rng(self.key + s)  # noqa: E731 - one seed tuple per stream
        self.land = make_landscape(self.size, self.years, rng(1))
        self.pheno = draw_phenology(self.land, rng(2))
        self.zenith, self.azimuth = sun_angles(self.dates)
        self.times = overpass_times(len(self.dates), rng(3))

        tex = rng(4)
        h = w = self.size
        first = self.land.classes[0]
        unit = self.land.unit.ravel()  # (N,)
        self._unit = unit
        green_tex = 0.7 * smooth_field(tex, 1, h, w, 6.0)[0] + 0.5 * fine_noise(tex, 1, h, w)[0]
        self._green_jitter = (0.07 * green_tex).ravel().astype(np.float32)  # relative, (N,)
        field_soil = tex.uniform(0.75, 1.3, size=self.land.n_units).astype(np.float32)
        soil_tex = 0.06 * smooth_field(tex, 1, h, w, 4.0)[0].ravel()
        self._soil_gain = field_soil[unit] * (1 + soil_tex).astype(np.float32)  # (N,)
        bright = smooth_field(tex, 1, h, w, 3.0)[0] * 0.5 + fine_noise(tex, 1, h, w, 0.3)[0] * 0.85
        self._brightness = (1 + TEXTURE[first[unit]] * bright.ravel()).astype(np.float32)
        self._nir_gain = NIR_GAIN[first[unit]]  # (N,)
        self._water = (first == C.WATER)[self.land.unit]  # (H, W)
        self.chunk = max(1, min(64, CHUNK_PIXEL_DATES // (h * w)))

    @property
    def n_chunks(self) -> int:
        return -(-len(self.dates) // self.chunk)

    def labels(self, year: int) -> np.ndarray:
        """Class map of ``year``: ``(H, W)`` uint8, 0 = background."""
        return self.land.labels(year)

    def change(self, before: int, after: int) -> np.ndarray:
        """Change truth between two years: ``(H, W)`` uint8, 1 changed / 0 same / 255 excluded."""
        return change_map(self.labels(before), self.labels(after))

    def render(self, chunk: int) -> dict[str, np.ndarray]:
        """Render the dates of one chunk.

        Returns ``dn`` ``(T, C, H, W)`` uint16 (reflectance × 10 000, 0 = nodata), ``scl``
        ``(T, H, W)`` uint8, ``surface`` ``(T, C, H, W)`` uint16 cloud-free noise-free reflectance
        × 10 000, ``cover`` ``(T,)`` drawn cloud fraction; T ≤ :attr:`chunk`.
        """
        sl = slice(chunk * self.chunk, min((chunk + 1) * self.chunk, len(self.dates)))
        dates = self.dates[sl]
        t, h = len(dates), self.size
        rng = np.random.default_rng(self.key + (100, chunk))
        ordinals = np.array([d.toordinal() for d in dates], np.float64)
        doy = day_of_year(dates)

        frac = self.pheno.fractions(ordinals, doy).transpose(0, 2, 1)[:, :, self._unit]  # (T, E, N)
        green = frac[:, GREEN]
        jitter = np.clip(green * (1 + self._green_jitter), 0, 0.98) - green  # within-field vigour
        green += jitter
        frac[:, SOIL] = np.clip(frac[:, SOIL] - jitter, 0, None)
        wet = rng.uniform(0.8, 1.08, size=(t, 1)).astype(np.float32)  # soil moisture after rain
        frac[:, SOIL] *= self._soil_gain * wet
        surface = mix(frac, self._nir_gain, self._brightness)  # (T, C, N)
        surface = np.clip(surface, 0.0005, 1.2, out=surface).reshape(t, -1, h, h)  # (T, C, H, W)

        sky = draw_sky(h, doy, self.zenith[sl], self.azimuth[sl], self.cloudiness, rng)
        gain = 1 + rng.normal(0, 0.015, size=(t, surface.shape[1], 1, 1)).astype(np.float32)  # residual correction
        seen = observe(surface * gain, sky)
        noise = rng.standard_normal(seen.shape, dtype=np.float32)  # sensor noise, std 0.0015 + 0.6 %
        noise *= 0.0015 + 0.006 * seen
        seen += noise
        dn = np.clip(np.rint(seen * 10000), 1, 65535).astype(np.uint16)
        dn *= ~sky.nodata[:, None]  # 0 = nodata
        return {
            "dn": dn,
            "scl": scene_classification(surface, self._water, sky),
            "surface": np.clip(np.rint(surface * 10000), 1, 65535).astype(np.uint16),
            "cover": sky.cover,
        }

    def render_all(self) -> Iterator[dict[str, np.ndarray]]:
        for c in range(self.n_chunks):
            yield self.render(c)


def generate_site(size: int = 64, dates: Sequence[dt.date] | None = None, *, years: Sequence[int] | None = None,
                  rng: np.random.Generator | int | Sequence[int] | None = None, cloudiness: float = 0.3,
                  revisit: int = 5) -> dict:
    """Simulate one site in memory.

    ``size``: H = W in pixels (10 m). ``dates``: acquisition dates; if None they are drawn
    (irregular, ≈ ``revisit`` days) over the ``years`` (default 2018, 2019). ``years``: label
    years; default: the years of ``dates``. ``rng``: a Generator, an int seed or a seed tuple.

    Returns a dict: ``dates`` list of T dates; ``days`` ``(T,)`` float32 days since 2014-03-03;
    ``dn`` ``(T, 10, H, W)`` uint16 reflectance × 10 000 (0 = nodata); ``scl`` ``(T, H, W)`` uint8
    Sen2Cor classes; ``surface`` ``(T, 10, H, W)`` uint16 cloud-free truth; ``cover`` ``(T,)``
    cloud fraction; ``labels`` {year: ``(H, W)`` uint8}; ``change`` {(year, next year): ``(H, W)``
    uint8 1/0/255}; ``parcels`` ``(H, W)`` int32 field index; ``sun_zenith``, ``sun_azimuth`` ``(T,)`` degrees.
    """
    key = _key(rng)
    if dates is None:
        years = tuple(years or (2018, 2019))
        dates = draw_dates(years, revisit, key)
    dates = sorted(dates)
    years = tuple(sorted(set(years) if years else {d.year for d in dates}))
    check_options(size, cloudiness, revisit, years)
    outside = [d for d in dates if not years[0] <= d.year <= years[-1]]
    if outside:
        raise AliseError(f"date {outside[0]} lies outside the label years {years[0]}–{years[-1]}: widen years=")
    if not dates:
        raise AliseError("no acquisition date to simulate: give a longer period or a smaller --revisit")
    sim = SiteSimulator(size, dates, years, key, cloudiness)
    parts = list(sim.render_all())
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    out.update(
        dates=sim.dates, days=days_since_origin(sim.dates),
        labels={y: sim.labels(y) for y in years},
        change={(a, b): sim.change(a, b) for a, b in zip(years[:-1], years[1:])},
        parcels=sim.land.unit.reshape(size, size), sun_zenith=sim.zenith, sun_azimuth=sim.azimuth,
    )
    return out


def draw_dates(years: Sequence[int], revisit: int, key: tuple[int, ...], start: dt.date | None = None,
               end: dt.date | None = None) -> list[dt.date]:
    """Acquisition dates of a site: irregular, within ``[start, end]`` (default: all of ``years``)
    and inside one of ``years``. Deterministic in ``key``."""
    start = start or dt.date(min(years), 1, 1)
    end = end or dt.date(max(years), 12, 31)
    dates = acquisition_dates(start, end, revisit, np.random.default_rng(tuple(key) + (9,)))
    return [d for d in dates if d.year in set(years)]


def check_options(size: int, cloudiness: float, revisit: int, years: Sequence[int]) -> None:
    """Raise :class:`AliseError` for options that make no sense."""
    if not 16 <= size <= 8192:
        raise AliseError(f"--size {size}: must be between 16 and 8192 pixels")
    if not 0.0 <= cloudiness <= 1.0:
        raise AliseError(f"--cloudiness {cloudiness}: must be a fraction between 0 and 1")
    if not 1 <= revisit <= 60:
        raise AliseError(f"--revisit {revisit}: must be between 1 and 60 days")
    bad = [y for y in years if not 2015 <= y <= 2100]
    if bad:
        raise AliseError(f"year {bad[0]} out of range: Sentinel-2 data start in 2015 (use 2015–2100)")
