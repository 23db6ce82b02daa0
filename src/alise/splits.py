"""Train / validation / test splits for the downstream protocols ([P] §IV-A, §IV-B, §V-B).

* PASTIS: the official 5-fold rotation (docs/reference.md §7) — :data:`PASTIS_FOLDS`.
* One raster (our folder layout, a single labelled scene): whole square *blocks* of pixels go to
  one split (:func:`spatial_block_split`). Neighbouring pixels are strongly correlated; a per-pixel
  random split (:func:`random_pixel_split`) leaks texture and parcels from train into test and
  inflates scores, so it is only an explicit opt-in.
* Label scarcity ([P] §V-B, Table III): 5 random subsets of 30 training SITS per fold
  (:func:`scarcity_subsets`) → 25 trials.

Split maps use one code: 0 train, 1 val, 2 test (:data:`SPLIT_NAMES`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from alise.errors import AliseError

#: Code of each split in a split map.
SPLIT_NAMES: tuple[str, str, str] = ("train", "val", "test")

#: PASTIS (train folds, val fold, test fold) for the 5 runs (docs/reference.md §7, U-TAE's fold sequence).
PASTIS_FOLDS: list[tuple[list[int], list[int], list[int]]] = [
    ([1, 2, 3], [4], [5]),
    ([2, 3, 4], [5], [1]),
    ([3, 4, 5], [1], [2]),
    ([4, 5, 1], [2], [3]),
    ([5, 1, 2], [3], [4]),
]


def _check_fractions(fractions: Sequence[float]) -> np.ndarray:
    f = np.asarray(fractions, dtype=np.float64)
    if f.shape != (3,) or (f < 0).any() or not np.isclose(f.sum(), 1.0, atol=1e-6):
        raise AliseError(f"split fractions must be three non-negative numbers (train, val, test) summing to 1, got {tuple(fractions)}")
    return f


def _counts(n: int, fractions: np.ndarray) -> np.ndarray:
    """Split ``n`` items by ``fractions`` (largest remainder), keeping every positive split non-empty when n allows."""
    raw = fractions * n
    counts = np.floor(raw).astype(np.int64)
    for i in np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    want = fractions > 0
    while True:  # at most 3 iterations: move one item to an empty split from the largest
        empty = np.flatnonzero(want & (counts == 0))
        if empty.size == 0 or counts.max() <= 1:
            return counts
        counts[np.argmax(counts)] -= 1
        counts[empty[0]] += 1


def _assign(n: int, fractions: np.ndarray, seed: int) -> np.ndarray:
    """(n,) int8 split codes: exact counts, random order under ``seed``."""
    codes = np.repeat(np.arange(3, dtype=np.int8), _counts(n, fractions))
    return np.random.default_rng(seed).permutation(codes)


def spatial_block_split(height: int, width: int, block: int = 16, fractions=(0.6, 0.2, 0.2), seed: int = 0) -> np.ndarray:
    """Assign whole ``block × block`` squares of a raster to train / val / test.

    Blocks are aligned on the top-left corner; the last row/column of blocks may be smaller.
    The *number of blocks* in each split follows ``fractions`` (largest remainder); each split
    with a positive fraction gets at least one block when there are enough blocks. The same
    ``(height, width, block, fractions, seed)`` always gives the same map.

    Returns:
        (H, W) int8 map: 0 train, 1 val, 2 test.
    """
    h, w, b = int(height), int(width), int(block)
    if h <= 0 or w <= 0 or b <= 0:
        raise AliseError(f"spatial split needs positive height, width and block, got {h}×{w}, block {b}")
    f = _check_fractions(fractions)
    nby, nbx = -(-h // b), -(-w // b)
    codes = _assign(nby * nbx, f, seed).reshape(nby, nbx)
    return np.repeat(np.repeat(codes, b, axis=0), b, axis=1)[:h, :w]


def random_pixel_split(height: int, width: int, fractions=(0.6, 0.2, 0.2), seed: int = 0) -> np.ndarray:
    """Assign each pixel independently at random (exact counts) — explicit opt-in only.

    Warning: neighbouring pixels of one parcel then fall in train and test alike, which
    overestimates accuracy; prefer :func:`spatial_block_split`.

    Returns:
        (H, W) int8 map: 0 train, 1 val, 2 test.
    """
    h, w = int(height), int(width)
    if h <= 0 or w <= 0:
        raise AliseError(f"pixel split needs positive height and width, got {h}×{w}")
    return _assign(h * w, _check_fractions(fractions), seed).reshape(h, w)


def scarcity_subsets(ids: Sequence, n: int, subsets: int = 5, seed: int = 0) -> list[list]:
    """Label-scarcity training sets ([P] §V-B, Table III: 5 subsets of n = 30 SITS per fold).

    Each subset is drawn independently, without replacement within a subset, and keeps the
    order of ``ids``. Deterministic under ``seed``; use a different seed per fold.

    Returns:
        ``subsets`` lists of ``n`` ids each.
    """
    ids = list(ids)
    n, subsets = int(n), int(subsets)
    if n <= 0 or subsets <= 0:
        raise AliseError(f"scarcity protocol needs n > 0 and subsets > 0, got n={n}, subsets={subsets}")
    if n > len(ids):
        raise AliseError(f"cannot draw {n} training SITS from only {len(ids)}: lower --scarcity n")
    rng = np.random.default_rng(seed)
    return [[ids[i] for i in np.sort(rng.choice(len(ids), size=n, replace=False))] for _ in range(subsets)]


def describe_split(split_map, block: int | None = None, method: str | None = None) -> dict:
    """Summary of a split map for ``metrics.json``.

    Args:
        split_map: (H, W) integer map, 0 train, 1 val, 2 test (other values: unused pixels).
        block: block size used by :func:`spatial_block_split` (None for a pixel split).
        method: free text, e.g. ``"spatial_block"`` or ``"random_pixel"``.

    Returns:
        ``{"method", "block", "height", "width", "pixels": {split: n}, "fractions": {split: f}}``.
    """
    m = np.asarray(split_map.detach().cpu() if hasattr(split_map, "detach") else split_map)
    if m.ndim != 2:
        raise AliseError(f"a split map is (H, W), got shape {m.shape}")
    counts = {name: int((m == code).sum()) for code, name in enumerate(SPLIT_NAMES)}
    total = max(sum(counts.values()), 1)
    return {
        "method": method,
        "block": None if block is None else int(block),
        "height": int(m.shape[0]),
        "width": int(m.shape[1]),
        "pixels": counts,
        "fractions": {k: v / total for k, v in counts.items()},
    }
