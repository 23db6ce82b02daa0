"""Figures for reports: confusion matrices, ROC curves, loss curves, thumbnails, timelines, PCA maps.

Every ``plot_*`` function draws on its own :class:`matplotlib.figure.Figure` with the Agg canvas
(no pyplot global state, no display needed), writes one PNG atomically through
:func:`alise.outputs.atomic_path` and returns the path. The array helpers
(:func:`rgb_thumbnail`, :func:`pca_rgb`) return ``(H, W, 3) uint8`` images for
:func:`plot_image_grid` or for saving elsewhere.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from alise.dates import date_from_days, parse_date
from alise.errors import AliseError
from alise.outputs import atomic_path

if TYPE_CHECKING:  # matplotlib is imported when a figure is drawn, not with the module (light for --help)
    from matplotlib.figure import Figure

DPI = 120
#: Pixels used to fit the PCA of :func:`pca_rgb` (all pixels are projected); also about how many
#: pixels ``alise preview`` samples from a raster to fit its colours.
PCA_FIT_PIXELS = 50_000
#: Longest side of a picture of a whole raster by default (``alise preview``'s PNG), px.
PICTURE_MAX_SIDE = 2048


def _np(a) -> np.ndarray:
    return np.asarray(a.detach().cpu() if hasattr(a, "detach") else a)


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return Path(path)


def _to_u8(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Linear map of ``[lo, hi]`` to 0…255 uint8, clipped (0.5 → 128 when ``hi <= lo``); NaN → 0."""
    finite = np.isfinite(v)
    out = np.zeros(v.shape, np.uint8)
    scaled = (v - lo) / (hi - lo) if hi > lo else np.full(v.shape, 0.5)
    out[finite] = np.round(np.clip(scaled[finite], 0.0, 1.0) * 255).astype(np.uint8)
    return out


def _stretch(v: np.ndarray, lo_q: float = 2.0, hi_q: float = 98.0) -> np.ndarray:
    """Robust linear stretch of finite values to [0, 255] uint8 (percentiles); NaN → 0."""
    finite = np.isfinite(v)
    if not finite.any():
        return np.zeros(v.shape, np.uint8)
    lo, hi = np.percentile(v[finite], [lo_q, hi_q])
    return _to_u8(v, lo, hi)


def plot_confusion(confusion, class_names: Sequence[str], path, normalize: bool = True,
                   title: str = "Confusion matrix (rows: truth)", hide_empty: bool = True) -> Path:
    """Heat map of a (K, K) confusion matrix (rows = truth, columns = prediction).

    With ``normalize`` each row is divided by its total (per-class recall), counts are printed
    in the cells (with the row percentage when normalised) when K ≤ 25. ``hide_empty`` drops classes with neither truth nor prediction.
    """
    cm = _np(confusion).astype(np.float64)
    k = cm.shape[0]
    if cm.shape != (k, k) or len(class_names) != k:
        raise AliseError(f"confusion matrix {cm.shape} needs one class name per row ({len(class_names)} given)")
    keep = np.flatnonzero((cm.sum(0) + cm.sum(1)) > 0) if hide_empty else np.arange(k)
    keep = keep if keep.size else np.arange(k)
    cm, names = cm[np.ix_(keep, keep)], [str(class_names[i]) for i in keep]
    rows = cm.sum(1, keepdims=True)
    shown = np.divide(cm, rows, out=np.full_like(cm, np.nan), where=rows > 0) if normalize else cm
    n = len(names)
    size = max(4.0, 0.42 * n + 2.5)
    fig = _figure(size + 1.0, size)
    ax = fig.add_subplot()
    im = ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=1.0 if normalize else None)
    fig.colorbar(im, ax=ax, shrink=0.8, label="fraction of true class" if normalize else "pixels")
    ax.set_xticks(range(n), names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), names, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    if n <= 25:
        for i in range(n):
            for j in range(n):
                if cm[i, j] > 0:
                    dark = normalize and shown[i, j] > 0.5
                    text = f"{shown[i, j]:.0%}\n{int(cm[i, j])}" if normalize else f"{int(cm[i, j])}"
                    ax.text(j, i, text, ha="center", va="center", fontsize=6 if n > 12 else 8,
                            color="white" if dark else "black")
    return _save(fig, path)


