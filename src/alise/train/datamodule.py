"""Pre-training data: crops of SITS → pairs of interleaved views, deterministic per (seed, epoch, step).

The pipeline of one training batch ([P] §III-C, docs/reference.md §6.2):

1. :class:`EpochSampler` yields ``(epoch, index)`` keys: a permutation of the samples drawn from
   ``(seed, epoch)``, split between the DDP processes by striding (each rank gets the same number).
2. :class:`_EpochDataset` hands the key to :class:`alise.data.PretrainDataset`, whose random crop
   (64 × 64) and random window of N = 60 consecutive dates are functions of ``(seed, epoch, index)``.
3. :class:`ViewCollate` splits every SITS into views A and B (Eq. 3–4, :mod:`alise.train.views`) with a
   generator seeded by ``(seed, epoch, indices)`` and pads them into two
   :class:`~alise.batch.SITSBatch` ``x (B, T_v, C, H, W)``.

Because each random draw is a pure function of its key, the epoch number alone (restored from a
checkpoint) reproduces every later batch, in the main process or in any number of loader workers.
We therefore disable Lightning's automatic ``DistributedSampler`` (``use_distributed_sampler=False``
in :mod:`alise.train.run`) and split between ranks here.

Validation (model selection, [P] §IV-A): centre crops and a fixed window of dates (epoch 0 of a
dataset built with ``center=True``), identical at every epoch so that validation losses of
different epochs are comparable.
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from alise.batch import SITS, SITSBatch
from alise.train.checkpoint import derive_seed, generator_for
from alise.train.views import collate_views

_ORDER, _VIEWS = 101, 202  # salts: separate random streams for the data order and the views


class EpochSampler(Sampler):
    """Yield ``(epoch, index)`` keys: this rank's share of a permutation drawn from ``(seed, epoch)``.

    Args:
        n: samples per epoch (the dataset length).
        seed: run seed.
        shuffle: permute (training) or keep the order (validation, epoch fixed to 0).
        rank, world_size: this process and the number of processes; the permutation is padded by
            wrapping around so that every rank gets ``ceil(n / world_size)`` keys.
    """

    def __init__(self, n: int, seed: int, shuffle: bool = True, rank: int = 0, world_size: int = 1):
        self.n, self.seed, self.shuffle, self.rank, self.world_size = n, seed, shuffle, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning before every epoch with the number of finished epochs."""
        if self.shuffle:
            self.epoch = int(epoch)

    def __len__(self) -> int:
        return -(-self.n // self.world_size)

    def __iter__(self):
        if self.shuffle:
            order = torch.randperm(self.n, generator=generator_for(self.seed, _ORDER, self.epoch)).tolist()
        else:
            order = list(range(self.n))
        total = len(self) * self.world_size
        order = (order * (-(-total // self.n)))[:total]
        for i in order[self.rank::self.world_size]:
            yield self.epoch, i


class _EpochDataset(Dataset):
    """Adapter: ``dataset[(epoch, i)] → (epoch, i, SITS)`` for a dataset with ``set_epoch``."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> tuple[int, int, SITS]:
        epoch, i = key
        self.dataset.set_epoch(epoch)
        return epoch, i, self.dataset[i]


class ViewCollate:
    """Collate ``[(epoch, i, SITS), ...]`` into the two view batches ``(A, B)``.

    The views of a batch are drawn from a generator seeded by ``(seed, epoch, i_1, …, i_B)``.
    """

    def __init__(self, seed: int, n_dates: int, t_w: int, shift: int = 0):
        self.seed, self.n_dates, self.t_w, self.shift = seed, n_dates, t_w, shift

    def __call__(self, items: Sequence[tuple[int, int, SITS]]) -> tuple[SITSBatch, SITSBatch]:
        epoch = items[0][0]
        keys = [i for _, i, _ in items]
        g = generator_for(self.seed, _VIEWS, epoch, derive_seed(len(keys), *keys))
        a, b = collate_views([s for _, _, s in items], g, n_dates=self.n_dates, t_w=self.t_w, shift=self.shift)
        a.labels = b.labels = None  # labels are not used in pre-training
        return a, b


class PretrainDataModule(L.LightningDataModule):
    """Training and validation loaders of view pairs.

    Args:
        train, val: datasets with ``set_epoch(epoch)`` and ``__getitem__ → SITS`` (``val`` may be
            None: no validation). Usually :class:`alise.data.PretrainDataset`.
        batch_size: SITS per process and step (paper: 2, Table I) — each gives two views.
        n_dates, t_w: view generation parameters (§III-C, Table I).
        shift: translation between the views of training samples (``view_shift``; the training
            crops are that many pixels larger); validation views are never translated.
        seed: run seed; num_workers: loader processes (0 = in the main process, the default).
    """

    def __init__(self, train: Dataset, val: Dataset | None, batch_size: int = 2, n_dates: int = 60, t_w: int = 2,
                 seed: int = 0, num_workers: int = 0, shift: int = 0):
        super().__init__()
        self.train_set, self.val_set = train, val
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers
        self.collate = ViewCollate(seed, n_dates, t_w, shift)
        self.val_collate = ViewCollate(seed, n_dates, t_w)

    def _rank_world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        rank, world = self._rank_world()
        sampler = EpochSampler(len(dataset), self.seed, shuffle=shuffle, rank=rank, world_size=world)
        collate = self.collate if shuffle else self.val_collate
        return DataLoader(_EpochDataset(dataset), batch_size=self.batch_size, sampler=sampler, collate_fn=collate,
                          num_workers=self.num_workers, persistent_workers=False, drop_last=False)

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        return tuple(view.to(device) for view in batch)  # (SITSBatch A, SITSBatch B)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        if self.val_set is None:
            return []
        return self._loader(self.val_set, shuffle=False)
