"""The land-cover legend of the synthetic sites and how crops follow each other.

Ids are written to ``classes.csv`` and to the ``labels/YYYY.tif`` rasters (uint8). ``0`` is the
background: field margins, tracks and hedges between parcels, never a training target (it is
excluded from change truth, like background in RotCrop, docs/reference.md §8).

Crop successions follow a first-order Markov chain over years, ``ROTATION[a, b] = P(crop b in
year y+1 | crop a in year y)``, written from common north-west European practice: a cereal after
a break crop (rapeseed, beet, potatoes, maize, soybean, sunflower), winter barley before
rapeseed, maize partly in monoculture, grassland mostly permanent. Forests are not rotated; they
are clear-cut at random (:data:`CLEARCUT_RATE` per year) and then stay ``clear_cut``.
"""

from __future__ import annotations

import numpy as np

#: ``(id, name)`` of every class; the id is the label value.
CLASSES: tuple[tuple[int, str], ...] = (
    (0, "background"),
    (1, "winter_wheat"),
    (2, "winter_barley"),
    (3, "maize"),
    (4, "rapeseed"),
    (5, "sunflower"),
    (6, "sugar_beet"),
    (7, "potatoes"),
    (8, "soybean"),
    (9, "grassland"),
    (10, "forest"),
    (11, "clear_cut"),
    (12, "water"),
    (13, "built_up"),
)

CLASS_NAMES: dict[int, str] = dict(CLASSES)
BACKGROUND, WHEAT, BARLEY, MAIZE, RAPESEED, SUNFLOWER, BEET, POTATO, SOY = range(9)
GRASS, FOREST, CLEARCUT, WATER, BUILT = 9, 10, 11, 12, 13
#: Annual crops (double-logistic phenology with sowing and harvest).
CROPS: tuple[int, ...] = (WHEAT, BARLEY, MAIZE, RAPESEED, SUNFLOWER, BEET, POTATO, SOY)
#: Classes that take part in the rotation chain (crops and grassland).
ROTATED: tuple[int, ...] = CROPS + (GRASS,)
N_CLASSES = len(CLASSES)

#: Share of each rotated class among agricultural parcels in the first year (sums to 1).
INITIAL_SHARE: dict[int, float] = {
    WHEAT: 0.22, BARLEY: 0.10, MAIZE: 0.17, RAPESEED: 0.09, SUNFLOWER: 0.06,
    BEET: 0.08, POTATO: 0.08, SOY: 0.06, GRASS: 0.14,
}

#: Year-to-year succession probabilities, rows = this year, columns = next year.
_ROTATION_ROWS: dict[int, dict[int, float]] = {
    WHEAT: {WHEAT: 0.14, BARLEY: 0.14, MAIZE: 0.22, RAPESEED: 0.16, SUNFLOWER: 0.08,
            BEET: 0.12, POTATO: 0.10, SOY: 0.08, GRASS: 0.02},
    BARLEY: {WHEAT: 0.15, MAIZE: 0.15, RAPESEED: 0.45, SUNFLOWER: 0.08, BEET: 0.07,
             POTATO: 0.05, SOY: 0.03, GRASS: 0.02},
    MAIZE: {WHEAT: 0.40, BARLEY: 0.06, MAIZE: 0.35, SUNFLOWER: 0.04, BEET: 0.06,
            POTATO: 0.04, SOY: 0.08, GRASS: 0.02},
    RAPESEED: {WHEAT: 0.75, BARLEY: 0.20, MAIZE: 0.05},
    SUNFLOWER: {WHEAT: 0.70, BARLEY: 0.15, MAIZE: 0.15},
    BEET: {WHEAT: 0.75, BARLEY: 0.10, MAIZE: 0.15},
    POTATO: {WHEAT: 0.70, BARLEY: 0.10, MAIZE: 0.20},
    SOY: {WHEAT: 0.55, MAIZE: 0.40, SUNFLOWER: 0.05},
    GRASS: {GRASS: 0.93, MAIZE: 0.04, WHEAT: 0.03},
}

#: Probability that a standing forest parcel is clear-cut during a given year.
CLEARCUT_RATE = 0.08


def rotation_matrix() -> np.ndarray:
    """The succession matrix over class ids: ``(K, K)`` float64, rows of rotated classes sum to 1.

    Rows of non-rotated classes are the identity (a class stays what it is).
    """
    m = np.eye(N_CLASSES)
    for a, row in _ROTATION_ROWS.items():
        m[a] = 0.0
        for b, p in row.items():
            m[a, b] = p
        m[a] /= m[a].sum()
    return m


def draw_successions(first: np.ndarray, n_years: int, rng: np.random.Generator) -> np.ndarray:
    """Follow the rotation chain from the first-year classes.

    ``first`` is ``(U,)`` int class ids; returns ``(Y, U)`` uint8 with row 0 = ``first``.
    Vectorised over parcels: one uniform draw per parcel and year against the cumulative rows.
    """
    cum = np.cumsum(rotation_matrix(), axis=1)  # (K, K)
    out = np.empty((n_years, first.size), np.uint8)
    out[0] = first
    for y in range(1, n_years):  # a handful of years, parcels vectorised
        u = rng.random(first.size)[:, None]
        nxt = (u > cum[out[y - 1]]).sum(axis=1)
        out[y] = np.minimum(nxt, N_CLASSES - 1)
    return out


def draw_initial(n: int, rng: np.random.Generator) -> np.ndarray:
    """First-year classes of ``n`` agricultural parcels, drawn from :data:`INITIAL_SHARE`: ``(n,)``."""
    ids = np.array(list(INITIAL_SHARE), np.uint8)
    p = np.array(list(INITIAL_SHARE.values()))
    return rng.choice(ids, size=n, p=p / p.sum())


def classes_csv() -> str:
    """The ``classes.csv`` text: header ``id,name`` then one line per class."""
    return "id,name\n" + "".join(f"{i},{name}\n" for i, name in CLASSES)
