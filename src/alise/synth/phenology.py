"""What covers each field on each day: endmember fractions from class-specific phenology.

Annual crops follow a **double-logistic** green-vegetation curve (the standard phenology model
of Beck et al. 2006 / TIMESAT), written in days since 1 January of the harvest year ``t``::

    green(t) = [fa·L(t − emergence) + (fmax − fa)·L(t − greenup, r1)] · (1 − L(t − eos, r2)) · (1 − L(t − harvest))
    dry(t)   = 0.85·fmax · L(t − eos, r2) · (1 − L(t − harvest))        senescing canopy until harvest
    stubble  = residue · L(t − harvest) · exp(−(t − harvest) / 35 d)    then ploughed to bare soil

with ``L(x, r) = 1 / (1 + exp(−x / r))``. Winter crops emerge in the autumn before (``emergence``
< 0, ``fa`` = the winter plateau) and green up in spring; summer crops have ``fa = 0``. Rapeseed
(April–May) and sunflower (July) flower yellow. Every field and year gets its own jitter (a
common ±5-day weather shift per year, ±6 days per field, ±7 more days for the harvest, rates
×0.85–1.2, peak ×0.9–1.04). Bare soil fills the time between harvest and the next crop; a third
of the spring crops sown after a cereal or rapeseed are preceded by an autumn catch crop.

Grassland stays green all year with a spring flush and two or three mowing events (some
parcels are grazed instead); a meadow converted to a crop is ploughed before sowing, a crop
converted to grass is sown in late summer. Forest mixes deciduous (leaf-out ≈ 22 April,
leaf-fall ≈ 20 October) and evergreen canopy over dark woody material; after a clear-cut the
parcel shows slash, bare soil and slowly regrowing herbs. Water, built-up and field margins
have simple seasonal cycles.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from alise.synth import classes as C
from alise.synth.parcels import Landscape
from alise.synth.spectra import BUILT, DRY, ENDMEMBERS, FLOWER, GREEN, SOIL, WATER, WOODY

# emergence, fa, greenup, r1, fmax, eos, r2, harvest, residue, flower day, flower amount, flower width (days)
_CROP_TABLE: dict[int, tuple[float, ...]] = {
    C.WHEAT: (-55, 0.25, 90, 9, 0.88, 172, 8, 208, 0.35, 0, 0, 1),
    C.BARLEY: (-65, 0.30, 78, 9, 0.84, 155, 7, 188, 0.35, 0, 0, 1),
    C.RAPESEED: (-110, 0.55, 60, 10, 0.90, 160, 9, 192, 0.30, 112, 0.45, 10),
    C.MAIZE: (0, 0.0, 160, 7, 0.92, 255, 9, 285, 0.30, 0, 0, 1),
    C.SUNFLOWER: (0, 0.0, 140, 7, 0.72, 215, 7, 255, 0.25, 196, 0.30, 9),
    C.BEET: (0, 0.0, 150, 9, 0.95, 290, 15, 300, 0.05, 0, 0, 1),
    C.POTATO: (0, 0.0, 150, 6, 0.85, 215, 6, 245, 0.05, 0, 0, 1),
    C.SOY: (0, 0.0, 168, 7, 0.85, 255, 7, 278, 0.15, 0, 0, 1),
}
_FIELDS = ("emergence", "fa", "greenup", "r1", "fmax", "eos", "r2", "harvest", "residue", "fl_day", "fl_amp", "fl_w")
_TABLE = np.zeros((C.N_CLASSES, len(_FIELDS)), np.float64)
_TABLE[:, _FIELDS.index("r1")] = _TABLE[:, _FIELDS.index("r2")] = _TABLE[:, _FIELDS.index("fl_w")] = 1.0
for _k, _row in _CROP_TABLE.items():
    _TABLE[_k] = _row
_WINTER = (C.WHEAT, C.BARLEY, C.RAPESEED)
_SPRING = (C.MAIZE, C.SUNFLOWER, C.BEET, C.POTATO, C.SOY)


def L(x, r=2.5):
    """Logistic step ``1 / (1 + exp(−x / r))`` (``r`` in days)."""
    return expit(x / r)


def _seasonal(doy):
    """Generic temperate green-up/senescence bump of perennial vegetation, 0 in winter, ≈1 in summer."""
    return L(doy - 75, 12) * (1 - L(doy - 300, 15))


@dataclass
class Phenology:
    """Per-site phenology parameters (all drawn once, evaluated for any dates).

    ``jan1``, ``length``: ``(S,)`` ordinal of 1 January and days in each season year.
    ``crop``: dict of ``(S, U)`` jittered crop parameters (see module docstring).
    ``cover``: ``(S, U)`` bool catch crop before that season's spring crop, ``cover_end`` its
    destruction day. ``grass_start``/``grass_end``: ``(S, U)`` meadow window in season days;
    ``mow``: ``(S, U, 3)`` mowing days (``inf`` = grazed).
    """

    land: Landscape
    jan1: np.ndarray
    length: np.ndarray
    crop: dict[str, np.ndarray]
    cover: np.ndarray
    cover_end: np.ndarray
    grass_start: np.ndarray
    grass_end: np.ndarray
    grass_new: np.ndarray
    mow: np.ndarray
    unit_param: np.ndarray  # (U,) water algae / built share / margin greenness, by unit kind

    def fractions(self, ordinals: np.ndarray, doy: np.ndarray) -> np.ndarray:
        """Endmember fractions of every unit: ``(T, U, E)`` float32, rows sum to 1.

        ``ordinals``: ``(T,)`` proleptic Gregorian ordinals of the dates; ``doy``: ``(T,)`` day of year.
        """
        land = self.land
        first = land.classes[0]
        u = land.n_units
        out = np.zeros((len(ordinals), u, len(ENDMEMBERS)), np.float32)
        doy_c = np.asarray(doy, np.float64)[:, None]  # (T, 1)

        ag = np.isin(land.classes, C.ROTATED).any(axis=0)  # (U,)
        if ag.any():
            t = (np.asarray(ordinals, np.float64)[:, None] - self.jan1[None, :])[:, :, None]  # (T, S, 1)
            g, d, fl = self._agriculture(t, ag)
            out[:, ag, GREEN], out[:, ag, DRY], out[:, ag, FLOWER] = g, d, fl

        forest = np.isin(first, [C.FOREST, C.CLEARCUT])
        if forest.any():
            out[:, forest] = self._forest(np.asarray(ordinals, np.float64)[:, None], doy_c, forest)

        bump = _seasonal(doy_c)  # (T, 1)
        water = first == C.WATER
        turbid = 0.03 + 0.03 * (0.5 + 0.5 * np.sin(2 * np.pi * doy_c / 97.0 + 7 * self.unit_param[water]))
        out[:, water, GREEN] = 0.05 * self.unit_param[water] * bump
        out[:, water, SOIL] = turbid
        out[:, water, WATER] = 1 - turbid - out[:, water, GREEN]

        built = first == C.BUILT
        share = self.unit_param[built]
        out[:, built, BUILT] = share
        out[:, built, GREEN] = (1 - share) * 0.6 * (0.4 + 0.6 * bump)
        out[:, built, SOIL] = (1 - share) * 0.25

        m = land.margin
        out[:, m, GREEN] = (0.2 + 0.35 * bump[:, 0]) * self.unit_param[m]
        out[:, m, DRY] = 0.05 + 0.2 * (1 - bump[:, 0])

        live = out.sum(axis=2, keepdims=True)
        out /= np.maximum(live, 1.0)  # never more than 100 %
        out[..., SOIL] += np.clip(1 - out.sum(axis=2), 0, None)  # the rest is bare soil
        return out

    def _agriculture(self, t: np.ndarray, ag: np.ndarray):
        """Green, dry, flower fractions ``(T, U_ag)`` of crop/grass units from all seasons ``t`` ``(T, S, 1)``."""
        cls = self.land.classes[:, ag]  # (S, Ua)
        p = {k: v[:, ag] for k, v in self.crop.items()}
        is_crop = np.isin(cls, C.CROPS)
        alive = 1 - L(t - p["harvest"])
        green = (p["fa"] * L(t - p["emergence"], 8) + (p["fmax"] - p["fa"]) * L(t - p["greenup"], p["r1"])) \
            * (1 - L(t - p["eos"], p["r2"])) * alive
        dry = 0.85 * p["fmax"] * L(t - p["eos"], p["r2"]) * alive
        dry += p["residue"] * L(t - p["harvest"]) * np.exp(-np.clip(t - p["harvest"], 0, None) / 35.0)
        flower = np.minimum(p["fl_amp"] * np.exp(-0.5 * ((t - p["fl_day"]) / p["fl_w"]) ** 2), 0.6 * green)
        green = (green - flower) * is_crop
        dry, flower = dry * is_crop, flower * is_crop

        cover = self.cover[:, ag]  # catch crop in the autumn before a spring crop
        cend = self.cover_end[:, ag]
        green += cover * 0.45 * L(t + 110, 7) * (1 - L(t - cend, 5))

        gs, ge, gn = self.grass_start[:, ag], self.grass_end[:, ag], self.grass_new[:, ag]
        doy = np.mod(t, 365.25)
        window = L(t - gs, 1.5) * (1 - L(t - ge, 1.5)) * (cls == C.GRASS)
        estab = np.where(gn, L(t - gs - 15, 6), 1.0)
        since = t[..., None] - self.mow[:, ag][None]  # (T, S, Ua, 3)
        cut = np.where(since >= 0, np.exp(-np.clip(since, 0, None) / 18.0), 0.0).sum(axis=-1)
        hay = np.where(since >= 0, np.exp(-np.clip(since, 0, None) / 6.0), 0.0).sum(axis=-1)
        base = 0.42 + 0.40 * _seasonal(doy)
        green += window * estab * base * np.clip(1 - 0.55 * cut, 0.15, 1)
        dry += window * (0.08 + 0.10 * (1 - _seasonal(doy)) + 0.3 * np.minimum(hay, 1))
        return (np.clip(green.sum(axis=1), 0, 0.97), np.clip(dry.sum(axis=1), 0, 1),
                np.clip(flower.sum(axis=1), 0, 0.5))

    def _forest(self, ordc: np.ndarray, doy: np.ndarray, forest: np.ndarray) -> np.ndarray:
        """Fractions ``(T, U_f, E)`` of forest units, standing or clear-cut (``ordc``, ``doy``: ``(T, 1)``)."""
        e = self.land.evergreen[forest]  # (Uf,)
        leaf = L(doy - 112, 6) * (1 - L(doy - 292, 8))
        g = e * (0.70 + 0.06 * leaf) + (1 - e) * (0.22 + 0.63 * leaf)
        dry = 0.05 + (1 - e) * 0.15 * (1 - leaf)
        woody = np.maximum(0.93 - g - dry, 0.02)
        cut = self.land.cut_ordinal[forest]
        after = ordc >= cut  # (T, Uf)
        age = np.clip(ordc - np.where(np.isfinite(cut), cut, 0), 0, None) / 365.25
        g_cut = (0.08 + 0.5 * (1 - np.exp(-age / 1.5))) * (0.3 + 0.7 * _seasonal(doy))
        dry_cut = 0.05 + 0.45 * np.exp(-age)
        out = np.zeros(after.shape + (len(ENDMEMBERS),), np.float32)
        out[..., GREEN] = np.where(after, g_cut, g)
        out[..., DRY] = np.where(after, dry_cut, dry)
        out[..., WOODY] = np.where(after, 0.05, woody)
        return out


def draw_phenology(land: Landscape, rng: np.random.Generator) -> Phenology:
    """Draw every field's and year's jitter, catch crops, meadow windows and mowing dates."""
    cls = land.classes  # (S, U)
    s, u = cls.shape
    jan1 = np.array([dt.date(y, 1, 1).toordinal() for y in land.seasons], np.float64)
    length = np.array([dt.date(y + 1, 1, 1).toordinal() for y in land.seasons], np.float64) - jan1

    base = _TABLE[cls]  # (S, U, F)
    crop = {f: base[..., i].copy() for i, f in enumerate(_FIELDS)}
    shift = rng.normal(0, 5, size=(s, 1)) + rng.normal(0, 6, size=(s, u))  # weather + farmer
    for f in ("emergence", "greenup", "eos", "harvest", "fl_day"):
        crop[f] += shift
    crop["harvest"] += rng.normal(0, 7, size=(s, u))
    crop["harvest"] = np.maximum(crop["harvest"], crop["eos"] + 8)
    for f in ("r1", "r2"):
        crop[f] *= rng.uniform(0.85, 1.2, size=(s, u))
    crop["fmax"] = np.minimum(crop["fmax"] * rng.uniform(0.9, 1.04, size=(s, u)), 0.97)
    crop["fa"] *= rng.uniform(0.8, 1.2, size=(s, u))

    prev = np.concatenate([cls[:1], cls[:-1]])  # (S, U), season 0 assumes no change
    nxt = np.concatenate([cls[1:], cls[-1:]])
    after_cereal = np.isin(prev, _WINTER) | (np.arange(s)[:, None] == 0)
    cover = np.isin(cls, _SPRING) & after_cereal & (rng.random((s, u)) < 0.35)
    cover_end = rng.normal(-20, 20, size=(s, u))

    prev_harvest = np.concatenate([crop["harvest"][:1], crop["harvest"][:-1]]) - np.concatenate([length[:1], length[:-1]])[:, None]
    grass_new = (prev != C.GRASS) & (cls == C.GRASS)
    grass_start = np.where(grass_new, prev_harvest + 25, 0.0)  # continuing meadows hand over at 1 January
    grass_start[0] = np.where(grass_new[0], grass_start[0], -60.0)
    nxt_emerge = np.concatenate([crop["emergence"][1:], crop["emergence"][-1:]])
    nxt_greenup = np.concatenate([crop["greenup"][1:], crop["greenup"][-1:]])
    grass_end = np.where(np.isin(nxt, _WINTER), length[:, None] + nxt_emerge - 25,
                         np.where(np.isin(nxt, _SPRING), length[:, None] + nxt_greenup - 45, length[:, None]))
    grass_end[-1] = length[-1] + 60  # the hidden last season has no successor
    mow = np.array([135.0, 185.0, 240.0]) + rng.normal(0, 8, size=(s, u, 3))
    mow[rng.random((s, u)) < 0.3] = np.inf  # grazed, not mown
    mow[:, :, 2][rng.random((s, u)) < 0.4] = np.inf  # only two cuts

    kind = cls[0]
    param = np.ones(u, np.float64)
    param[kind == C.WATER] = rng.uniform(0, 1, size=int((kind == C.WATER).sum()))
    param[kind == C.BUILT] = rng.uniform(0.55, 0.85, size=int((kind == C.BUILT).sum()))
    param[land.margin] = rng.uniform(0.8, 1.2)
    return Phenology(land=land, jan1=jan1, length=length, crop=crop, cover=cover, cover_end=cover_end,
                     grass_start=grass_start, grass_end=grass_end, grass_new=grass_new, mow=mow, unit_param=param)
