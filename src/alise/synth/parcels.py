"""The landscape of one site: fields, what grows on them each year, and the margins between them.

Fields are the cells of an *anisotropic* Voronoi diagram: seeds are scattered uniformly, then the
distance is measured in a frame rotated by a site-wide angle and stretched along one axis, so
fields come out as elongated convex polygons sharing a dominant orientation, like the strip
parcels of a real agricultural landscape (mean area ``parcel_area`` pixels, 2.5 ha by default).

Each field gets a land use from three smooth random fields sampled at its seed (so woods,
villages and ponds form contiguous patches rather than salt-and-pepper): forest, built-up,
water, otherwise agriculture (crops or grassland). Agricultural fields then follow the rotation
chain of :mod:`alise.synth.classes` year after year; forests may be clear-cut.

A one-pixel margin (tracks, hedges, ditches; label 0) separates neighbouring fields unless both
are water or both are forest. Margins are one extra "unit" with its own, grass-strip phenology.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from alise.synth import classes as C
from alise.synth.fields import smooth_field

#: Mean field size in pixels (250 px = 2.5 ha at 10 m).
PARCEL_AREA = 250.0


@dataclass(frozen=True)
class Landscape:
    """What is where, and when.

    ``unit``: ``(H, W)`` int32, the unit (field) index of each pixel, ``n_units − 1`` = margins.
    ``seasons``: the calendar years simulated (label years plus the next one, whose winter crops
    are sown in the autumn of the last label year). ``classes``: ``(S, U)`` uint8 class of each
    unit per season. ``cut_ordinal``: ``(U,)`` float64 proleptic ordinal day of the clear-cut
    (``inf`` = never). ``evergreen``: ``(U,)`` float32 conifer share of forest units.
    """

    unit: np.ndarray
    seasons: tuple[int, ...]
    classes: np.ndarray
    cut_ordinal: np.ndarray
    evergreen: np.ndarray

    @property
    def n_units(self) -> int:
        return int(self.classes.shape[1])

    @property
    def margin(self) -> int:
        """Index of the margin unit (always the last one)."""
        return self.n_units - 1

    def season_index(self, year: int) -> int:
        return self.seasons.index(year)

    def labels(self, year: int) -> np.ndarray:
        """Class map of ``year``: ``(H, W)`` uint8 (0 = background)."""
        return self.classes[self.season_index(year)][self.unit]


def _voronoi(size: int, rng: np.random.Generator, parcel_area: float) -> tuple[np.ndarray, np.ndarray]:
    """Anisotropic Voronoi fields: ``(H, W)`` int32 cell index and ``(P, 2)`` seed positions (row, col)."""
    pad = 0.15 * size + 10.0  # seeds beyond the edges so border fields are cut, not swollen
    span = size + 2 * pad
    n = max(4, int(round(span * span / parcel_area)))
    seeds = rng.uniform(-pad, size + pad, size=(n, 2))
    theta = rng.uniform(0, np.pi)
    stretch = rng.uniform(1.4, 2.4)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    frame = rot @ np.diag([1.0, 1.0 / stretch])  # distances measured in a rotated, squeezed frame
    rr, cc = np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64), indexing="ij")
    pix = np.stack([rr.ravel(), cc.ravel()], axis=1)  # (H·W, 2)
    _, idx = cKDTree(seeds @ frame).query(pix @ frame, workers=1)
    used, cell = np.unique(idx, return_inverse=True)  # renumber to the cells that are visible
    return cell.reshape(size, size).astype(np.int32), seeds[used]


def _land_use(seeds: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Class of each field's first year from smooth zoning fields at its seed: ``(P,)`` uint8."""
    zones = smooth_field(rng, 3, size, size, cell=max(24.0, size / 3))  # (3, H, W)
    r = np.clip(np.rint(seeds[:, 0]), 0, size - 1).astype(int)
    c = np.clip(np.rint(seeds[:, 1]), 0, size - 1).astype(int)
    z = zones[:, r, c]  # (3, P)
    out = C.draw_initial(len(seeds), rng)
    out[z[0] > 1.1] = C.FOREST
    out[z[1] > 1.45] = C.BUILT
    out[z[2] > 1.8] = C.WATER
    return out


def _margins(cell: np.ndarray, first: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool, True on one-pixel margins between fields (not inside water or forest blocks)."""
    merge = np.isin(first, [C.WATER, C.FOREST])
    kind = first[cell]
    m = np.zeros(cell.shape, bool)
    for a, b, sl in ((cell[:, :-1], cell[:, 1:], np.s_[:, :-1]), (cell[:-1, :], cell[1:, :], np.s_[:-1, :])):
        differ = a != b
        same_block = (kind[sl] == first[b]) & merge[b]
        m[sl] |= differ & ~same_block
    return m


def make_landscape(size: int, years: tuple[int, ...], rng: np.random.Generator,
                   parcel_area: float = PARCEL_AREA) -> Landscape:
    """Draw fields, land use, rotations over ``years`` (+ one more season) and clear-cuts.

    ``years`` are the label years, ascending; returns a :class:`Landscape` on a ``size × size`` grid.
    """
    cell, seeds = _voronoi(size, rng, parcel_area)
    first = _land_use(seeds, size, rng)
    margin = _margins(cell, first)
    p = len(seeds)
    unit = np.where(margin, p, cell).astype(np.int32)

    seasons = tuple(range(years[0], years[-1] + 2))
    classes = np.zeros((len(seasons), p + 1), np.uint8)
    classes[:, :p] = C.draw_successions(first, len(seasons), rng)

    forest = first == C.FOREST
    cut_ordinal = np.full(p + 1, np.inf)
    cut_year = rng.random((len(seasons) - 1, p)) < C.CLEARCUT_RATE  # (S−1, P), no cut in the hidden season
    has_cut = forest & cut_year.any(axis=0)
    first_year = np.asarray(seasons)[cut_year.argmax(axis=0)]
    jan1 = np.array([dt.date(int(y), 1, 1).toordinal() for y in first_year], np.float64)
    cut_ordinal[:p] = np.where(has_cut, jan1 + rng.uniform(5, 120, size=p), np.inf)  # dormant-season logging
    for s, y in enumerate(seasons):
        cut_by_end = cut_ordinal[:p] < dt.date(y + 1, 1, 1).toordinal()
        classes[s, :p] = np.where(forest & cut_by_end, C.CLEARCUT, classes[s, :p])
    evergreen = np.zeros(p + 1, np.float32)
    evergreen[:p] = np.where(forest, rng.beta(0.6, 1.2, size=p), 0.0)
    return Landscape(unit=unit, seasons=seasons, classes=classes, cut_ordinal=cut_ordinal, evergreen=evergreen)


def change_map(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Change truth between two label maps ``(H, W)``: uint8 1 changed, 0 same, 255 background in either."""
    out = (before != after).astype(np.uint8)
    out[(before == C.BACKGROUND) | (after == C.BACKGROUND)] = 255
    return out
