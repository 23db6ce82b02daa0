"""Change truth rasters: 1 changed, 0 unchanged, 255 excluded ([P] §IV-A-4; docs/reference.md §8).

The RotCrop rule (:func:`change_truth_from_labels`): a pixel changed when the two years' crop
labels differ, is unchanged when they are equal, and is excluded when it is background (not a
crop) in either year. Readers that ship change truth (RotCrop, site folders' ``change/``) and the
synthetic generator follow this convention; :func:`alise.downstream.change.evaluate_change`
scores change maps against it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from alise.errors import AliseError

#: Value of excluded pixels in a change raster.
EXCLUDED = 255


def change_truth_from_labels(labels1: np.ndarray, labels2: np.ndarray, background: Iterable[int] = (0,)) -> np.ndarray:
    """RotCrop change truth from the two years' crop labels (docs/reference.md §8).

    Args:
        labels1, labels2: ``(H, W)`` integer crop ids of year 1 and year 2.
        background: ids meaning "not a crop"; a pixel background in either year is excluded.

    Returns:
        ``(H, W)`` uint8: 1 changed, 0 unchanged, 255 excluded.
    """
    a, b = np.asarray(labels1), np.asarray(labels2)
    if a.shape != b.shape:
        raise AliseError(f"label maps of the two years differ in size: {a.shape} vs {b.shape}")
    bg = np.asarray(sorted(set(int(v) for v in background)), dtype=np.int64)
    out = (a != b).astype(np.uint8)
    out[np.isin(a, bg) | np.isin(b, bg)] = EXCLUDED
    return out
