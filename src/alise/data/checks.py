"""``alise check``: validate an input and summarise it (docs/design.md §2, §5).

Opening a source already enforces the hard rules (dates parse and are unique, one grid, 10 bands
in a known order, readable files, masks/labels on the image grid); reading it all here adds the
value rules (units, +1000 offset, at least one clear pixel) and collects what a user should know
before training on it: date span, clear fraction per date, band order, value ranges, labels, and
warnings about Sen2Cor classes that the default validity rule treats in a debatable way:

* **SCL 11 (snow)** on dates where snow is implausible (April–October) or that are mostly cloudy:
  Sen2Cor labels bright clouds as snow (the shipped real data does on 2017-12-12 and 2018-09-23).
* **SCL 7 (unclassified)** on otherwise clear dates: mostly usable surface, invalid by default.
"""

from __future__ import annotations


import numpy as np

from alise.errors import AliseError
from alise.data.source import SITSSource
from alise.data.validity import CLOUDY_SCL

_CHUNK_FLOATS = 2**25
_SAMPLE = 200_000


def _band_stats(src: SITSSource, progress) -> dict:
    """One pass over all dates: per-date clear/nodata fractions, per-band ranges, never-clear pixels."""
    T, C, H, W = src.shape
    step = max(1, _CHUNK_FLOATS // (C * H * W))
    lo, hi = np.full(C, np.inf), np.full(C, -np.inf)
    clear = np.zeros(T)
    nodata = np.zeros(T)
    ever_clear = np.zeros((H, W), bool)
    rng = np.random.default_rng(0)
    sample = []
    for first in range(0, T, step):
        raw = src.read(dates=slice(first, first + step))
        fin = np.isfinite(raw.dn)  # (t, C, H, W)
        dn = np.where(fin, raw.dn, np.nan)
        with np.errstate(all="ignore"):
            lo = np.fmin(lo, np.nanmin(dn, axis=(0, 2, 3)))
            hi = np.fmax(hi, np.nanmax(dn, axis=(0, 2, 3)))
        t = raw.valid.shape[0]
        clear[first:first + t] = raw.valid.reshape(t, -1).mean(axis=1)
        nodata[first:first + t] = (~fin.all(axis=1)).reshape(t, -1).mean(axis=1)
        ever_clear |= raw.valid.any(axis=0)
        px = np.moveaxis(raw.dn, 1, -1)[raw.valid]  # (n, C) clear pixels
        if len(px) > _SAMPLE // max(1, T // step):
            px = px[rng.choice(len(px), _SAMPLE // max(1, T // step), replace=False)]
        sample.append(px)
        progress.update(t)
    sample = np.concatenate(sample) if sample else np.empty((0, C))
    med = np.median(sample, axis=0) if len(sample) else np.full(C, np.nan)
    ranges = {b: {"min": _num(lo[c]), "max": _num(hi[c]), "clear_median": _num(med[c])} for c, b in enumerate(src.bands)}
    return {"clear": clear, "nodata": nodata, "never_clear": float(1 - ever_clear.mean()), "bands": ranges}


def _num(v) -> float | None:
    return float(v) if np.isfinite(v) else None


def _scl_warnings(src: SITSSource) -> list[str]:
    """Warnings about SCL 11 (snow) and SCL 7 (unclassified) for dated files with SCL masks."""
    from alise.data.folder import SceneSource

    if not isinstance(src, SceneSource) or src.mask_kind != "scl":
        return []
    scl = np.stack([src.raw_mask(i) for i in range(src.n_dates)])  # (T, H, W) uint8, on the image grid
    frac = lambda classes: np.isin(scl, list(classes)).reshape(len(scl), -1).mean(axis=1)  # noqa: E731
    snow, cloud, uncl = frac({11}), frac(CLOUDY_SCL), frac({7})
    out = []
    if 11 not in src.clear_scl:
        months = np.array([d.month for d in src.dates])
        suspicious = (snow > 0) & (((months >= 4) & (months <= 10)) | (cloud >= 0.3))
        if suspicious.any():
            listed = ", ".join(f"{src.dates[i]} ({snow[i]:.0%})" for i in np.flatnonzero(suspicious))
            out.append(f"SCL 11 (snow) on {int(suspicious.sum())} date(s) where it is probably bright cloud "
                       f"(April–October or mostly cloudy): {listed}; treated as invalid")
        winter = (snow > 0) & ~suspicious
        if winter.any():
            out.append(f"SCL 11 (snow) on {int(winter.sum())} winter date(s): "
                       + ", ".join(f"{src.dates[i]} ({snow[i]:.0%})" for i in np.flatnonzero(winter)) + "; treated as invalid")
    if 7 not in src.clear_scl:
        calm = cloud < 0.05
        total7 = uncl.sum()
        if calm.any() and total7 > 0:
            share = float(uncl[calm].mean())
            of_all = float(uncl[calm].sum() / total7)
            if share >= 0.01:
                out.append(f"SCL 7 (unclassified) covers {share:.1%} of pixels on the {int(calm.sum())} otherwise clear "
                           f"dates (< 5 % cloud/shadow), {of_all:.0%} of all SCL 7; invalid by default "
                           "(--clear-scl 4,5,6,7 counts it as clear)")
    return out


def check_source(src: SITSSource, progress=None) -> dict:
    """Validate one source by reading it all; return a JSON-ready summary.

    Raises :class:`AliseError` for fatal problems (0–1 reflectance, contradicting offset, no clear pixel).
    """
    decisions = src.offset_decisions()  # units and offset rules (may raise)
    st = _band_stats(src, progress if progress is not None else _NoProgress())
    clear = st["clear"]
    if not (clear > 0).any():
        raise AliseError(f"{src.path}: no clear pixel on any of the {src.n_dates} dates; check the cloud mask "
                         "(scl/ or mask/) or --clear-scl")
    warnings = [d.warning for d in decisions if d.warning]
    if src.n_dates == 1:
        warnings.append("only one date: encode works, but pre-training needs several dates to build two views")
    if st["never_clear"] > 0:
        warnings.append(f"{st['never_clear']:.1%} of pixels are never clear")
    bad = np.flatnonzero(st["nodata"] > 0)
    if bad.size:
        warnings.append(f"{bad.size} date(s) have nodata pixels (0, NaN or inf; treated as invalid), e.g. "
                        + ", ".join(f"{src.dates[i]} ({st['nodata'][i]:.1%})" for i in bad[:5]))
    warnings += _scl_warnings(src)
    g = src.grid
    orders = sorted(set(getattr(src, "band_order", ["as stored"])))
    summary = {
        "name": src.name, "path": str(src.path), "layout": src.layout,
        "grid": {"crs": None if g.crs is None else g.crs.to_string(), "height": g.height, "width": g.width,
                 "resolution": g.resolution, "transform": None if g.transform is None else list(g.transform)[:6]},
        "n_dates": src.n_dates, "first_date": src.dates[0].isoformat(), "last_date": src.dates[-1].isoformat(),
        "span_days": (src.dates[-1] - src.dates[0]).days,
        "mask": getattr(src, "mask_kind", None) or ("none" if src.layout == "pastis" else "see cube"),
        "clear_fraction": {"min": float(clear.min()), "median": float(np.median(clear)), "max": float(clear.max()),
                           "fully_cloudy_dates": int((clear == 0).sum()),
                           "per_date": {d.isoformat(): round(float(c), 4) for d, c in zip(src.dates, clear)}},
        "bands": list(src.bands), "band_order": orders,
        "units": "L2A digital numbers (reflectance × 10000), offset-corrected",
        "offset": [{"regime": d.regime, "dates": d.n_dates, "subtracted": d.offset, "how": d.how,
                    "clear_b02_p1": d.dark_p1} for d in decisions],
        "value_range": st["bands"], "labels": _labels(src), "warnings": warnings,
    }
    return summary


class _NoProgress:
    def update(self, n: int) -> None:
        pass


def _labels(src: SITSSource) -> dict | None:
    lab = src.labels()
    if lab is None:
        return None
    ids, counts = np.unique(lab, return_counts=True)
    names = src.class_names or {}
    return {"ignore": list(src.ignore_labels),
            "classes": [{"id": int(i), "name": names.get(int(i)), "pixels": int(n)} for i, n in zip(ids, counts)]}


def _offset_line(o: dict) -> str:
    p1 = "n/a" if o["clear_b02_p1"] is None else format(o["clear_b02_p1"], ".0f")
    head = f"  offset      {o['regime']}: {o['dates']} dates, "
    if o["how"].startswith("per-date"):  # mixed tags: the per-date values, not one number
        return f"{head}{o['how']}; clear B02 p1 {p1}"
    return f"{head}{o['subtracted']:g} DN subtracted ({o['how']}; clear B02 p1 {p1})"


def format_summary(s: dict) -> str:
    """A human-readable report of one :func:`check_source` summary."""
    g, cf = s["grid"], s["clear_fraction"]
    res = "" if g["resolution"] is None else f", {g['resolution'][0]:g} m pixels"
    lines = [
        f"{s['name']}  ({s['layout']} layout)  {s['path']}",
        f"  grid        {g['height']} × {g['width']} px, CRS {g['crs'] or 'none'}{res}",
        f"  dates       {s['n_dates']}, {s['first_date']} → {s['last_date']} ({s['span_days']} days)",
        f"  clear       per date min {cf['min']:.3f} / median {cf['median']:.3f} / max {cf['max']:.3f}; "
        f"{cf['fully_cloudy_dates']} fully cloudy date(s)  (mask: {s['mask']})",
        f"  bands       {' '.join(s['bands'])}  (order: {', '.join(s['band_order'])})",
        f"  units       {s['units']}",
    ]
    lines += [_offset_line(o) for o in s["offset"]]
    lines.append("  values      " + "  ".join(
        f"{b} {_fmt(v['min'])}–{_fmt(v['max'])}" for b, v in s["value_range"].items()))
    if s["labels"] is None:
        lines.append("  labels      none")
    else:
        cls = ", ".join(f"{c['id']} {c['name'] or ''} ({c['pixels']} px)".replace("  ", " ")
                        for c in s["labels"]["classes"])
        lines.append(f"  labels      {cls}; ignored ids {s['labels']['ignore']}")
    lines += [f"  warning     {w}" for w in s["warnings"]]
    return "\n".join(lines)


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.0f}"
