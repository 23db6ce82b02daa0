"""Unsupervised change detection between two SITS of the same place ([P] §IV-B-2, Eq. 12, Table IV).

ALISE (Eq. 12): both series are encoded independently by the frozen encoder into aligned
representations ``Y¹, Y² ∈ R^(Q, D, H, W)``; the change score of a pixel is the mean squared
difference over the ``Q·D`` features::

    d(i, j) = 1/(n_q · d_model) · Σ_{n, c} (Y¹_{n,c,i,j} − Y²_{n,c,i,j})²

Because the representation is aligned (fixed ``Q``, independent of the dates), the two series may
have different numbers of dates and different acquisition days.

GF baseline ([P] §IV-C-2): each year's clear normalised observations are linearly gap-filled onto
the same 5-day day-of-year grid, then the mean squared difference over bands and grid dates
(:func:`alise.baselines.gapfill.gf_change_distance`). Table IV: ALISE 0.91 AUC, GF 0.88 on RotCrop.

Truth: the change rasters of :mod:`alise.data.change_truth` (1 changed, 0 unchanged, 255
excluded; the RotCrop rule builds them from two years' crop labels). The AUC is pooled over the
evaluated pixels.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from alise.batch import SITS
from alise.data.change_truth import EXCLUDED
from alise.errors import AliseError

#: The two change methods of Table IV.
METHODS: tuple[str, ...] = ("alise", "gf")


def embedding_distance(y1: Tensor, y2: Tensor) -> Tensor:
    """Eq. 12: mean over queries and channels of the squared difference.

    Args:
        y1, y2: ``(Q, D, H, W)`` or ``(B, Q, D, H, W)`` aligned representations, or the flattened
            ``(Q·D, H, W)`` form (the mean over all feature axes is the same).

    Returns:
        ``(H, W)`` (or ``(B, H, W)``) float distance, ≥ 0.
    """
    if y1.shape != y2.shape:
        raise AliseError(f"the two embeddings differ in shape: {tuple(y1.shape)} vs {tuple(y2.shape)}")
    if y1.ndim not in (3, 4, 5):
        raise AliseError(f"embeddings must be (Q·D, H, W), (Q, D, H, W) or (B, Q, D, H, W), got {tuple(y1.shape)}")
    feat_axes = (-3,) if y1.ndim == 3 else (-4, -3)
    return (y1.float() - y2.float()).pow(2).mean(dim=feat_axes)


def alise_change_map(model, s1: SITS, s2: SITS) -> np.ndarray:
    """Eq. 12 change score of two normalised series of the same grid with the frozen encoder.

    Args:
        model: ALISE model (encoded through an eval-mode inference copy; no gradient).
        s1, s2: series ``x (T_k, C, H, W)`` normalised, ``days (T_k,)``; T may differ.

    Returns:
        ``(H, W)`` float32 distance map.
    """
    from alise.downstream.features import encode_sits
    from alise.encode.array import inference_copy

    _check_same_size(s1, s2)
    model = inference_copy(model)
    with torch.inference_mode():
        y1 = encode_sits(model, s1)
        y2 = encode_sits(model, s2)
        d = embedding_distance(y1, y2)
    return d.cpu().numpy().astype(np.float32)


def gf_change_map(s1: SITS, s2: SITS, step: float = 5.0) -> np.ndarray:
    """GF baseline change score ([P] §IV-C-2) of two normalised series: ``(H, W)`` float32, NaN where
    a pixel has no clear observation in one of the years."""
    from alise.baselines.gapfill import gf_change_distance

    _check_same_size(s1, s2)
    d = gf_change_distance(s1.x, s1.days, s1.valid_pixels, s2.x, s2.days, s2.valid_pixels, step=step)
    return d.cpu().numpy().astype(np.float32)


def evaluate_change(score: np.ndarray, truth: np.ndarray) -> dict:
    """ROC-AUC of ``score (H, W)`` against a change raster ``truth (H, W)`` (1 / 0 / 255 excluded)."""
    from alise.metrics import change_detection_metrics

    t = np.asarray(truth)
    if t.shape != np.shape(score):
        raise AliseError(f"change truth is {t.shape[0]}×{t.shape[1]} px but the change map is "
                         f"{score.shape[0]}×{score.shape[1]}: give a truth raster on the same grid")
    bad = ~np.isin(t, (0, 1, EXCLUDED))
    if bad.any():
        raise AliseError(f"change truth holds values {sorted(set(np.unique(t[bad]).tolist()))[:5]}: "
                         "expected 1 changed, 0 unchanged, 255 excluded")
    valid = t != EXCLUDED
    return change_detection_metrics(score, np.where(valid, t, 0), valid=valid)


def _check_same_size(s1: SITS, s2: SITS) -> None:
    if s1.x.shape[1:] != s2.x.shape[1:]:
        raise AliseError(f"the two series must cover the same grid: (C, H, W) {tuple(s1.x.shape[1:])} vs "
                         f"{tuple(s2.x.shape[1:])}")