def plot_roc(curves: Mapping[str, tuple], path, title: str = "Change detection ROC") -> Path:
    """ROC curves of several methods on one axes; ``curves[name] = (fpr, tpr, auc)``."""
    if not curves:
        raise AliseError("no ROC curve to plot")
    fig = _figure(5.0, 5.0)
    ax = fig.add_subplot()
    for name, (fpr, tpr, auc) in curves.items():
        ax.plot(_np(fpr), _np(tpr), lw=1.8, label=f"{name} (AUC = {float(auc):.3f})")
    ax.plot([0, 1], [0, 1], ls="--", lw=1, color="grey", label="chance (AUC = 0.5)")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def _read_metrics_csv(path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Lightning CSVLogger ``metrics.csv`` → {column: (steps, values)}, empty cells dropped."""
    p = Path(path)
    if not p.is_file():
        raise AliseError(f"metrics file {p} not found")
    with open(p, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise AliseError(f"metrics file {p} has no rows")
    cols = [c for c in rows[0] if c not in ("step", "epoch")]
    out = {}
    for col in cols:
        pts = [(float(r["step"]) if r.get("step") not in (None, "") else float(i), float(r[col]))
               for i, r in enumerate(rows) if r.get(col) not in (None, "")]
        if pts:
            s, v = np.asarray(pts, dtype=np.float64).T
            out[col] = (s, v)
    return out


def _is_lr(name: str) -> bool:
    """Learning-rate columns: ``lr-Adam``, ``lr-Adam/pg1``, ``train/lr``, ``lr``."""
    n = name.lower()
    return n.startswith("lr") or n.endswith("/lr") or n.endswith("_lr")


def plot_loss_curves(metrics_csv_or_dict, path, title: str = "Training curves") -> Path:
    """One line per logged term over optimiser steps.

    Args:
        metrics_csv_or_dict: a Lightning CSVLogger ``metrics.csv`` (columns ``step``, ``epoch``,
            ``train/loss``, ``train/rec``, …, ``lr-Adam``, ``val/loss`` with empty cells) or a
            dict ``name → (steps, values)``.

    Learning-rate columns (name containing ``lr``) go to their own panel, and so do the embedding
    health columns (``emb_std``, ``emb_erank``, ``nyquist_share``: one panel each, they have other
    units). A panel uses a log y axis when all its values are positive and span more than a
    factor 20.
    """
    if isinstance(metrics_csv_or_dict, Mapping):
        series = {k: (_np(s).astype(float), _np(v).astype(float)) for k, (s, v) in metrics_csv_or_dict.items()}
    else:
        series = _read_metrics_csv(metrics_csv_or_dict)
    series = {k: (s[np.isfinite(v)], v[np.isfinite(v)]) for k, (s, v) in series.items()}
    series = {k: sv for k, sv in series.items() if sv[1].size}
    if not series:
        raise AliseError("no metric values to plot (every column is empty)")
    health = ("emb_std", "emb_erank", "nyquist_share")
    losses = [k for k in series if not _is_lr(k) and not any(h in k for h in health)]
    groups = [losses] + [[k for k in series if h in k] for h in health] + [[k for k in series if _is_lr(k)]]
    groups = [g for g in groups if g]
    fig = _figure(7.0, 3.2 * len(groups) + 0.4)
    axes = fig.subplots(len(groups), 1, sharex=True, squeeze=False)[:, 0]
    for ax, names in zip(axes, groups):
        for name in names:
            s, v = series[name]
            ax.plot(s, v, lw=1.3, marker="o" if v.size <= 30 else None, ms=3, label=name)
        vals = np.concatenate([series[n][1] for n in names])
        if (vals > 0).all() and vals.max() / vals.min() > 20:
            ax.set_yscale("log")
        ax.set_ylabel("learning rate" if _is_lr(names[0]) else next((h for h in health if h in names[0]),
                                                                    "loss / metric"))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_title(title)
    axes[-1].set_xlabel("optimiser step")
    return _save(fig, path)


def rgb_thumbnail(dn, bands: Sequence[str] | None = None, limits: tuple[float, float] | None = None) -> np.ndarray:
    """True-colour image of one Sentinel-2 date.

    Args:
        dn: (C, H, W) digital numbers (reflectance × 10 000), band order ``bands`` (default
            :data:`alise.normalise.S2_BANDS`).
        limits: fixed (low, high) digital numbers mapped to 0 and 255 — pass the same limits
            (e.g. ``(0, 3000)``) for every date of a series so that clouds look bright; None
            = a 2–98 % stretch of this image.

    Returns:
        (H, W, 3) uint8 from B04, B03, B02, one stretch shared by the three bands (keeps the
        colour balance); NaN → black.
    """
    if bands is None:
        from alise.normalise import S2_BANDS as bands
    a = _np(dn).astype(np.float64)
    if a.ndim != 3 or a.shape[0] != len(bands):
        raise AliseError(f"thumbnail expects (C, H, W) with C = {len(bands)} bands, got {a.shape}")
    try:
        idx = [list(bands).index(b) for b in ("B04", "B03", "B02")]
    except ValueError:
        raise AliseError(f"thumbnail needs bands B04, B03 and B02; have {list(bands)}") from None
    rgb = np.moveaxis(a[idx], 0, -1)
    if limits is None:
        return _stretch(rgb)
    lo, hi = map(float, limits)
    if not hi > lo:
        raise AliseError(f"thumbnail limits must be (low, high) with high > low, got {limits}")
    scaled = np.nan_to_num((rgb - lo) / (hi - lo), nan=0.0)
    return np.round(np.clip(scaled, 0.0, 1.0) * 255).astype(np.uint8)


@dataclass(frozen=True)
class PCAColours:
    """Per-pixel features → colours: the first three principal axes of a set of pixels and the
    2–98 % range of each projection (the stretch), fitted once and applied to any pixels, so that
    the blocks of a large raster get the colours of one fit.

    Attributes:
        mean: (F,) mean feature of the fitted pixels.
        axes: (k, F) principal axes, k = min(3, F, pixels), signs fixed (largest loading positive)
            so that the colours are deterministic.
        lo, hi: (3,) stretch of each component (components past k are 0: mid grey).
        explained: (k,) fraction of the fitted pixels' variance along each axis.
    """

    mean: np.ndarray
    axes: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    explained: np.ndarray

    @classmethod
    def fit(cls, feats, max_fit: int = PCA_FIT_PIXELS) -> "PCAColours":
        """Fit on ``feats (N, F)``: the mean of the rows with finite values, the axes from the
        covariance of at most ``max_fit`` of them (fixed seed), the stretch from the projections
        of all of them."""
        x = _np(feats)
        if x.ndim != 2:
            raise AliseError(f"PCA colours are fitted on (pixels, features), got shape {x.shape}")
        x = x.astype(np.float32, copy=False)
        ok = np.isfinite(x).all(1)
        rows = x if ok.all() else x[ok]
        n, f = rows.shape
        if n < 2:
            z = np.zeros(3)
            return cls(np.zeros(f), np.zeros((0, f)), z, z, np.zeros(0))
        mean = rows.mean(0, dtype=np.float64)
        fit = rows if n <= max_fit else rows[np.random.default_rng(0).choice(n, max_fit, replace=False)]
        centred = fit.astype(np.float64) - mean
        values, vectors = np.linalg.eigh(centred.T @ centred)  # ascending eigenvalues of the scatter matrix
        k = min(3, f, fit.shape[0])
        axes = vectors[:, ::-1][:, :k].T  # (k, F): the principal axes, largest variance first
        axes = axes * np.sign(axes[np.arange(k), np.abs(axes).argmax(1)])[:, None]
        total = float(values.clip(0).sum())
        explained = values[::-1][:k].clip(0) / total if total > 0 else np.zeros(k)
        out = cls(mean, axes, np.zeros(3), np.zeros(3), explained)
        comps = out.project(rows)[:, :k]
        lo, hi = np.zeros(3), np.zeros(3)
        lo[:k], hi[:k] = np.percentile(comps, [2.0, 98.0], axis=0)
        return cls(mean, axes, lo, hi, explained)

    def project(self, feats) -> np.ndarray:
        """``feats (N, F)`` → ``(N, 3)`` float32 components (0 past the fitted axes; NaN for rows
        with a non-finite value)."""
        x = _np(feats).astype(np.float32, copy=False)
        k = self.axes.shape[0]
        comps = np.zeros((x.shape[0], 3), np.float32)
        if k:
            comps[:, :k] = x @ self.axes.T.astype(np.float32) - (self.mean @ self.axes.T).astype(np.float32)
        comps[~np.isfinite(x).all(1)] = np.nan
        return comps

    def colours(self, feats) -> np.ndarray:
        """``feats (N, F)`` → ``(N, 3)`` uint8; rows with a non-finite value → black."""
        comps = self.project(feats)
        return np.stack([_to_u8(comps[:, i], self.lo[i], self.hi[i]) for i in range(3)], -1)


def pca_rgb(embedding) -> np.ndarray:
    """First three principal components of per-pixel features, as colours (:class:`PCAColours`
    fitted on the image itself).

    Args:
        embedding: (Q, D, H, W) (e.g. ALISE's n_q × d_model) or (F, H, W) features.

    Returns:
        (H, W, 3) uint8; each component stretched 2–98 %; signs fixed (largest loading positive)
        so the colours are deterministic; pixels with non-finite features → black.
    """
    e = _np(embedding)
    if e.ndim == 4:
        e = e.reshape(-1, *e.shape[2:])
    if e.ndim != 3:
        raise AliseError(f"PCA image expects (Q, D, H, W) or (F, H, W) features, got shape {e.shape}")
    f, h, w = e.shape
    feats = e.reshape(f, h * w).T  # (H·W, F)
    return PCAColours.fit(feats).colours(feats).reshape(h, w, 3)


def _to_date(d) -> dt.date:
    if isinstance(d, dt.datetime):
        return d.date()
    if isinstance(d, dt.date):
        return d
    if isinstance(d, str):
        return parse_date(d)
    return date_from_days(float(d))  # days since 2014-03-03


def plot_timeline(series: Mapping[str, tuple], path, title: str = "Acquisition dates") -> Path:
    """Acquisition dates of several SITS, one row each, coloured by clear-sky fraction.

    Args:
        series: ``name → (dates, clear_fraction)``; dates as ``datetime.date``, ``YYYY-MM-DD``
            text or days since 2014-03-03; clear fraction in [0, 1] per date.
    """
    if not series:
        raise AliseError("no series to draw on the timeline")
    names = list(series)
    fig = _figure(9.0, 1.2 + 0.45 * len(names))
    ax = fig.add_subplot()
    sc = None
    for row, name in enumerate(names):
        dates, clear = series[name]
        dates = [_to_date(d) for d in (dates.tolist() if hasattr(dates, "tolist") else list(dates))]
        clear = _np(clear).astype(float)
        if len(dates) != clear.size:
            raise AliseError(f"timeline {name!r}: {len(dates)} dates but {clear.size} clear fractions")
        sc = ax.scatter(dates, np.full(len(dates), row), c=clear, cmap="viridis", vmin=0, vmax=1, s=160, marker="|", linewidths=2.5)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_ylim(-0.7, len(names) - 0.3)
    ax.invert_yaxis()
    ax.set_xlabel("acquisition date")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    fig.colorbar(sc, ax=ax, label="clear fraction", pad=0.01)
    return _save(fig, path)


def plot_image_grid(images: Sequence[tuple], path, ncols: int = 6, title: str | None = None, cmap: str = "viridis") -> Path:
    """A grid of titled images: ``(title, (H, W, 3) uint8)`` RGB or ``(title, (H, W) float)`` maps.

    Scalar maps use ``cmap`` with their own colour bar; NaN shows as blank.
    """
    if not images:
        raise AliseError("no image to put in the grid")
    n = len(images)
    ncols = max(1, min(int(ncols), n))
    nrows = math.ceil(n / ncols)
    fig = _figure(2.3 * ncols + 0.3, 2.4 * nrows + (0.4 if title else 0.0))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (name, img) in zip(axes, images):
        a = _np(img)
        if a.ndim == 2:
            im = ax.imshow(a.astype(float), cmap=cmap, interpolation="nearest")
            fig.colorbar(im, ax=ax, shrink=0.75)
        elif a.ndim == 3 and a.shape[-1] == 3:
            ax.imshow(a, interpolation="nearest")
        else:
            raise AliseError(f"image {name!r} must be (H, W, 3) RGB or an (H, W) map, got {a.shape}")
        ax.set_title(str(name), fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[n:]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_probe_fit(fits: Sequence[tuple[str, object]], path, title: str = "Probe fit") -> Path:
    """How each run's probe was fitted (``fits``: ``(run name, FitReport)``).

    L-BFGS: training objective per iteration of the selected C (left) and validation macro-F1
    against C (right). Mini-batch solvers: training / validation loss over steps (left) and
    validation macro-F1 over steps (right), the selected step marked.
    """
    if not fits:
        raise AliseError("no probe fit to plot")
    fig = _figure(10.0, 3.6)
    ax_loss, ax_f1 = fig.subplots(1, 2)
    for name, rep in fits:
        if rep.solver == "lbfgs":
            it = [h["iteration"] for h in rep.history]
            ax_loss.plot(it, [h["train_objective"] for h in rep.history], lw=1.2,
                         label=f"{name} (C={rep.C:g}, {rep.stopped})")
            ax_f1.plot([g["C"] for g in rep.grid], [g["val_macro_f1"] for g in rep.grid], marker="o", ms=3, label=name)
            ax_f1.axvline(rep.C, color=ax_f1.lines[-1].get_color(), lw=0.8, ls=":")
        else:
            st = [h["step"] for h in rep.history]
            line = ax_loss.plot(st, [h["train_loss"] for h in rep.history], lw=1.2, label=f"{name} train ({rep.stopped})")
            ax_loss.plot(st, [h["val_loss"] for h in rep.history], lw=1.0, ls="--", color=line[0].get_color(),
                         label=f"{name} val")
            ax_f1.plot(st, [h["val_macro_f1"] for h in rep.history], lw=1.2, label=name)
            if rep.selected_step:
                ax_f1.axvline(rep.selected_step, color=line[0].get_color(), lw=0.8, ls=":")
    lbfgs = fits[0][1].solver == "lbfgs"
    ax_loss.set_xlabel("L-BFGS iteration (selected C)" if lbfgs else "optimisation step")
    ax_loss.set_ylabel("training objective" if lbfgs else "cross-entropy")
    ax_f1.set_xlabel("C (inverse L2 strength)" if lbfgs else "optimisation step")
    if lbfgs:
        ax_f1.set_xscale("log")
    ax_f1.set_ylabel("validation macro-F1")
    for ax in (ax_loss, ax_f1):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    return _save(fig, path)
