"""Splits: PASTIS fold rotation, whole-block spatial split, scarcity subsets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from alise.errors import AliseError
from alise.splits import (
    PASTIS_FOLDS,
    describe_split,
    random_pixel_split,
    scarcity_subsets,
    spatial_block_split,
)


def test_pastis_folds_rotate_and_partition():
    assert PASTIS_FOLDS[0] == ([1, 2, 3], [4], [5])
    assert PASTIS_FOLDS[1] == ([2, 3, 4], [5], [1])
    assert len(PASTIS_FOLDS) == 5
    for train, val, test in PASTIS_FOLDS:
        assert sorted(train + val + test) == [1, 2, 3, 4, 5]
    assert sorted(t[0] for _, _, t in PASTIS_FOLDS) == [1, 2, 3, 4, 5]  # each fold is test once


@pytest.mark.parametrize("h,w,block", [(64, 64, 16), (70, 45, 16), (33, 33, 8)])
def test_block_split_assigns_whole_blocks(h, w, block):
    m = spatial_block_split(h, w, block=block, seed=4)
    assert m.shape == (h, w) and m.dtype == np.int8
    assert set(np.unique(m)) == {0, 1, 2}
    for i in range(0, h, block):
        for j in range(0, w, block):
            assert np.unique(m[i:i + block, j:j + block]).size == 1
    nb = -(-h // block) * -(-w // block)
    codes = m[::block, ::block].ravel()
    expected = np.floor(np.array([0.6, 0.2, 0.2]) * nb)
    assert np.all(np.bincount(codes, minlength=3) >= expected)


def test_block_split_is_deterministic_and_seed_dependent():
    a = spatial_block_split(64, 64, seed=0)
    assert np.array_equal(a, spatial_block_split(64, 64, seed=0))
    assert not np.array_equal(a, spatial_block_split(64, 64, seed=1))


def test_block_split_keeps_every_split_non_empty_with_few_blocks():
    m = spatial_block_split(32, 48, block=16)  # 2×3 blocks; 0.2 × 6 rounds to 1 each
    assert sorted(np.bincount(m[::16, ::16].ravel(), minlength=3)) == [1, 1, 4]
    m = spatial_block_split(16, 48, block=16, fractions=(0.9, 0.05, 0.05))  # 3 blocks
    assert set(np.unique(m)) == {0, 1, 2}
    m = spatial_block_split(16, 32, block=16, fractions=(0.8, 0.0, 0.2))  # zero val stays empty
    assert set(np.unique(m)) == {0, 2}


def test_random_pixel_split_exact_counts():
    m = random_pixel_split(10, 10, (0.6, 0.2, 0.2), seed=1)
    assert np.bincount(m.ravel()).tolist() == [60, 20, 20]
    assert np.array_equal(m, random_pixel_split(10, 10, (0.6, 0.2, 0.2), seed=1))


def test_bad_fractions_raise():
    with pytest.raises(AliseError, match="fractions"):
        spatial_block_split(8, 8, fractions=(0.5, 0.2, 0.2))
    with pytest.raises(AliseError, match="fractions"):
        random_pixel_split(8, 8, fractions=(0.5, 0.5))


def test_scarcity_subsets():
    ids = list(range(100, 200))
    subs = scarcity_subsets(ids, 30, subsets=5, seed=2)
    assert len(subs) == 5
    for s in subs:
        assert len(s) == 30 and len(set(s)) == 30 and set(s) <= set(ids)
        assert s == sorted(s)  # keeps the order of ids
    assert len({tuple(s) for s in subs}) == 5
    assert subs == scarcity_subsets(ids, 30, subsets=5, seed=2)
    with pytest.raises(AliseError, match="cannot draw"):
        scarcity_subsets(ids[:10], 30)


def test_describe_split_counts():
    m = spatial_block_split(32, 32, block=16, fractions=(0.5, 0.25, 0.25))
    d = describe_split(m, block=16, method="spatial_block")
    assert d["pixels"] == {"train": 512, "val": 256, "test": 256}
    assert d["fractions"]["train"] == 0.5 and d["block"] == 16
    json.dumps(d)
