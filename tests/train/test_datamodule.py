"""Data order and views are functions of (seed, epoch, index); ranks get disjoint, equal shares."""

from __future__ import annotations

import torch

from alise.batch import SITS
from alise.train.datamodule import EpochSampler, PretrainDataModule, ViewCollate


def test_sampler_is_a_permutation_per_epoch_split_between_ranks():
    s = EpochSampler(10, seed=0)
    s.set_epoch(3)
    keys = list(s)
    assert [e for e, _ in keys] == [3] * 10 and sorted(i for _, i in keys) == list(range(10))
    again = EpochSampler(10, seed=0)
    again.set_epoch(3)
    assert list(again) == keys
    s.set_epoch(4)
    assert [i for _, i in s] != [i for _, i in keys]
    shares = []
    for rank in range(3):
        r = EpochSampler(10, seed=0, rank=rank, world_size=3)
        r.set_epoch(3)
        shares.append([i for _, i in r])
    assert {len(x) for x in shares} == {4}  # padded by wrapping: same step count on every rank
    assert set().union(*map(set, shares)) == set(range(10))
    exact = []
    for rank in range(3):
        r = EpochSampler(9, seed=0, rank=rank, world_size=3)
        exact.append({i for _, i in r})
    assert all(exact[i].isdisjoint(exact[j]) for i in range(3) for j in range(i))


def test_validation_sampler_ignores_the_epoch():
    s = EpochSampler(5, seed=0, shuffle=False)
    s.set_epoch(7)
    assert list(s) == [(0, i) for i in range(5)]


class _Toy(torch.utils.data.Dataset):
    """A dataset whose items depend on (epoch, index) only, like alise.data.PretrainDataset."""

    def __init__(self, n=6):
        self.n, self.epoch = n, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        t = 12
        g = torch.Generator().manual_seed(1000 * self.epoch + i)
        return SITS(x=torch.randn(t, 10, 4, 4, generator=g), days=torch.arange(t, dtype=torch.float32) * 5 + 1500,
                    valid_pixels=torch.ones(t, 4, 4, dtype=torch.bool))


def _batches(epoch: int) -> list:
    dm = PretrainDataModule(_Toy(), None, batch_size=2, n_dates=8, t_w=2, seed=5)
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(epoch)
    return list(loader)


def test_batches_and_views_are_reproducible_from_the_epoch_alone():
    first, again, other = _batches(2), _batches(2), _batches(3)
    assert len(first) == 3
    for (a1, b1), (a2, b2) in zip(first, again):
        assert torch.equal(a1.x, a2.x) and torch.equal(b1.days, b2.days)
    assert not all(torch.equal(a1.x, a2.x) for (a1, _), (a2, _) in zip(first, other))
    a, b = first[0]
    assert a.x.shape[1] == b.x.shape[1] == 4  # 8 dates → two views of 4 (t_w = 2)
    assert not (set(a.days[0].tolist()) & set(b.days[0].tolist()))


def test_view_collate_depends_on_the_sample_keys():
    items = [(0, i, _Toy()[i]) for i in range(2)]
    c = ViewCollate(seed=0, n_dates=6, t_w=1)
    a1, _ = c(items)
    a2, _ = c(items)
    assert torch.equal(a1.days, a2.days)
    starts = {c([(e, 0, items[0][2]), (e, 1, items[1][2])])[0].days[0, 0].item() for e in range(8)}
    assert len(starts) > 1  # the window start is redrawn with the epoch
