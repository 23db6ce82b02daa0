"""Atomic checkpoint IO, seeds and RNG state (alise.train.checkpoint)."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

from alise.errors import AliseError
from alise.train.checkpoint import (AtomicCheckpointIO, collect_rng_state, derive_seed, generator_for,
                                    restore_rng_state, resume_checkpoint)


def test_derive_seed_is_a_pure_function_of_its_keys():
    assert derive_seed(0, 3, 7) == derive_seed(0, 3, 7)
    seeds = {derive_seed(s, e, k) for s in (0, 1) for e in range(5) for k in range(5)}
    assert len(seeds) == 50
    a = torch.rand(4, generator=generator_for(1, 2))
    assert torch.equal(a, torch.rand(4, generator=generator_for(1, 2)))


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    io = AtomicCheckpointIO()
    torch.manual_seed(3), np.random.seed(3), random.seed(3)
    io.save_checkpoint({"rng": collect_rng_state()}, tmp_path / "a.ckpt")
    expected = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng_state(io.load_checkpoint(tmp_path / "a.ckpt")["rng"])  # weights_only=True load
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"w": torch.ones(3)}, path)

    def killed(fd):  # the process dies between write and rename
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", killed)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"w": torch.zeros(1000)}, path)
    monkeypatch.undo()
    assert torch.equal(io.load_checkpoint(path)["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_a_truncated_checkpoint_is_a_user_error(tmp_path):
    io = AtomicCheckpointIO()
    io.save_checkpoint({"w": torch.ones(100)}, tmp_path / "x.ckpt")
    data = (tmp_path / "x.ckpt").read_bytes()
    (tmp_path / "x.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(AliseError, match="cannot be read"):
        io.load_checkpoint(tmp_path / "x.ckpt")


def test_resume_without_checkpoint_says_how_to_fix(tmp_path):
    with pytest.raises(AliseError, match="--overwrite"):
        resume_checkpoint(tmp_path)
